/*
 * pf-cache-probe PLUGIN.so [PRIORITY.so]: the cache checker's semantic probe. With a second
 * library (the candidate's priority(), beside the template's machinery), it is loaded first.
 *
 * It loads a compiled candidate, locks itself down (pf_lockdown: from then on no file,
 * process or socket), and checks what the compiler cannot: priority() returns a finite
 * number and the same number twice, for features that can occur together (last_access
 * between insert_time and now, count no larger than the accesses that fit in that time,
 * percentiles in order, ...), and the plugin's eviction hook always names an object that
 * is in the cache, over a short simulated request stream. Runs inside policyforge's
 * sandbox; prints one line per problem.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libCacheSim/cache.h"
#include "pf_cache_policy.h"
#include "pf_probe_crash.h"
#include "pf_seccomp.h"

typedef double (*prio_fn)(const struct pf_obj *, const struct pf_ctx *);
typedef void *(*init_fn)(const common_cache_params_t);
typedef void (*access_fn)(void *, const request_t *);
typedef obj_id_t (*evict_fn)(void *, const request_t *);

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return rng; }
static double pick(const double *v, int n) { return v[next_rand() % n]; }
/* a point in [lo, hi], often an end of it */
static double between(double lo, double hi) {
  switch (next_rand() % 4) {
    case 0: return lo;
    case 1: return hi;
    default: return lo + floor((hi - lo) * (double)(next_rand() % 1000) / 999.0);
  }
}

/* features of one object and the cache around it, consistent with each other */
static void sample(struct pf_obj *o, struct pf_ctx *c) {
  static const double nows[] = {1, 2, 10, 1000, 1e5, 1e7, 1e9};
  static const double sizes[] = {1, 100, 4096, 1e6};
  static const double caps[] = {1, 64, 1e4, 1e6};
  memset(o, 0, sizeof *o);
  memset(c, 0, sizeof *c);
  c->now = pick(nows, 7);
  o->insert_time = between(0, c->now);
  o->last_access = between(o->insert_time, c->now);
  o->count = between(1, fmin(1 + o->last_access - o->insert_time, 1e6));
  o->size = pick(sizes, 4);
  if (next_rand() % 2 && o->insert_time >= 1) {  /* it returns from the ghost history */
    o->ghost_gap = between(1, o->insert_time);
    o->ghost_age = between(0, o->insert_time - o->ghost_gap);
    o->ghost_count = between(1, fmax(1, o->ghost_age + 1));
  }
  /* the gap since the access before this one: within this residency, or back to the last
   * access before the eviction it returned from; 0 on a first insertion */
  if (o->count > 1) o->irr = between(1, fmax(1, o->last_access - o->insert_time));
  else if (o->ghost_gap > 0) o->irr = between(o->ghost_gap, o->insert_time);
  o->dfreq = between(1, o->count + o->ghost_count);
  o->total = o->count + (o->ghost_count > 0 ? between(o->ghost_count, fmax(o->ghost_count, o->insert_time)) : 0);
  o->sketch = between(1, 255);
  c->cache_size = pick(caps, 4);
  c->n_objs = between(0, c->cache_size);
  if (next_rand() % 4) {  /* statistics refreshed (they are 0 before the first refresh) */
    c->count_p50 = between(1, 1e4);
    c->count_p90 = between(c->count_p50, 1e5);
    c->age_p50 = between(0, c->now);
    c->age_p90 = between(c->age_p50, c->now);
    c->size_p50 = pick(sizes, 4);
    c->size_p90 = fmax(c->size_p50, pick(sizes, 4));
    c->ghost_hits = (double)(next_rand() % 1001) / 1000.0;
  }
  c->once = c->n_objs ? (double)(next_rand() % 1001) / 1000.0 : 0;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) { fprintf(stderr, "usage: pf-cache-probe PLUGIN.so [PRIORITY.so]\n"); return 2; }
  void *own = argc == 3 ? dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL) : NULL;
  if (argc == 3 && !own) { printf("probe: cannot load the policy: %s\n", dlerror()); return 1; }
  void *h = dlopen(argv[1], RTLD_NOW);
  if (!h) { printf("probe: cannot load the plugin: %s\n", dlerror()); return 1; }
  prio_fn prio = (prio_fn)dlsym(own ? own : h, "priority");
  prio_fn prio2 = (prio_fn)dlsym(own ? own : h, "priority2");  /* two orders only */
  init_fn init = (init_fn)dlsym(h, "cache_init_hook");
  access_fn hit = (access_fn)dlsym(h, "cache_hit_hook"), miss = (access_fn)dlsym(h, "cache_miss_hook");
  evict_fn evict = (evict_fn)dlsym(h, "cache_eviction_hook");
  if (!prio || !init || !hit || !miss || !evict) { printf("probe: a plugin symbol is missing\n"); return 1; }
  fflush(stdout);
  pf_probe_catch_crashes();
  if (pf_lockdown() != 0) return 3;

  int problems = 0;
  for (int i = 0; i < 4000 && problems < 5; i++) {
    struct pf_obj o;
    struct pf_ctx c;
    sample(&o, &c);
    pf_probe_calling("priority() or priority2() on count=%g last_access=%g insert_time=%g size=%g ghost_count=%g "
                     "ghost_age=%g ghost_gap=%g irr=%g dfreq=%g sketch=%g now=%g n_objs=%g cache_size=%g count_p50=%g count_p90=%g "
                     "age_p50=%g age_p90=%g ghost_hits=%g once=%g", o.count, o.last_access, o.insert_time, o.size,
                     o.ghost_count, o.ghost_age, o.ghost_gap, o.irr, o.dfreq, o.sketch, c.now, c.n_objs, c.cache_size,
                     c.count_p50, c.count_p90, c.age_p50, c.age_p90, c.ghost_hits, c.once);
    for (int k = 0; k < (prio2 ? 2 : 1); k++) {
      const char *name = k ? "priority2()" : "priority()";
      prio_fn f = k ? prio2 : prio;
      double a = f(&o, &c), b = f(&o, &c);
      if (!isfinite(a)) {
        printf("probe: %s returned %s for count=%g last_access=%g insert_time=%g size=%g ghost_count=%g "
               "ghost_age=%g ghost_gap=%g irr=%g dfreq=%g sketch=%g now=%g n_objs=%g cache_size=%g once=%g (return a "
               "finite number: guard divisions with pf_div, logs with pf_log, and bound exponents)\n", name,
               isnan(a) ? "NaN" : a > 0 ? "+inf" : "-inf", o.count, o.last_access, o.insert_time, o.size,
               o.ghost_count, o.ghost_age, o.ghost_gap, o.irr, o.dfreq, o.sketch, c.now, c.n_objs, c.cache_size,
               c.once);
        problems++;
      } else if (memcmp(&a, &b, sizeof a) != 0) {
        printf("probe: %s is not deterministic: %g then %g for the same inputs\n", name, a, b);
        problems++;
      }
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
  pf_probe_calling("priority(), called by the template during a short simulated request stream,");
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
