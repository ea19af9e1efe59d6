// pf-eplb-run: runs one EPLB policy for policyforge, inside its sandbox, and only computes.
//
//   pf-eplb-run --windows W.f64 --count W --layers L --experts E --replicas R --groups G
//               --nodes N --gpus M [--rules LIB.so] [--probe]
//
// W.f64 holds W load windows, float64 [W, L, E]. The program loads them and the candidate's
// rules library (without --rules: the reference rules), then locks itself down
// (pf_lockdown: no file, process or socket from here on) and
//   --probe  calls each rule on inputs that can occur (non-negative loads, counts >= 1, ...)
//            and prints one line per non-finite result (exit 1);
//   else     plans every window i = 0..W-2 from window i and the mean of windows 0..i, and
//            writes each plan's phy2log to stdout (int32 [L, R], no header); then reads window
//            indices (int32) from stdin until end of input and answers each with that
//            window's plan again, so that policyforge can time the rebalance from outside.
// It validates and scores nothing: policyforge does, from the plans, in its own process.
#include <dlfcn.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "eplb_pipeline.hpp"
#include "pf_probe_crash.h"
#include "pf_seccomp.h"

using RebalanceFn = int (*)(const double *, const double *, int, int, int, int, int, int, int64_t *, int64_t *);
using RuleFn = double (*)(int, double, double, double, double);

static void die(const std::string &msg) {
  fprintf(stderr, "pf-eplb-run: %s\n", msg.c_str());
  exit(2);
}

static bool write_all(const void *p, size_t n) {
  const char *c = static_cast<const char *>(p);
  while (n) {
    ssize_t k = write(1, c, n);
    if (k <= 0) return false;
    c += k;
    n -= (size_t)k;
  }
  return true;
}

static bool read_all(void *p, size_t n) {
  char *c = static_cast<char *>(p);
  while (n) {
    ssize_t k = read(0, c, n);
    if (k <= 0) return false;
    c += k;
    n -= (size_t)k;
  }
  return true;
}

// the rules on inputs that occur: loads and weights >= 0, counts >= 1, bins below capacity
static int probe(RuleFn rule) {
  static const double loads[] = {0, 1, 7, 100, 1e4, 1e6, 1e9};
  static const double counts[] = {1, 2, 3, 8, 64};
  static const double indices[] = {0, 1, 37, 255};
  static const double caps[] = {1, 8, 9, 72};
  struct Args { double a, b, c, d; };
  std::vector<Args> cases[4];
  for (double a : loads) {
    for (double b : loads) cases[0].push_back({a, b, 0, 0});
    for (double b : counts) cases[1].push_back({a, b, 0, 0});
    for (double b : indices) cases[2].push_back({a, b, 0, 0});
    for (double cap : caps)
      for (double count : {0.0, cap - 1})
        for (double w : loads) cases[3].push_back({a, count, cap, w});
  }
  static const char *names[] = {"expected_load(recent=%g, history=%g)", "replica_score(load=%g, count=%g)",
                                "pack_key(weight=%g, index=%g)",
                                "bin_cost(bin_load=%g, bin_count=%g, capacity=%g, weight=%g)"};
  int problems = 0;
  for (int which = 0; which < 4; which++)
    for (const Args &x : cases[which]) {
      pf_probe_calling(names[which], x.a, x.b, x.c, x.d);
      double r = rule(which, x.a, x.b, x.c, x.d);
      if (std::isfinite(r)) continue;
      printf("probe: ");
      printf(names[which], x.a, x.b, x.c, x.d);
      printf(" returned %s (return a finite number: guard divisions with pf_div, logs with pf_log, and "
             "square roots of differences with pf_max(0, ...))\n",
             std::isnan(r) ? "NaN" : r > 0 ? "+inf" : "-inf");
      problems++;
      break;  // one line per rule
    }
  fflush(stdout);
  return problems ? 1 : 0;
}

int main(int argc, char **argv) {
  std::string windows, rules;
  long W = 0, L = 0, E = 0, R = 0, G = 0, N = 0, M = 0;
  bool probing = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--probe") { probing = true; continue; }
    if (i + 1 >= argc) die("missing value for " + a);
    const char *v = argv[++i];
    if (a == "--windows") windows = v;
    else if (a == "--rules") rules = v;
    else if (a == "--count") W = atol(v);
    else if (a == "--layers") L = atol(v);
    else if (a == "--experts") E = atol(v);
    else if (a == "--replicas") R = atol(v);
    else if (a == "--groups") G = atol(v);
    else if (a == "--nodes") N = atol(v);
    else if (a == "--gpus") M = atol(v);
    else die("unknown option " + a);
  }
  if (W < 2 || L <= 0 || windows.empty()) die("need --windows, --count >= 2 and the shape");
  if (const char *err = pf_eplb::check_shape((int)E, (int)R, (int)G, (int)N, (int)M)) die(err);

  std::vector<double> win((size_t)W * L * E);
  FILE *f = fopen(windows.c_str(), "rb");
  if (!f || fread(win.data(), sizeof(double), win.size(), f) != win.size()) die("cannot read " + windows);
  fclose(f);
  RebalanceFn fn = nullptr;
  RuleFn rule = nullptr;
  if (!rules.empty()) {
    void *h = dlopen(rules.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) die(std::string("cannot load the rules library: ") + dlerror());
    fn = reinterpret_cast<RebalanceFn>(dlsym(h, "pf_eplb_rebalance"));
    rule = reinterpret_cast<RuleFn>(dlsym(h, "pf_eplb_rule"));
    if (!fn || !rule) die("the rules library lacks pf_eplb_rebalance or pf_eplb_rule");
  }
  fflush(stdout);
  if (probing) pf_probe_catch_crashes();   // a crash names the rule and its inputs
  if (pf_lockdown() != 0) return 3;
  if (probing) return rule ? probe(rule) : 0;

  // history of window i = mean of windows 0..i, computed once
  const size_t LE = (size_t)L * E;
  std::vector<double> history((size_t)(W - 1) * LE), sum(LE, 0.0);
  for (long i = 0; i + 1 < W; i++)
    for (size_t k = 0; k < LE; k++) {
      sum[k] += win[(size_t)i * LE + k];
      history[(size_t)i * LE + k] = sum[k] / (double)(i + 1);
    }
  std::vector<int64_t> p2l((size_t)L * R), cnt(LE);
  std::vector<int32_t> out((size_t)L * R);
  auto plan = [&](long i) {
    const double *recent = &win[(size_t)i * LE], *hist = &history[(size_t)i * LE];
    if (fn) {
      if (fn(recent, hist, (int)L, (int)E, (int)R, (int)G, (int)N, (int)M, p2l.data(), cnt.data()) != 0)
        die("the rules library rejected the shape");
    } else {
      pf_eplb::rebalance_dispatch<pf_eplb::ReferenceRules>(recent, hist, (int)L, (int)E, (int)R, (int)G, (int)N,
                                                           (int)M, p2l.data(), cnt.data());
    }
    for (size_t k = 0; k < out.size(); k++) out[k] = (int32_t)p2l[k];
    if (!write_all(out.data(), out.size() * sizeof(int32_t))) exit(0);  // policyforge stopped listening
  };
  for (long i = 0; i + 1 < W; i++) plan(i);
  int32_t i;
  while (read_all(&i, sizeof i)) {
    if (i < 0 || i + 1 >= W) die("window index out of range");
    plan(i);
  }
  return 0;
}
