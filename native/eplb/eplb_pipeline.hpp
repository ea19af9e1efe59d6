// The fixed EPLB pipeline (expert-parallel load balancing for MoE inference), written from
// the public description of DeepSeek's open-source EPLB (its README and paper).
//
// For each layer, given the load of every logical expert:
//   1. pack expert groups onto nodes (G/N groups per node)                 -- packing rules
//   2. inside each node, give the node's R/N slots to its experts: one replica each,
//      every extra replica to the expert of highest replica_score()        -- replication rule
//   3. pack each node's replicas onto its GPUs (R/M slots per GPU)          -- packing rules
// When G % N != 0 the same runs with one node and one group (the global policy).
//
// The policy lives in a Rules type with four static functions:
//   expected_load(recent, history)  load to plan for (reference: the recent window)
//   replica_score(load, count)      next replica goes to the max (reference: load / count)
//   pack_key(weight, index)         items are placed in descending key order (reference: weight)
//   bin_cost(bin_load, bin_count, capacity, weight)  item goes to the non-full bin of least
//                                   cost (reference: bin_load)
// Ties always go to the lower index, so results are deterministic.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

// The hot functions are always inlined, so that a caller compiled for AVX2 (the op's and a
// candidate's dispatch) gets all of the pipeline compiled for AVX2. (`flatten` would do the
// same but also inlines std::stable_sort & co.: a candidate then took 10x longer to compile.)
#define PF_EPLB_INLINE inline __attribute__((always_inline))

namespace pf_eplb {

struct Keyed {
  double key;
  int item;
};

// Every buffer one rebalance needs, allocated once per call and reused across layers. (Not
// thread_local: in a candidate library loaded with dlopen each access would go through
// __tls_get_addr, which made the same pipeline 2x slower there.)
struct Scratch {
  std::vector<double> load, group_load, node_w, phy_w, score, bin_load, rank_keys;
  std::vector<Keyed> order, sorted;
  std::vector<int> bin_count, g_bin, g_rank, cnt, phy_log, p_bin, p_rank, node_experts;
};

// How many items go before item i: larger keys, and equal keys of earlier items.
// Written with GCC/Clang vector types of VW doubles: VW = 2 is SSE2 (or NEON), VW = 4 is
// for a caller compiled for AVX2 (see rebalance_dispatch; without AVX2 the compiler would
// split each 4-wide operation through memory, 2.5x slower). The scalar loop does not
// vectorize because the comparison result is narrowed to int.
template <int VW>
struct Vec;  // (GCC drops vector_size on a typedef that depends on a template parameter)
template <>
struct Vec<2> {
  typedef double d __attribute__((vector_size(16)));
  typedef long long l __attribute__((vector_size(16)));
};
template <>
struct Vec<4> {
  typedef double d __attribute__((vector_size(32)));
  typedef long long l __attribute__((vector_size(32)));
};

template <int VW>
PF_EPLB_INLINE int count_before(const double *k, int i, int n) {
  typedef typename Vec<VW>::d vd;
  typedef typename Vec<VW>::l vl;
  const double ki = k[i];
  vd kv;
  vl acc;
  for (int l = 0; l < VW; l++) { kv[l] = ki; acc[l] = 0; }
  int j = 0;
  for (; j + VW <= i; j += VW) {  // earlier items go first on ties
    vd x;
    __builtin_memcpy(&x, k + j, sizeof x);
    acc -= (vl)(x >= kv);
  }
  int pos = 0;
  for (; j < i; j++) pos += k[j] >= ki;
  for (j = i + 1; j + VW <= n; j += VW) {
    vd x;
    __builtin_memcpy(&x, k + j, sizeof x);
    acc -= (vl)(x > kv);
  }
  for (; j < n; j++) pos += k[j] > ki;
  for (int l = 0; l < VW; l++) pos += (int)acc[l];
  return pos;
}

// Index of the first maximum of s[0, n) as a scan from s[0] taking strictly greater values
// would find it (a NaN never wins, except s[0], where the scan starts): the maximum over VW
// lanes first, then its first occurrence. The scan's chain of conditional moves took 6% of
// a call.
template <int VW>
PF_EPLB_INLINE int first_max(const double *s, int n) {
  typedef typename Vec<VW>::d vd;
  const double ninf = -std::numeric_limits<double>::infinity();
  if (s[0] != s[0]) return 0;
  vd m;
  for (int l = 0; l < VW; l++) m[l] = ninf;
  int i = 0;
  for (; i + VW <= n; i += VW) {
    vd x;
    __builtin_memcpy(&x, s + i, sizeof x);
    m = x > m ? x : m;
  }
  double mx = ninf;
  for (int l = 0; l < VW; l++) mx = m[l] > mx ? m[l] : mx;
  for (; i < n; i++) mx = s[i] > mx ? s[i] : mx;
  if (mx == ninf) return 0;
  for (i = 0; s[i] != mx; i++) {
  }
  return i;
}

// Sort by descending key, ties by lower item, as a rank count: an item's position is the
// number of items that go before it. For ~70 items this O(n^2) loop has no data-dependent
// branch and vectorizes, and beats std::sort, whose comparisons mispredict half the time.
// NaN keys count as -inf so that the positions always form a permutation. Items arrive in
// index order.
template <int VW>
PF_EPLB_INLINE void sort_descending(std::vector<Keyed> &items, std::vector<double> &keys, std::vector<Keyed> &sorted) {
  const int n = (int)items.size();
  keys.resize(n);
  for (int i = 0; i < n; i++) {
    keys[i] = items[i].key == items[i].key ? items[i].key : -HUGE_VAL;
    items[i].key = keys[i];
  }
  if (n > 256) {  // quadratic is no longer cheap (one node of a large global policy)
    std::stable_sort(items.begin(), items.end(), [](const Keyed &a, const Keyed &b) { return a.key > b.key; });
    return;
  }
  sorted.resize(n);
  const double *k = keys.data();
  for (int i = 0; i < n; i++) {
    const int pos = count_before<VW>(k, i, n);
    sorted[pos] = {k[i], items[i].item};
  }
  items.swap(sorted);
}

// The non-full bin of least cost, ties to the lower index: a plain scan from the first
// non-full bin, taking a bin whose cost is strictly less (so a NaN cost never wins, except
// at that first bin). Written with selects, which the compiler emits as conditional moves.
template <class Rules>
PF_EPLB_INLINE int choose_bin_scan(const double *bin_load, const int *bin_count, int n_bins, int capacity, double w) {
  int best = -1;
  double best_cost = std::numeric_limits<double>::infinity();
  for (int b = 0; b < n_bins; b++) {
    double c = Rules::bin_cost(bin_load[b], (double)bin_count[b], (double)capacity, w);
    bool take = (bin_count[b] < capacity) & ((best < 0) | (c < best_cost));
    best = take ? b : best;
    best_cost = take ? c : best_cost;
  }
  return best;
}

// The same placement for a bin count known at compile time: the loops over bins unroll and
// the bins' loads and counts stay in registers (updated with selects, not stores).
template <class Rules, int NB>
PF_EPLB_INLINE void place_fixed(const double *w, const Keyed *order, int n_items, int capacity, int *bin_of, int *rank_of) {
  double bl[NB];
  int bc[NB];
#pragma GCC unroll 16
  for (int b = 0; b < NB; b++) { bl[b] = 0.0; bc[b] = 0; }
  for (int k = 0; k < n_items; k++) {
    const int i = order[k].item;
    const double wi = w[i];
    int best = -1;
    double best_cost = std::numeric_limits<double>::infinity();
#pragma GCC unroll 16
    for (int b = 0; b < NB; b++) {
      double c = Rules::bin_cost(bl[b], (double)bc[b], (double)capacity, wi);
      bool take = (bc[b] < capacity) & ((best < 0) | (c < best_cost));
      best = take ? b : best;
      best_cost = take ? c : best_cost;
    }
    int rank = 0;
#pragma GCC unroll 16
    for (int b = 0; b < NB; b++) {
      const bool t = b == best;
      rank = t ? bc[b] : rank;
      bc[b] += t;
      bl[b] = t ? bl[b] + wi : bl[b];
    }
    bin_of[i] = best;
    rank_of[i] = rank;
  }
}

template <class Rules>
PF_EPLB_INLINE void place_scan(const double *w, const Keyed *order, int n_items, int n_bins, int capacity, int *bin_of,
                       int *rank_of, double *bin_load, int *bin_count) {
  for (int k = 0; k < n_items; k++) {
    const int i = order[k].item;
    const int best = choose_bin_scan<Rules>(bin_load, bin_count, n_bins, capacity, w[i]);
    bin_of[i] = best;
    rank_of[i] = bin_count[best]++;
    bin_load[best] += w[i];
  }
}

// Place items into n_bins bins of `capacity` items each. Writes bin and rank per item.
// This runs ~58 x 5 times per call; the common bin counts have a compile-time loop.
template <class Rules, int VW>
PF_EPLB_INLINE void balanced_packing(const double *w, int n_items, int n_bins, int capacity, int *bin_of,
                             int *rank_of, Scratch &sc) {
  std::vector<Keyed> &order = sc.order;
  std::vector<double> &bin_load = sc.bin_load;
  std::vector<int> &bin_count = sc.bin_count;
  order.resize(n_items);
  for (int i = 0; i < n_items; i++) order[i] = {Rules::pack_key(w[i], (double)i), i};
  sort_descending<VW>(order, sc.rank_keys, sc.sorted);
  bin_load.assign(n_bins, 0.0);
  bin_count.assign(n_bins, 0);
  const Keyed *o = order.data();
  double *bl = bin_load.data();
  int *bc = bin_count.data();
  switch (n_bins) {
    case 2: place_fixed<Rules, 2>(w, o, n_items, capacity, bin_of, rank_of); break;
    case 4: place_fixed<Rules, 4>(w, o, n_items, capacity, bin_of, rank_of); break;
    case 8: place_fixed<Rules, 8>(w, o, n_items, capacity, bin_of, rank_of); break;
    default: place_scan<Rules>(w, o, n_items, n_bins, capacity, bin_of, rank_of, bl, bc);
  }
}

// One layer. weight/history: [E]; phy2log: [R]; logcnt: [E].
template <class Rules, int VW>
PF_EPLB_INLINE void rebalance_layer(const double *recent, const double *history, int E, int R, int G, int N, int M,
                            int64_t *phy2log, int64_t *logcnt, Scratch &sc) {
  if (G % N != 0) { G = 1; N = 1; }
  const int experts_per_group = E / G, groups_per_node = G / N, slots_per_node = R / N;
  const int experts_per_node = E / N, gpus_per_node = M / N, slots_per_gpu = R / M;
  auto &load = sc.load, &group_load = sc.group_load, &node_w = sc.node_w, &phy_w = sc.phy_w, &score = sc.score;
  auto &g_bin = sc.g_bin, &g_rank = sc.g_rank, &cnt = sc.cnt, &phy_log = sc.phy_log, &p_bin = sc.p_bin;
  auto &p_rank = sc.p_rank, &node_experts = sc.node_experts;
  load.resize(E);
  group_load.assign(G, 0.0);
  node_w.resize(experts_per_node);
  score.resize(experts_per_node);
  phy_w.resize(slots_per_node);
  g_bin.resize(G);
  g_rank.resize(G);
  cnt.resize(experts_per_node);
  phy_log.resize(slots_per_node);
  p_bin.resize(slots_per_node);
  p_rank.resize(slots_per_node);
  node_experts.resize(experts_per_node);
  for (int e = 0; e < E; e++) load[e] = Rules::expected_load(recent[e], history ? history[e] : recent[e]);
  for (int g = 0; g < G; g++) {  // summed in expert order, like the references
    double sum = 0.0;
    for (int j = 0; j < experts_per_group; j++) sum += load[g * experts_per_group + j];
    group_load[g] = sum;
  }
  // 1. groups -> nodes
  balanced_packing<Rules, VW>(group_load.data(), G, N, groups_per_node, g_bin.data(), g_rank.data(), sc);
  for (int e = 0; e < E; e++) logcnt[e] = 0;
  for (int node = 0; node < N; node++) {
    // the node's experts, in the order of their groups' ranks on it
    for (int g = 0; g < G; g++) {
      if (g_bin[g] != node) continue;
      for (int j = 0; j < experts_per_group; j++)
        node_experts[g_rank[g] * experts_per_group + j] = g * experts_per_group + j;
    }
    // 2. replicate inside the node
    for (int i = 0; i < experts_per_node; i++) {
      node_w[i] = load[node_experts[i]];
      cnt[i] = 1;
      phy_log[i] = i;
    }
    // a score depends only on its own expert, so only the winner's is recomputed
    for (int i = 0; i < experts_per_node; i++) score[i] = Rules::replica_score(node_w[i], 1.0);
    for (int r = experts_per_node; r < slots_per_node; r++) {
      const int best = first_max<VW>(score.data(), experts_per_node);
      cnt[best]++;
      phy_log[r] = best;
      score[best] = Rules::replica_score(node_w[best], (double)cnt[best]);
    }
    // 3. replicas -> GPUs of the node
    for (int p = 0; p < slots_per_node; p++) phy_w[p] = node_w[phy_log[p]] / cnt[phy_log[p]];
    balanced_packing<Rules, VW>(phy_w.data(), slots_per_node, gpus_per_node, slots_per_gpu, p_bin.data(),
                            p_rank.data(), sc);
    for (int p = 0; p < slots_per_node; p++) {
      int slot = node * slots_per_node + p_bin[p] * slots_per_gpu + p_rank[p];
      phy2log[slot] = node_experts[phy_log[p]];
    }
    for (int i = 0; i < experts_per_node; i++) logcnt[node_experts[i]] = cnt[i];
  }
}

// All layers. recent/history: [L, E] row-major; history may be null.
template <class Rules, int VW = 2>
PF_EPLB_INLINE void rebalance(const double *recent, const double *history, int L, int E, int R, int G, int N, int M,
                      int64_t *phy2log, int64_t *logcnt) {
  Scratch sc;
  for (int l = 0; l < L; l++)
    rebalance_layer<Rules, VW>(recent + (size_t)l * E, history ? history + (size_t)l * E : nullptr, E, R, G, N, M,
                           phy2log + (size_t)l * R, logcnt + (size_t)l * E, sc);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The pipeline compiled for AVX2 throughout (the PF_EPLB_INLINE functions inline into it).
template <class Rules>
__attribute__((target("avx2"), noinline)) void rebalance_avx2(const double *recent, const double *history, int L,
                                                              int E, int R, int G, int N, int M, int64_t *phy2log,
                                                              int64_t *logcnt) {
  rebalance<Rules, 4>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
}
#endif

// All layers with the copy of the pipeline this CPU runs best: AVX2 where the CPU has it (and
// allow_avx2 is set; tests clear it to check the other copy), else SSE2. Both copies make only
// comparisons and the same additions and divisions in the same order: the same plans, bit for bit.
template <class Rules>
inline void rebalance_dispatch(const double *recent, const double *history, int L, int E, int R, int G, int N, int M,
                               int64_t *phy2log, int64_t *logcnt, bool allow_avx2 = true) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (allow_avx2 && __builtin_cpu_supports("avx2"))
    return rebalance_avx2<Rules>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
#endif
  rebalance<Rules, 2>(recent, history, L, E, R, G, N, M, phy2log, logcnt);
}

// Shapes the pipeline needs; returns an error message or nullptr.
inline const char *check_shape(int E, int R, int G, int N, int M) {
  if (E <= 0 || R <= 0 || G <= 0 || N <= 0 || M <= 0) return "all sizes must be positive";
  if (E % G) return "num_groups must divide the number of experts";
  if (M % N) return "num_nodes must divide num_gpus";
  if (R % M) return "num_gpus must divide num_replicas";
  if (R < E) return "num_replicas must be at least the number of experts";
  int n = (G % N == 0) ? N : 1;
  if (E % n) return "num_nodes must divide the number of experts";
  if ((R / n) < (E / n)) return "each node needs at least one slot per expert";
  return nullptr;
}

struct ReferenceRules {
  static inline double expected_load(double recent, double) { return recent; }
  static inline double replica_score(double load, double count) { return load / count; }
  static inline double pack_key(double weight, double) { return weight; }
  static inline double bin_cost(double bin_load, double, double, double) { return bin_load; }
};

}  // namespace pf_eplb
