// A policyforge EPLB candidate: the generated rules + the fixed pipeline, as a shared
// library with one C entry point that policyforge._eplb loads (rules_lib=...).
#include <cmath>
#include <cstdint>

#include "eplb_pipeline.hpp"

static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return std::log1p(std::fabs(a)); }

namespace candidate {
// hidden: not interposable, so the compiler inlines the rules into the pipeline (exported,
// -fPIC would call each rule through the PLT: 1.2x slower)
#pragma GCC visibility push(hidden)
/* PF_POLICY_HOLE */
#pragma GCC visibility pop
}  // namespace candidate

struct CandidateRules {
  static inline double expected_load(double r, double h) { return candidate::expected_load(r, h); }
  static inline double replica_score(double l, double c) { return candidate::replica_score(l, c); }
  static inline double pack_key(double w, double i) { return candidate::pack_key(w, i); }
  static inline double bin_cost(double bl, double bc, double cap, double w) { return candidate::bin_cost(bl, bc, cap, w); }
};

// As in the op: the pipeline once for any x86-64 and once, inlined whole, for AVX2 (same
// comparisons and arithmetic in the same order, so the same plans), chosen at run time.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"), noinline)) static void rebalance_avx2(
    const double *recent, const double *history, int L, int E, int R, int G, int N, int M, int64_t *phy2log,
    int64_t *logcnt) {
  pf_eplb::rebalance<CandidateRules, 4>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
}
#endif

extern "C" int pf_eplb_rebalance(const double *recent, const double *history, int L, int E, int R, int G, int N,
                                 int M, int64_t *phy2log, int64_t *logcnt) {
  if (pf_eplb::check_shape(E, R, G, N, M)) return -1;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2")) {
    rebalance_avx2(recent, history, L, E, R, G, N, M, phy2log, logcnt);
    return 0;
  }
#endif
  pf_eplb::rebalance<CandidateRules, 2>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
  return 0;
}
