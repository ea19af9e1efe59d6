/*
 * pf-cache-probe PLUGIN.so: the cache checker's semantic probe.
 *
 * It loads a compiled candidate and checks what the compiler cannot: priority() is
 * deterministic and never NaN for a spread of feature values, and the plugin's
 * eviction hook always names an object that is in the cache, over a short simulated
 * request stream. Runs inside policyforge's sandbox; prints one line per problem.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libCacheSim/cache.h"

struct pf_obj { double count, last_access, insert_time, size, ghost_count, ghost_age, ghost_gap; };
struct pf_ctx {
  double now, n_objs, cache_size, count_p50, count_p90, age_p50, age_p90, size_p50, size_p90, ghost_hits;
};

typedef double (*prio_fn)(const struct pf_obj *, const struct pf_ctx *);
typedef void *(*init_fn)(const common_cache_params_t);
typedef void (*access_fn)(void *, const request_t *);
typedef obj_id_t (*evict_fn)(void *, const request_t *);

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static double pick(const double *v, int n) { return v[next_rand() % n]; }

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: pf-cache-probe PLUGIN.so\n"); return 2; }
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("probe: cannot load the plugin: %s\n", dlerror()); return 1; }
  prio_fn prio = (prio_fn)dlsym(h, "priority");
  init_fn init = (init_fn)dlsym(h, "cache_init_hook");
  access_fn hit = (access_fn)dlsym(h, "cache_hit_hook"), miss = (access_fn)dlsym(h, "cache_miss_hook");
  evict_fn evict = (evict_fn)dlsym(h, "cache_eviction_hook");
  if (!prio || !init || !hit || !miss || !evict) { printf("probe: a plugin symbol is missing\n"); return 1; }

  int problems = 0;
  static const double vals[] = {0, 1, 2, 3, 7, 100, 1e4, 1e6, 1e9};
  for (int i = 0; i < 2000 && problems < 5; i++) {
    struct pf_obj o = {pick(vals, 9) + 1, pick(vals, 9), pick(vals, 9), pick(vals, 9) + 1,
                       pick(vals, 9), pick(vals, 9), pick(vals, 9)};
    struct pf_ctx c = {pick(vals, 9) + 1, pick(vals, 9), pick(vals, 9) + 1, pick(vals, 9), pick(vals, 9),
                       pick(vals, 9), pick(vals, 9), pick(vals, 9), pick(vals, 9), pick(vals, 9) / 1e9};
    double a = prio(&o, &c), b = prio(&o, &c);
    if (isnan(a)) {
      printf("probe: priority() returned NaN for count=%g last_access=%g insert_time=%g size=%g now=%g "
             "(guard divisions with pf_div and logs with pf_log)\n", o.count, o.last_access, o.insert_time,
             o.size, c.now);
      problems++;
    } else if (memcmp(&a, &b, sizeof a) != 0) {
      printf("probe: priority() is not deterministic: %g then %g for the same inputs\n", a, b);
      problems++;
    }
  }

  /* a short request stream with a resident set we track ourselves */
  enum { CAP = 64, IDS = 400, REQS = 20000 };
  common_cache_params_t p = {.cache_size = CAP, .hashpower = 10};
  void *st = init(p);
  static char resident[IDS];
  int n_res = 0;
  request_t req;
  memset(&req, 0, sizeof req);
  req.obj_size = 1;
  for (int i = 0; i < REQS && problems < 5; i++) {
    uint64_t r = next_rand();
    req.obj_id = (r % 4 == 0) ? (r >> 8) % IDS : (r >> 8) % (IDS / 8);
    if (resident[req.obj_id]) {
      hit(st, &req);
      continue;
    }
    if (n_res == CAP) {
      obj_id_t v = evict(st, &req);
      if (v >= IDS || !resident[v]) {
        printf("probe: eviction returned object %llu, which is not in the cache\n", (unsigned long long)v);
        problems++;
        break;
      }
      resident[v] = 0;
      n_res--;
    }
    miss(st, &req);
    resident[req.obj_id] = 1;
    n_res++;
  }
  return problems ? 1 : 0;
}
