"""Attack: do what a C program can do. Before, candidate code ran as uid 0 with nearly every
capability: it wrote outside the run directory, read /etc/shadow, opened TCP connections,
ran system("id"), rewrote a sysctl, made raw syscalls from inline asm, and a double-forked
child that joined the root pids cgroup outlived the run.

The engine's test task compiles and runs whole C programs with no checker at all, so every
attempt here meets the sandbox alone. The candidate reports what it managed as its exit
status (64 + a bit per success): 64 means nothing worked."""
import os
import socket
import threading
import uuid
from pathlib import Path

from hostile import assert_no_secret, replay_run

TOY = "toytask:ToyTask"


def _observer(port: int, canary: Path) -> str:
    return f"""
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
double f(double x) {{
    int mask = 0;
    if (open("/etc/shadow", O_RDONLY) >= 0) mask |= 1;
    if (getuid() == 0 || geteuid() == 0) mask |= 2;
    for (int i = 0; i < 459; i++) {{
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons({port});
        a.sin_addr.s_addr = htonl(0x7f000001);
        if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0) mask |= 4;
    }}
    long raw;   /* socket(AF_INET, SOCK_STREAM, 0) past the C library */
    __asm__ volatile("syscall" : "=a"(raw) : "a"(41L), "D"(2L), "S"(1L), "d"(0L) : "rcx", "r11", "memory");
    if (raw >= 0) mask |= 8;
    int fd = open("/proc/sys/net/ipv4/tcp_congestion_control", O_WRONLY);
    if (fd >= 0 && write(fd, "reno", 4) == 4) mask |= 16;
    if (syscall(SYS_unshare, 0x10000000L /* CLONE_NEWUSER */) == 0 || mount("none", "/mnt", "tmpfs", 0, 0) == 0)
        mask |= 32;
    open("{canary}", O_WRONLY | O_CREAT, 0644);   /* works: in the job's own /tmp, gone with it */
    if (system("id -u > /dev/null") == 0 && system("test $(id -u) -eq 0") == 0) mask |= 2;
    exit(64 + mask);
    return x;
}}
"""


def _escaper(canary: Path) -> str:
    """double fork; the grandchild tries the root pids cgroup, then lingers"""
    return f"""
#include <fcntl.h>
double f(double x) {{
    if (fork() == 0) {{
        setsid();
        if (fork() == 0) {{
            int fd = open("/sys/fs/cgroup/pids/cgroup.procs", O_WRONLY);
            if (fd >= 0) write(fd, "0", 1);
            fd = open("{canary}", O_WRONLY | O_CREAT, 0644);
            sleep(60);
        }}
        _exit(0);
    }}
    return x * x + 3 * x + 1;
}}
"""


def test_nothing_a_program_tries_works_and_nothing_outlives_the_run(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1000)
    listener.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    canary = Path("/tmp") / f"pf-hostile-{uuid.uuid4().hex}"
    escape = canary.with_name(canary.name + "-escape")
    sysctl = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text()
    try:
        r, rows, run = replay_run(tmp_path, TOY, [_observer(listener.getsockname()[1], canary), _escaper(escape)],
                                  {"timeout_s": 5})
    finally:
        stop.set()
    assert r.returncode == 0, r.stderr
    observer, escaper = rows
    assert observer["status"] == "failed" and observer["reason"] == "exit status 64", observer["reason"]
    assert escaper["status"] == "evaluated"             # it ran, and its grandchild was reaped with it
    assert accepted == []                               # not one of 459 connections reached this host
    assert not canary.exists() and not escape.exists()  # nothing was written outside the job's own /tmp
    assert Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text() == sysctl
    assert_no_secret(run / "store.sqlite", run / "run.log")
    assert os.path.exists(run / "report.html")
