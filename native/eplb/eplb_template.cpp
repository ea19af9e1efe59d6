// A policyforge EPLB candidate: the generated rules + the fixed pipeline, as a shared
// library with one C entry point that policyforge._eplb loads (rules_lib=...).
#include <cmath>
#include <cstdint>

#include "eplb_pipeline.hpp"
#include "eplb_policy.hpp"

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

// the rules one at a time, for pf-eplb-run's probe (which = 0..3 in the order above)
extern "C" double pf_eplb_rule(int which, double a, double b, double c, double d) {
  switch (which) {
    case 0: return CandidateRules::expected_load(a, b);
    case 1: return CandidateRules::replica_score(a, b);
    case 2: return CandidateRules::pack_key(a, b);
    default: return CandidateRules::bin_cost(a, b, c, d);
  }
}

extern "C" int pf_eplb_rebalance(const double *recent, const double *history, int L, int E, int R, int G, int N,
                                 int M, int64_t *phy2log, int64_t *logcnt) {
  if (pf_eplb::check_shape(E, R, G, N, M)) return -1;
  pf_eplb::rebalance_dispatch<CandidateRules>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
  return 0;
}
