/* The filters declared in pf_seccomp.h. */
#define _GNU_SOURCE
#include "pf_seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

/* denied with EPERM in every job */
static const char *const DENIED[] = {
    /* network: the jail's network namespace is empty anyway; no sockets at all */
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    /* other processes and the kernel's view of them */
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    /* file systems, namespaces */
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "mount_setattr", "unshare", "setns",
    "open_by_handle_at", "name_to_handle_at", "mknod", "mknodat",
    /* the kernel itself */
    "bpf", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "iopl", "ioperm",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
    "lookup_dcookie", "vhangup", "personality", "memfd_secret",
    /* host settings */
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname",
    "setdomainname",
};

static const unsigned long NS_FLAGS[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                         CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP};

static int add_by_name(scmp_filter_ctx ctx, uint32_t action, const char *name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return 0; /* not on this architecture */
  return seccomp_rule_add(ctx, action, nr, 0);
}

int pf_seccomp_base(const char *kind) {
  (void)kind;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return -ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < sizeof DENIED / sizeof DENIED[0] && rc == 0; i++)
    rc = add_by_name(ctx, SCMP_ACT_ERRNO(EPERM), DENIED[i]);
  /* new processes and threads yes, new namespaces no; clone3 hides its flags in memory, so
   * it reports ENOSYS and the C library falls back to clone */
  for (size_t i = 0; i < sizeof NS_FLAGS / sizeof NS_FLAGS[0] && rc == 0; i++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, NS_FLAGS[i], NS_FLAGS[i]));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  return rc;
}

/* everything a driver may do once the candidate is loaded */
static const char *const COMPUTE[] = {
    "read", "write", "readv", "writev", "pread64", "lseek", "close", "fstat", "newfstatat",
    "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "futex", "set_robust_list",
    "rseq", "exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
    "sigaltstack", "clock_gettime", "clock_getres", "gettimeofday", "sched_yield",
    "sched_getaffinity", "getpid", "gettid", "getrandom", "tgkill", "getrusage", "times",
    "restart_syscall", "set_tid_address", "membarrier", "sysinfo", "uname", "getuid", "geteuid",
    "getgid", "getegid", "getppid", "getrlimit",
};

int pf_lockdown(void) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) {
    fprintf(stderr, "pf_lockdown: seccomp_init failed\n");
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < sizeof COMPUTE / sizeof COMPUTE[0] && rc == 0; i++)
    rc = add_by_name(ctx, SCMP_ACT_ALLOW, COMPUTE[i]);
  /* no new file: a library that tries gets an error, not a kill */
  const char *opens[] = {"open", "openat", "openat2", "creat"};
  for (size_t i = 0; i < 4 && rc == 0; i++) rc = add_by_name(ctx, SCMP_ACT_ERRNO(EACCES), opens[i]);
  /* threads (libCacheSim's simulator runs its caches on a glib thread pool), never processes */
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  /* reading a resource limit (sysconf does), never setting one */
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
  /* glib names its pool threads */
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME));
  if (rc == 0) rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    fprintf(stderr, "pf_lockdown: cannot load the seccomp filter: %s\n", strerror(-rc));
    return -1;
  }
  return 0;
}
