// CUDA implementation of the EPLB pipeline with the reference rules, all layers in one launch.
//
// The same three steps as eplb_pipeline.hpp (groups -> nodes, replication inside a node,
// replicas -> GPUs), with the same arithmetic and the same tie-breaking, so the result is
// bit-for-bit the CPU op's:
//   - one thread block per layer, one warp per node (the global policy: one warp);
//   - "argmax score" / "argmin bin load" are warp reductions over (value, index) pairs
//     that keep the lower index on ties -- the first-found extremum of the CPU loops;
//   - "sort by key, descending, ties by index" is a rank count (the position of an item is
//     the number of items that come before it), exact and parallel;
//   - every sum is done by one thread in the CPU's order (floating point is not associative).
// Built only with -DPF_EPLB_CUDA=ON; policyforge._eplb calls pf_eplb_cuda_rebalance for
// device="cuda".
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>

namespace {

struct Shape {
  int E, R, G, N, M;  // after the global-policy fallback (G % N != 0 -> G = N = 1)
  int epg, gpn, spn, epn, gpus, spg;
};

struct Best {
  double v;
  int i;
};

// keep the larger value; on ties the lower index
__device__ inline Best take_max(Best a, Best b) { return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a; }
// keep the smaller value; on ties the lower index (i < 0 means "no candidate")
__device__ inline Best take_min(Best a, Best b) {
  if (b.i < 0) return a;
  if (a.i < 0) return b;
  return (b.v < a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

__device__ inline Best warp_max(Best x) {
  for (int off = 16; off > 0; off >>= 1) {
    Best o{__shfl_down_sync(0xffffffffu, x.v, off), __shfl_down_sync(0xffffffffu, x.i, off)};
    x = take_max(x, o);
  }
  return Best{__shfl_sync(0xffffffffu, x.v, 0), __shfl_sync(0xffffffffu, x.i, 0)};
}

__device__ inline Best warp_min(Best x) {
  for (int off = 16; off > 0; off >>= 1) {
    Best o{__shfl_down_sync(0xffffffffu, x.v, off), __shfl_down_sync(0xffffffffu, x.i, off)};
    x = take_min(x, o);
  }
  return Best{__shfl_sync(0xffffffffu, x.v, 0), __shfl_sync(0xffffffffu, x.i, 0)};
}

// Balanced packing by one warp: items in descending weight (ties: lower index), each onto
// the lightest non-full bin (ties: lower index). order: scratch [n]; bin_load/bin_count:
// scratch [n_bins]; writes bin_of/rank_of [n].
__device__ void warp_packing(const double *w, int n, int n_bins, int capacity, int *order, double *bin_load,
                             int *bin_count, int *bin_of, int *rank_of, int lane) {
  // NaN counts as -inf (as on the CPU) so that the positions always form a permutation
  auto key = [](double x) { return x == x ? x : -HUGE_VAL; };
  for (int i = lane; i < n; i += 32) {
    const double ki = key(w[i]);
    int pos = 0;
    for (int j = 0; j < n; j++) pos += (key(w[j]) > ki) || (key(w[j]) == ki && j < i);
    order[pos] = i;
  }
  for (int b = lane; b < n_bins; b += 32) {
    bin_load[b] = 0.0;
    bin_count[b] = 0;
  }
  __syncwarp();
  for (int k = 0; k < n; k++) {
    Best best{0.0, -1};
    for (int b = lane; b < n_bins; b += 32)
      if (bin_count[b] < capacity) best = take_min(best, Best{bin_load[b], b});
    best = warp_min(best);
    if (lane == 0) {
      int i = order[k];
      bin_of[i] = best.i;
      rank_of[i] = bin_count[best.i]++;
      bin_load[best.i] += w[i];
    }
    __syncwarp();
  }
}

// Shared-memory layout of one block (one layer).
struct Scratch {
  double *load, *group_load, *node_w, *score, *phy_w, *bin_load;
  int *g_bin, *g_rank, *g_order, *node_experts, *cnt, *phy_log, *order, *p_bin, *p_rank, *bin_count;
};

__host__ __device__ inline size_t carve(const Shape &s, char *base, Scratch *out) {
  size_t off = 0;
  auto take = [&](size_t bytes) {
    char *p = base ? base + off : nullptr;
    off += (bytes + 15) & ~size_t(15);
    return p;
  };
  Scratch sc;
  sc.load = (double *)take(sizeof(double) * s.E);
  sc.group_load = (double *)take(sizeof(double) * s.G);
  sc.node_w = (double *)take(sizeof(double) * s.E);  // epn per node
  sc.score = (double *)take(sizeof(double) * s.E);
  sc.phy_w = (double *)take(sizeof(double) * s.R);   // spn per node
  sc.bin_load = (double *)take(sizeof(double) * (s.M + s.N));
  sc.g_bin = (int *)take(sizeof(int) * s.G);
  sc.g_rank = (int *)take(sizeof(int) * s.G);
  sc.g_order = (int *)take(sizeof(int) * s.G);
  sc.node_experts = (int *)take(sizeof(int) * s.E);
  sc.cnt = (int *)take(sizeof(int) * s.E);
  sc.phy_log = (int *)take(sizeof(int) * s.R);
  sc.order = (int *)take(sizeof(int) * s.R);
  sc.p_bin = (int *)take(sizeof(int) * s.R);
  sc.p_rank = (int *)take(sizeof(int) * s.R);
  sc.bin_count = (int *)take(sizeof(int) * (s.M + s.N));
  if (out) *out = sc;
  return off;
}

__global__ void rebalance_kernel(const double *recent, Shape s, int64_t *phy2log, int64_t *logcnt) {
  extern __shared__ __align__(16) char smem[];
  Scratch sc;
  carve(s, smem, &sc);
  const int layer = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const double *w = recent + (size_t)layer * s.E;
  int64_t *p2l = phy2log + (size_t)layer * s.R, *cnt_out = logcnt + (size_t)layer * s.E;

  for (int e = threadIdx.x; e < s.E; e += blockDim.x) sc.load[e] = w[e];
  __syncthreads();
  // a group's load summed by one thread in expert order, as the CPU does
  for (int g = threadIdx.x; g < s.G; g += blockDim.x) {
    double sum = 0.0;
    for (int j = 0; j < s.epg; j++) sum += sc.load[g * s.epg + j];
    sc.group_load[g] = sum;
  }
  __syncthreads();
  // 1. groups -> nodes (warp 0); the bins after the M GPU bins are its scratch
  if (warp == 0)
    warp_packing(sc.group_load, s.G, s.N, s.gpn, sc.g_order, sc.bin_load + s.M, sc.bin_count + s.M, sc.g_bin,
                 sc.g_rank, lane);
  __syncthreads();

  // 2. and 3.: warp `node` works on its node alone
  const int node = warp;
  int *experts = sc.node_experts + node * s.epn, *cnt = sc.cnt + node * s.epn;
  double *nw = sc.node_w + node * s.epn, *score = sc.score + node * s.epn;
  int *phy = sc.phy_log + node * s.spn;
  for (int g = 0; g < s.G; g++) {
    if (sc.g_bin[g] != node) continue;
    for (int j = lane; j < s.epg; j += 32) experts[sc.g_rank[g] * s.epg + j] = g * s.epg + j;
  }
  __syncwarp();
  for (int i = lane; i < s.epn; i += 32) {
    nw[i] = sc.load[experts[i]];
    cnt[i] = 1;
    phy[i] = i;
    score[i] = nw[i] / 1.0;
  }
  __syncwarp();
  for (int r = s.epn; r < s.spn; r++) {
    Best best{-1.0 / 0.0, s.epn};
    for (int i = lane; i < s.epn; i += 32) best = take_max(best, Best{score[i], i});
    best = warp_max(best);
    if (lane == 0) {
      int b = best.i;
      cnt[b]++;
      phy[r] = b;
      score[b] = nw[b] / (double)cnt[b];
    }
    __syncwarp();
  }
  double *pw = sc.phy_w + node * s.spn;
  for (int p = lane; p < s.spn; p += 32) pw[p] = nw[phy[p]] / (double)cnt[phy[p]];
  __syncwarp();
  int *p_bin = sc.p_bin + node * s.spn, *p_rank = sc.p_rank + node * s.spn;
  warp_packing(pw, s.spn, s.gpus, s.spg, sc.order + node * s.spn, sc.bin_load + node * s.gpus,
               sc.bin_count + node * s.gpus, p_bin, p_rank, lane);
  for (int p = lane; p < s.spn; p += 32) p2l[node * s.spn + p_bin[p] * s.spg + p_rank[p]] = experts[phy[p]];
  for (int i = lane; i < s.epn; i += 32) cnt_out[experts[i]] = cnt[i];
}

// Device buffers reused across calls: the op is called once per rebalance, every few minutes
// in production but thousands of times in a benchmark.
std::mutex buffers_mu;
double *d_recent = nullptr;
int64_t *d_phy2log = nullptr, *d_logcnt = nullptr;
size_t cap_recent = 0, cap_logcnt = 0, cap_phy2log = 0;

template <class T>
bool grow(T **p, size_t *cap, size_t n) {
  if (n <= *cap) return true;
  if (*p) cudaFree(*p);
  *p = nullptr;
  *cap = 0;
  if (cudaMalloc(p, n * sizeof(T)) != cudaSuccess) return false;
  *cap = n;
  return true;
}

int fail(char *err, int errlen, const char *what, cudaError_t rc) {
  snprintf(err, errlen, "%s: %s", what, cudaGetErrorString(rc));
  return -1;
}

}  // namespace

// recent: [L, E] host; phy2log: [L, R], logcnt: [L, E] host outputs. history is unused:
// the CUDA pipeline runs the reference rules, which plan on the recent window alone.
extern "C" int pf_eplb_cuda_rebalance(const double *recent, const double * /*history*/, int L, int E, int R, int G,
                                      int N, int M, int64_t *phy2log, int64_t *logcnt, char *err, int errlen) {
  if (G % N != 0) {
    G = 1;
    N = 1;
  }
  Shape s{E, R, G, N, M, E / G, G / N, R / N, E / N, M / N, R / M};
  if (N > 32) {
    snprintf(err, errlen, "the CUDA pipeline supports at most 32 nodes, got %d", N);
    return -1;
  }
  const size_t smem = carve(s, nullptr, nullptr);
  int device = 0, smem_max = 0, count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) return fail(err, errlen, "no usable CUDA device", rc);
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (smem > (size_t)smem_max) {
    snprintf(err, errlen, "shape needs %zu bytes of shared memory per layer, the GPU has %d", smem, smem_max);
    return -1;
  }
  if (smem > 48 * 1024)
    cudaFuncSetAttribute(rebalance_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  std::lock_guard<std::mutex> lock(buffers_mu);
  if (!grow(&d_recent, &cap_recent, (size_t)L * E) || !grow(&d_logcnt, &cap_logcnt, (size_t)L * E) ||
      !grow(&d_phy2log, &cap_phy2log, (size_t)L * R))
    return fail(err, errlen, "cudaMalloc", cudaGetLastError());
  if ((rc = cudaMemcpy(d_recent, recent, sizeof(double) * L * E, cudaMemcpyHostToDevice)) != cudaSuccess)
    return fail(err, errlen, "copy to GPU", rc);
  rebalance_kernel<<<L, 32 * N, smem>>>(d_recent, s, d_phy2log, d_logcnt);
  if ((rc = cudaGetLastError()) != cudaSuccess) return fail(err, errlen, "kernel launch", rc);
  if ((rc = cudaMemcpy(phy2log, d_phy2log, sizeof(int64_t) * L * R, cudaMemcpyDeviceToHost)) != cudaSuccess)
    return fail(err, errlen, "copy from GPU", rc);
  if ((rc = cudaMemcpy(logcnt, d_logcnt, sizeof(int64_t) * L * E, cudaMemcpyDeviceToHost)) != cudaSuccess)
    return fail(err, errlen, "copy from GPU", rc);
  return 0;
}
