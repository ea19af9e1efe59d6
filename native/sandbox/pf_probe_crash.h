/*
 * What a probe tells the model when the candidate's function crashes it (SIGFPE, SIGILL,
 * SIGSEGV, SIGBUS): which function, on which inputs, and the likely cause. A bare "killed by
 * SIGFPE" is nothing a model can act on.
 *
 * Before each call the probe writes the call's description (pf_probe_calling); a crash's
 * handler then prints "probe: <call> crashed: <cause>" with write(2), which is async-signal
 * safe and allowed after pf_lockdown, and exits. Install the handlers (pf_probe_catch_crashes)
 * before pf_lockdown.
 */
#ifndef PF_PROBE_CRASH_H
#define PF_PROBE_CRASH_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char pf_probe_call[768];

static void pf_probe_calling(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pf_probe_call, sizeof pf_probe_call, fmt, ap);
  va_end(ap);
}

static void pf_probe_write(const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t k = write(1, s, n);
    if (k <= 0) return;
    s += k;
    n -= (size_t)k;
  }
}

static void pf_probe_crashed(int sig) {
  const char *cause =
      sig == SIGFPE ? "SIGFPE, an integer division or remainder by zero (or INT_MIN / -1): compute in the "
                      "task's floating point or divide with pf_div(a, b), which returns 0 when b == 0"
      : sig == SIGILL ? "SIGILL, an illegal instruction: undefined behaviour the compiler turned into a trap "
                        "(e.g. a path that returns no value)"
      : sig == SIGSEGV || sig == SIGBUS ? "a bad memory access"
                                        : "a fatal signal";
  pf_probe_write("probe: ");
  pf_probe_write(pf_probe_call[0] ? pf_probe_call : "the candidate");
  pf_probe_write(" crashed with ");
  pf_probe_write(cause);
  pf_probe_write("\n");
  _exit(4);
}

static void pf_probe_catch_crashes(void) {
  static const int sigs[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS};
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = pf_probe_crashed;
  sa.sa_flags = SA_RESETHAND;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

#endif
