// policyforge._eplb: the EPLB op for Python.
//
//   rebalance_experts(weight[L,E], num_replicas, num_groups, num_nodes, num_gpus,
//                     history=None, rules_lib="", device="cpu")
//     -> (phy2log[L,R], log2phy[L,E,maxcnt] (-1 padded), logcnt[L,E]), all int64
//
// With rules_lib empty the reference rules (DeepSeek's EPLB behaviour) are compiled in;
// otherwise the library built from a policyforge candidate is loaded and its rules used.
#include <dlfcn.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "eplb_pipeline.hpp"

namespace py = pybind11;
using RebalanceFn = int (*)(const double *, const double *, int, int, int, int, int, int, int64_t *, int64_t *);

#ifdef PF_EPLB_CUDA
extern "C" int pf_eplb_cuda_rebalance(const double *recent, const double *history, int L, int E, int R, int G,
                                      int N, int M, int64_t *phy2log, int64_t *logcnt, char *err, int errlen);
#endif

static RebalanceFn load_rules(const std::string &path) {
  static std::mutex mu;
  static std::map<std::string, RebalanceFn> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(path);
  if (it != loaded.end()) return it->second;
  void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) throw std::runtime_error(std::string("cannot load rules library: ") + dlerror());
  auto fn = reinterpret_cast<RebalanceFn>(dlsym(h, "pf_eplb_rebalance"));
  if (!fn) throw std::runtime_error("rules library " + path + " has no pf_eplb_rebalance");
  loaded[path] = fn;
  return fn;
}

using DArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// Loads are token counts: a NaN or a negative one would make the placement meaningless
// (and NaN keys have no order to sort by).
// (No early exit: the loop vectorizes; an element-by-element branch took 2% of a call.)
static void check_loads(const DArray &a, const char *name) {
  const double *p = a.data();
  ssize_t bad = 0;
  for (ssize_t i = 0; i < a.size(); i++) bad += !(p[i] >= 0) | (p[i] == HUGE_VAL);
  if (bad) throw std::invalid_argument(std::string(name) + " must be finite and non-negative");
}

// The reference rules run the copy of the pipeline this CPU runs best (rebalance_dispatch).
static bool use_avx2 = true;  // tests switch it off to check the SSE2 copy too

static py::tuple rebalance_experts(DArray weight, int num_replicas, int num_groups, int num_nodes, int num_gpus,
                                   py::object history, const std::string &rules_lib, const std::string &device) {
  if (weight.ndim() != 2) throw std::invalid_argument("weight must be 2-D [layers, experts]");
  const int L = (int)weight.shape(0), E = (int)weight.shape(1), R = num_replicas;
  if (const char *err = pf_eplb::check_shape(E, R, num_groups, num_nodes, num_gpus)) throw std::invalid_argument(err);
  check_loads(weight, "weight");
  DArray hist;
  const double *hp = nullptr;
  if (!history.is_none()) {
    hist = DArray::ensure(history);
    if (!hist || hist.ndim() != 2 || hist.shape(0) != L || hist.shape(1) != E)
      throw std::invalid_argument("history must have the shape of weight");
    check_loads(hist, "history");
    hp = hist.data();
  }
  py::array_t<int64_t> phy2log({L, R}), logcnt({L, E});
  const double *wp = weight.data();
  int64_t *p2l = phy2log.mutable_data(), *cnt = logcnt.mutable_data();
  if (device == "cuda") {
#ifdef PF_EPLB_CUDA
    if (!rules_lib.empty()) throw std::invalid_argument("device='cuda' runs the reference rules only");
    char err[256] = {0};
    int rc;
    {
      py::gil_scoped_release nogil;
      rc = pf_eplb_cuda_rebalance(wp, hp, L, E, R, num_groups, num_nodes, num_gpus, p2l, cnt, err, sizeof err);
    }
    if (rc != 0) throw std::runtime_error(std::string("CUDA rebalance failed: ") + err);
#else
    throw std::runtime_error("policyforge._eplb was built without CUDA (configure with -DPF_EPLB_CUDA=ON)");
#endif
  } else if (device != "cpu") {
    throw std::invalid_argument("device must be 'cpu' or 'cuda'");
  } else if (rules_lib.empty()) {
    py::gil_scoped_release nogil;
    pf_eplb::rebalance_dispatch<pf_eplb::ReferenceRules>(wp, hp, L, E, R, num_groups, num_nodes, num_gpus, p2l, cnt,
                                                         use_avx2);
  } else {
    RebalanceFn fn = load_rules(rules_lib);
    int rc;
    {
      py::gil_scoped_release nogil;
      rc = fn(wp, hp, L, E, R, num_groups, num_nodes, num_gpus, p2l, cnt);
    }
    if (rc != 0) throw std::runtime_error("the rules library rejected the shapes");
  }
  // log2phy: the physical slots of each logical expert, in slot order, -1 padded
  int64_t maxcnt = 1;
  for (ssize_t i = 0; i < (ssize_t)L * E; i++) maxcnt = std::max(maxcnt, cnt[i]);
  py::array_t<int64_t> log2phy({(ssize_t)L, (ssize_t)E, (ssize_t)maxcnt});
  int64_t *l2p = log2phy.mutable_data();
  std::fill(l2p, l2p + (size_t)L * E * maxcnt, (int64_t)-1);
  std::vector<int64_t> fill(E);
  for (int l = 0; l < L; l++) {
    std::fill(fill.begin(), fill.end(), 0);
    for (int s = 0; s < R; s++) {
      int64_t e = p2l[(size_t)l * R + s];
      if (e < 0 || e >= E || fill[e] >= maxcnt) continue;  // the validator reports it
      l2p[((size_t)l * E + e) * maxcnt + fill[e]++] = s;
    }
  }
  return py::make_tuple(phy2log, log2phy, logcnt);
}

PYBIND11_MODULE(_eplb, m) {
  m.doc() = "EPLB (MoE expert placement) op of policyforge";
  m.def("rebalance_experts", &rebalance_experts, py::arg("weight"), py::arg("num_replicas"),
        py::arg("num_groups"), py::arg("num_nodes"), py::arg("num_gpus"), py::arg("history") = py::none(),
        py::arg("rules_lib") = "", py::arg("device") = "cpu");
  m.def("_use_avx2", [](bool on) {
    bool was = use_avx2;
    use_avx2 = on;
    return was;
  }, "tests: run the reference rules' AVX2 copy where the CPU has AVX2 (default) or the SSE2 one; returns the old setting");
#if defined(__x86_64__) && defined(__GNUC__)
  m.attr("has_avx2") = (bool)__builtin_cpu_supports("avx2");
#else
  m.attr("has_avx2") = false;
#endif
#ifdef PF_EPLB_CUDA
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
}
