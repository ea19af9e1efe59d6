// CUDA implementation of the EPLB pipeline with the reference rules, all layers at once:
// one thread per layer runs the same sequential algorithm as eplb_pipeline.hpp (layers are
// independent), with per-layer scratch in global memory. Same tie-breaking, same results.
// Built only with -DPF_EPLB_CUDA=ON; called by policyforge._eplb for device="cuda".
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

namespace {

// stable order by descending key (insertion sort: n is small, <= a few hundred)
__device__ void order_desc(const double *key, int n, int *order) {
  for (int i = 0; i < n; i++) {
    int j = i;
    while (j > 0 && key[order[j - 1]] < key[i]) {
      order[j] = order[j - 1];
      j--;
    }
    order[j] = i;
  }
}

__device__ void packing(const double *w, int n, int n_bins, int cap, int *bin_of, int *rank_of, int *order,
                        double *bin_load, int *bin_count) {
  order_desc(w, n, order);
  for (int b = 0; b < n_bins; b++) { bin_load[b] = 0; bin_count[b] = 0; }
  for (int k = 0; k < n; k++) {
    int i = order[k], best = -1;
    for (int b = 0; b < n_bins; b++)
      if (bin_count[b] < cap && (best < 0 || bin_load[b] < bin_load[best])) best = b;
    bin_of[i] = best;
    rank_of[i] = bin_count[best]++;
    bin_load[best] += w[i];
  }
}

struct Scratch {
  double *load, *group_load, *node_w, *phy_w, *bin_load;
  int *order, *bin_count, *g_bin, *g_rank, *cnt, *phy_log, *p_bin, *p_rank, *node_experts;
};

__global__ void rebalance_kernel(const double *w_all, int L, int E, int R, int G, int N, int M, int64_t *phy2log_all,
                                 int64_t *logcnt_all, Scratch s) {
  int l = blockIdx.x * blockDim.x + threadIdx.x;
  if (l >= L) return;
  if (G % N != 0) { G = 1; N = 1; }
  const int epg = E / G, gpn = G / N, spn = R / N, epn = E / N, gpus = M / N, spg = R / M;
  const int big = E > R ? E : R;
  double *load = s.load + (size_t)l * E, *group_load = s.group_load + (size_t)l * G;
  double *node_w = s.node_w + (size_t)l * epn, *phy_w = s.phy_w + (size_t)l * spn, *bin_load = s.bin_load + (size_t)l * (M + G);
  int *order = s.order + (size_t)l * big, *bin_count = s.bin_count + (size_t)l * (M + G);
  int *g_bin = s.g_bin + (size_t)l * G, *g_rank = s.g_rank + (size_t)l * G, *cnt = s.cnt + (size_t)l * epn;
  int *phy_log = s.phy_log + (size_t)l * spn, *p_bin = s.p_bin + (size_t)l * spn, *p_rank = s.p_rank + (size_t)l * spn;
  int *node_experts = s.node_experts + (size_t)l * epn;
  const double *w = w_all + (size_t)l * E;
  int64_t *phy2log = phy2log_all + (size_t)l * R, *logcnt = logcnt_all + (size_t)l * E;
  for (int g = 0; g < G; g++) group_load[g] = 0;
  for (int e = 0; e < E; e++) { load[e] = w[e]; group_load[e / epg] += w[e]; logcnt[e] = 0; }
  packing(group_load, G, N, gpn, g_bin, g_rank, order, bin_load, bin_count);
  for (int node = 0; node < N; node++) {
    for (int g = 0; g < G; g++)
      if (g_bin[g] == node)
        for (int j = 0; j < epg; j++) node_experts[g_rank[g] * epg + j] = g * epg + j;
    for (int i = 0; i < epn; i++) { node_w[i] = load[node_experts[i]]; cnt[i] = 1; phy_log[i] = i; }
    for (int r = epn; r < spn; r++) {
      int best = 0;
      for (int i = 1; i < epn; i++)
        if (node_w[i] / cnt[i] > node_w[best] / cnt[best]) best = i;
      cnt[best]++;
      phy_log[r] = best;
    }
    for (int p = 0; p < spn; p++) phy_w[p] = node_w[phy_log[p]] / cnt[phy_log[p]];
    packing(phy_w, spn, gpus, spg, p_bin, p_rank, order, bin_load, bin_count);
    for (int p = 0; p < spn; p++) phy2log[node * spn + p_bin[p] * spg + p_rank[p]] = node_experts[phy_log[p]];
    for (int i = 0; i < epn; i++) logcnt[node_experts[i]] = cnt[i];
  }
}

}  // namespace

#define PF_CUDA_TRY(call)                                                    \
  do {                                                                       \
    cudaError_t err_ = (call);                                               \
    if (err_ != cudaSuccess) {                                               \
      snprintf(err, errlen, "%s: %s", #call, cudaGetErrorString(err_));      \
      goto done;                                                             \
    }                                                                        \
  } while (0)

extern "C" int pf_eplb_cuda_rebalance(const double *recent, const double *history, int L, int E, int R, int G, int N,
                                      int M, int64_t *phy2log, int64_t *logcnt, char *err, int errlen) {
  (void)history;  // the reference rules plan on the recent window only
  int rc = -1;
  const int n = (G % N == 0) ? N : 1, big = E > R ? E : R;
  const size_t Ls = (size_t)L;
  double *d_w = nullptr, *d_dbl = nullptr;
  int *d_int = nullptr;
  int64_t *d_p2l = nullptr, *d_cnt = nullptr;
  Scratch s{};
  size_t n_dbl = Ls * (E + G + E / n + R / n + M + G), n_int = Ls * (big + (M + G) + 2 * G + E / n + 3 * (R / n) + E / n);
  PF_CUDA_TRY(cudaMalloc(&d_w, Ls * E * sizeof(double)));
  PF_CUDA_TRY(cudaMalloc(&d_dbl, n_dbl * sizeof(double)));
  PF_CUDA_TRY(cudaMalloc(&d_int, n_int * sizeof(int)));
  PF_CUDA_TRY(cudaMalloc(&d_p2l, Ls * R * sizeof(int64_t)));
  PF_CUDA_TRY(cudaMalloc(&d_cnt, Ls * E * sizeof(int64_t)));
  {
    double *pd = d_dbl;
    s.load = pd; pd += Ls * E;
    s.group_load = pd; pd += Ls * G;
    s.node_w = pd; pd += Ls * (E / n);
    s.phy_w = pd; pd += Ls * (R / n);
    s.bin_load = pd;
    int *pi = d_int;
    s.order = pi; pi += Ls * big;
    s.bin_count = pi; pi += Ls * (M + G);
    s.g_bin = pi; pi += Ls * G;
    s.g_rank = pi; pi += Ls * G;
    s.cnt = pi; pi += Ls * (E / n);
    s.phy_log = pi; pi += Ls * (R / n);
    s.p_bin = pi; pi += Ls * (R / n);
    s.p_rank = pi; pi += Ls * (R / n);
    s.node_experts = pi;
  }
  PF_CUDA_TRY(cudaMemcpy(d_w, recent, Ls * E * sizeof(double), cudaMemcpyHostToDevice));
  rebalance_kernel<<<(L + 63) / 64, 64>>>(d_w, L, E, R, G, N, M, d_p2l, d_cnt, s);
  PF_CUDA_TRY(cudaGetLastError());
  PF_CUDA_TRY(cudaMemcpy(phy2log, d_p2l, Ls * R * sizeof(int64_t), cudaMemcpyDeviceToHost));
  PF_CUDA_TRY(cudaMemcpy(logcnt, d_cnt, Ls * E * sizeof(int64_t), cudaMemcpyDeviceToHost));
  rc = 0;
done:
  cudaFree(d_w);
  cudaFree(d_dbl);
  cudaFree(d_int);
  cudaFree(d_p2l);
  cudaFree(d_cnt);
  return rc;
}
