/*
 * pf-sandbox-exec: the two steps of policyforge's sandbox that bubblewrap does not do.
 *
 * policyforge runs every job that compiles or executes candidate code as
 *
 *   pf-sandbox-exec --parent PID --procs CGROUP/cgroup.procs ... --rlimit as=N ... --
 *     bwrap --unshare-pid --unshare-net ... (mounts) --
 *       pf-sandbox-exec --inner --uid U --gid U --seccomp run -- JOB ARGS...
 *
 * The outer step (as root, before bwrap) starts a session of its own, asks the kernel to
 * SIGKILL it when policyforge dies (bwrap --die-with-parent and the pid namespace then take
 * the job with it), joins the job's cgroups and sets its rlimits. bubblewrap makes the
 * namespaces and the file system the job sees. The inner step (inside them) becomes an
 * unprivileged uid of its own with no capabilities and no_new_privs, loads the seccomp
 * filter (pf_seccomp.h) and executes the job.
 *
 * Network: every job gets a network namespace with no interface up. Creating one costs about
 * 3 ms, so policyforge keeps one empty namespace alive (pf-sandbox-exec --hold-netns, a process
 * that only sleeps) and the outer step joins it (--netns /proc/PID/ns/net); if that fails it
 * makes a fresh one. Jobs that share it cannot talk through it: it has no interface, and the
 * seccomp filter refuses every socket.
 *
 * --ready-fd N (inner): the step writes "ok" to descriptor N just before it executes the
 * job, so policyforge can tell a sandbox that failed to start (no "ok": a line on stderr
 * says why) from a job that failed, whatever the job prints. A job that cannot be executed
 * exits 127.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pf_seccomp.h"

static void die(const char *what, int err) {
  fprintf(stderr, "pf-sandbox-exec: %s%s%s\n", what, err ? ": " : "", err ? strerror(err) : "");
  exit(125);
}

static const struct {
  const char *name;
  int resource;
} RLIMITS[] = {{"as", RLIMIT_AS},       {"cpu", RLIMIT_CPU},       {"fsize", RLIMIT_FSIZE},
               {"core", RLIMIT_CORE},   {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}};

/* NAME=SOFT[:HARD] */
static void set_rlimit(const char *spec) {
  const char *eq = strchr(spec, '=');
  if (!eq) die("bad --rlimit (NAME=SOFT[:HARD])", 0);
  for (size_t i = 0; i < sizeof RLIMITS / sizeof RLIMITS[0]; i++) {
    if (strncmp(spec, RLIMITS[i].name, (size_t)(eq - spec)) != 0 || RLIMITS[i].name[eq - spec] != '\0')
      continue;
    char *end;
    struct rlimit rl;
    rl.rlim_cur = strtoull(eq + 1, &end, 10);
    rl.rlim_max = *end == ':' ? strtoull(end + 1, &end, 10) : rl.rlim_cur;
    if (*end != '\0') die("bad --rlimit value", 0);
    /* A limit may only tighten what the user's shell already set (`ulimit -v 4000000`): without
     * CAP_SYS_RESOURCE a hard limit cannot be raised, and the tighter one holds anyway. */
    struct rlimit now;
    if (getrlimit(RLIMITS[i].resource, &now) == 0 && now.rlim_max != RLIM_INFINITY) {
      if (rl.rlim_max > now.rlim_max) rl.rlim_max = now.rlim_max;
      if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
    }
    if (setrlimit(RLIMITS[i].resource, &rl) != 0) die("setrlimit", errno);
    return;
  }
  die("unknown --rlimit name", 0);
}

static void join_cgroup(const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("cannot open a cgroup's process list", errno);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  if (write(fd, pid, (size_t)n) != n) die("cannot join a cgroup", errno);
  close(fd);
}

/* the inner step: an unprivileged uid, no capabilities in any set, no way back */
static void drop_privileges(uid_t uid, gid_t gid) {
  if (uid == 0 || gid == 0) die("the job's uid and gid must not be 0", 0);
  for (int cap = 0; cap <= 63; cap++)
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) die("cannot drop the bounding set", errno);
  if (setgroups(0, NULL) != 0) die("setgroups", errno);
  if (setresgid(gid, gid, gid) != 0) die("setresgid", errno);
  if (setresuid(uid, uid, uid) != 0) die("setresuid", errno);
  if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) die("the uid did not change", 0);
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    die("cannot clear the ambient capabilities", errno);
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &hdr, data) != 0) die("capset", errno);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs", errno);
}

/* join the shared empty network namespace, or make a fresh one */
static void network(const char *netns) {
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && setns(fd, CLONE_NEWNET) == 0) {
      close(fd);
      return;
    }
    if (fd >= 0) close(fd);
  }
  if (unshare(CLONE_NEWNET) != 0) die("cannot make a network namespace", errno);
}

/* --hold-netns: a process in a new, empty network namespace that only waits; it exits when
 * its parent (policyforge) does */
static int hold_netns(long parent) {
  if (unshare(CLONE_NEWNET) != 0) die("cannot make a network namespace", errno);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("PR_SET_PDEATHSIG", errno);
  if (write(1, "ok\n", 3) != 3) return 1;
  while (parent <= 0 || getppid() == parent) sleep(1);
  return 0;
}

static void usage(void) {
  die("usage: pf-sandbox-exec [--parent PID] [--procs FILE]... [--rlimit NAME=N[:M]]... [--netns PATH] -- PROG ARGS\n"
      "       pf-sandbox-exec --hold-netns [--parent PID]\n"
      "       pf-sandbox-exec --inner --uid U --gid G --seccomp build|run [--ready-fd N] -- PROG ARGS",
      0);
}

int main(int argc, char **argv) {
  int inner = 0, hold = 0, i = 1;
  long parent = -1, uid = -1, gid = -1, ready_fd = -1;
  const char *seccomp_kind = NULL, *netns = NULL;
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--inner")) { inner = 1; continue; }
    if (!strcmp(a, "--hold-netns")) { hold = 1; continue; }
    if (!v) usage();
    if (!strcmp(a, "--parent")) parent = strtol(v, NULL, 10);
    else if (!strcmp(a, "--procs")) join_cgroup(v);
    else if (!strcmp(a, "--rlimit")) set_rlimit(v);
    else if (!strcmp(a, "--uid")) uid = strtol(v, NULL, 10);
    else if (!strcmp(a, "--gid")) gid = strtol(v, NULL, 10);
    else if (!strcmp(a, "--seccomp")) seccomp_kind = v;
    else if (!strcmp(a, "--ready-fd")) ready_fd = strtol(v, NULL, 10);
    else if (!strcmp(a, "--netns")) netns = v;
    else usage();
    i++;
  }
  if (hold) return hold_netns(parent);
  if (i + 1 >= argc) usage();
  char **job = argv + i + 1;

  if (inner) {
    if (uid < 0 || gid < 0 || !seccomp_kind) usage();
    drop_privileges((uid_t)uid, (gid_t)gid);
    int rc = pf_seccomp_base(seccomp_kind);
    if (rc != 0) die("cannot load the seccomp filter", -rc);
    if (ready_fd >= 0) {
      if (write((int)ready_fd, "ok", 2) != 2) die("cannot report readiness", errno);
      close((int)ready_fd);
    }
  } else {
    if (setsid() < 0) die("setsid", errno);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die("PR_SET_PDEATHSIG", errno);
    if (parent > 0 && getppid() != parent) exit(125); /* policyforge died before we got here */
    network(netns);
  }
  execvp(job[0], job);
  fprintf(stderr, "pf-sandbox-exec: cannot execute %s: %s\n", job[0], strerror(errno));
  return 127;
}
