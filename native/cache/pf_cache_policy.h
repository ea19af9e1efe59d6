/*
 * The cache template's policy ABI: what a generated priority() reads and may call.
 *
 * priority() is compiled against this header alone (policyforge's checker allows nothing
 * else in it), linked with the template's machinery (pq_template.c), and inlined into the
 * single C file that a stock libCacheSim build compiles (policyforge's export).
 */
#ifndef PF_CACHE_POLICY_H
#define PF_CACHE_POLICY_H

#include <math.h>

struct pf_obj {
  double count;        /* accesses since insertion, this one included */
  double last_access;  /* virtual time (request index) of the latest access */
  double insert_time;  /* virtual time of insertion */
  double size;         /* bytes (1 when sizes are ignored) */
  double ghost_count;  /* count when last evicted, 0 if it was not in the ghost history */
  double ghost_age;    /* how long it had stayed in the cache when last evicted, 0 if none */
  double ghost_gap;    /* virtual time between that eviction and this insertion, 0 if none */
  double irr;          /* time since the access before this one (LIRS's inter-reference recency);
                          for an object back from the ghost history, since its last access
                          before eviction; 0 on a first insertion */
  double dfreq;        /* accesses with exponential decay, computed at access time: 1 + the
                          previous value halved every n_objs requests since the previous access
                          (carried through the ghost history); 1 on a first insertion */
  double sketch;       /* estimated accesses over about the last 10 x cache_size requests, this
                          one included, from a count-min sketch over every object seen (TinyLFU):
                          remembers objects the ghost history forgot; at most 255 */
  double total;        /* accesses over every residency the ghost history connects: count plus the
                          total it had when it was last evicted, if it is back from the ghost
                          history (CR-LFU's frequency in Cacheus); count otherwise */
};

struct pf_ctx {
  double now;          /* current virtual time */
  double n_objs;       /* objects in the cache */
  double cache_size;   /* capacity (objects or bytes) */
  double count_p50, count_p90;  /* percentiles over cached objects */
  double age_p50, age_p90;      /* age = now - last_access */
  double size_p50, size_p90;
  double ghost_hits;   /* fraction of recent misses that were ghost hits */
  double once;         /* fraction of cached objects accessed only once so far (count == 1) */
};

static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return log1p(fabs(a)); }

double priority(const struct pf_obj *obj, const struct pf_ctx *ctx);
/* with two orders (-o orders=2): a second priority, the same inputs; each eviction draws which
 * order's lowest object goes, by weights learned from ghost hits (LeCaR's, see pq_template.c) */
double priority2(const struct pf_obj *obj, const struct pf_ctx *ctx);

#endif
