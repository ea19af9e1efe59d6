/*
 * Cache-wide statistics priority() may read (percentiles of a sample, ghost hits) and the clock.
 * Part of the cache template: included by pq_template.c after its feature macros (PF_GHOSTS,
 * PF_STATS); policyforge's export inlines it into one self-contained file.
 */
#ifndef PF_CACHE_STATS_H
#define PF_CACHE_STATS_H

/* ---- statistics ----------------------------------------------------------------------- */
#if PF_STATS
/* the k-th smallest of v[0..n) (Hoare's quickselect; reorders v): the same value a sort
 * would put at v[k], in expected O(n) instead of O(n log n) */
static double kth_smallest(double *v, uint32_t n, uint32_t k) {
  uint32_t lo = 0, hi = n - 1;
  while (lo < hi) {
    double pivot = v[lo + (hi - lo) / 2];
    uint32_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot) i++;
      while (v[j] > pivot) j--;
      if (i <= j) {
        double t = v[i]; v[i] = v[j]; v[j] = t;
        i++;
        if (j == 0) break;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return v[k];
}

static void pct(double *v, uint32_t n, double *p50, double *p90) {
  *p50 = kth_smallest(v, n, n / 2);
  *p90 = kth_smallest(v, n, (n * 9) / 10);
}
#endif

#if PF_STATS || PF_GHOSTS
static void refresh_stats(pf_state *s) {
  struct pf_ctx *c = &s->ctx;
  uint32_t n = s->n_cached;
  c->n_objs = n;
  c->ghost_hits = s->misses_window ? (double)s->ghost_hits_window / s->misses_window : 0;
  s->misses_window = s->ghost_hits_window = 0;
#if PF_STATS
  if (n == 0) return;
  double counts[PF_STATS_SAMPLE], ages[PF_STATS_SAMPLE], sizes[PF_STATS_SAMPLE];
  uint32_t k = 0;
  /* every cached object when they are few, else a deterministic uniform sample of them: a
   * random record, skipping ghosts and free ones (at most about two thirds of them) */
  for (uint32_t i = 0; k < PF_STATS_SAMPLE && (n <= PF_STATS_SAMPLE ? i < s->n_recs : i < 64 * PF_STATS_SAMPLE); i++) {
    uint32_t pos = i;
    if (n > PF_STATS_SAMPLE) {
      s->rng ^= s->rng << 13; s->rng ^= s->rng >> 7; s->rng ^= s->rng << 17;
      pos = (uint32_t)(s->rng % s->n_recs);
    }
    const pf_rec *e = &s->recs[pos];
    if (e->state != PF_CACHED) continue;
    counts[k] = e->f.count;
    ages[k] = (double)s->now - e->f.last_access;
    sizes[k] = e->f.size;
    k++;
  }
  if (k == 0) return;
  pct(counts, k, &c->count_p50, &c->count_p90);
  pct(ages, k, &c->age_p50, &c->age_p90);
  pct(sizes, k, &c->size_p50, &c->size_p90);
#endif
}
#endif

#if PF_SKETCH
/* A count-min sketch over every object seen (TinyLFU's frequency sketch): 4 rows of 8-bit
 * saturating counters, each at least 4 x the records the cache expects wide; an object's
 * estimate is the least of its 4 counters. Every counter halves each 10 x that many requests,
 * so old popularity fades while objects long gone from the ghost history are still known. */
static void sketch_init(pf_state *s, uint32_t guess) {
  uint64_t w = 1;
  while (w < 4ull * guess) w <<= 1;
  s->sketch_mask = w - 1;
  s->sketch = calloc(4 * w, 1);
  s->sketch_window = 10ull * guess;
}

static inline uint64_t pf_mix64(uint64_t z) {  /* splitmix64's finalizer */
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* count one access to `id`; its estimate, this access included */
static inline double sketch_add(pf_state *s, obj_id_t id) {
  unsigned least = 255;
  for (uint64_t k = 0; k < 4; k++) {
    uint8_t *c = &s->sketch[k * (s->sketch_mask + 1) + (pf_mix64((uint64_t)id + (k + 1) * 0x9E3779B97F4A7C15ULL) & s->sketch_mask)];
    if (*c < 255) (*c)++;
    if (*c < least) least = *c;
  }
  if (++s->sketch_n == s->sketch_window) {
    s->sketch_n = 0;
    for (uint64_t i = 0; i < 4 * (s->sketch_mask + 1); i++) s->sketch[i] >>= 1;
  }
  return least;
}
#endif

static inline void tick(pf_state *s) {
  s->now++;
  s->ctx.now = (double)s->now;
#if PF_STATS || PF_GHOSTS
  if (s->now % PF_STATS_PERIOD == 0) refresh_stats(s);
#endif
}

#endif
