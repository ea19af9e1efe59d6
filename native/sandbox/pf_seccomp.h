/*
 * The seccomp filters of policyforge's sandbox (libseccomp). Two layers, stacked:
 *
 *   pf_seccomp_base(kind)  loaded by pf-sandbox-exec before it runs a job. It denies
 *                          (EPERM) what no job of ours ever needs: sockets, ptrace and
 *                          cross-process memory access, mounts and namespaces, BPF, module
 *                          and kexec loading, keyrings, perf, io_uring, clock and host
 *                          settings. Compilers and trusted drivers run under it.
 *   pf_lockdown()          called by a trusted driver (pf-cachesim, pf-cache-probe,
 *                          pf-eplb-run) once it has opened its inputs and loaded the
 *                          candidate, before the candidate's first instruction runs: from
 *                          then on only computation and I/O on descriptors already open
 *                          are allowed. open() fails with EACCES; anything else outside
 *                          the list (exec, fork, a socket, ...) kills the process (SIGSYS).
 *
 * Filters stack: after pf_lockdown() both apply and the stricter action wins.
 */
#ifndef PF_SECCOMP_H
#define PF_SECCOMP_H

#ifdef __cplusplus
extern "C" {
#endif

/* 0 on success, else a negative errno; `kind` is "build" or "run" (the same rules today: the
 * name says which job it guards, so the two can diverge without touching callers) */
int pf_seccomp_base(const char *kind);

/* 0 on success; on failure prints why to stderr and returns -1: the caller must exit then */
int pf_lockdown(void);

#ifdef __cplusplus
}
#endif
#endif
