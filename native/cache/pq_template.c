/*
 * A priority-queue eviction algorithm for libCacheSim, as a pluginCache plugin.
 *
 * The idea (PolicySmith's cache template): every cached object carries a priority. On
 * insert and on every hit the generated priority() recomputes it from the object's
 * features and from cache-wide statistics; eviction removes the object of minimum
 * priority. Ties go to the object whose priority was set earliest, which makes the
 * LFU seed evict exactly like libCacheSim's LFU (FIFO among equal counts).
 *
 * The machinery is in one header a part (pf_cache_types.h, pf_cache_map.h, pf_cache_queue.h,
 * pf_cache_stats.h), included below the hole; the hooks are here. Data structures, all owned here: a priority queue of nodes (priority, tie) with lazy
 * increase-key (see the heap's comment): two sorted runs, which take most nodes of
 * priorities that grow with time in O(1), and a 4-ary min-heap for the rest (see pf_push);
 * one record per cached object or ghost, a ghost ring of recently
 * evicted objects (as many as the cache holds), and one open-addressing hash map
 * obj_id -> record, so an object turns into its ghost and back in place. Cache-wide
 * percentiles are estimated from a fixed-size sample of the cached objects, refreshed every
 * PF_STATS_PERIOD requests: amortized O(1) per request. Ghost history and percentiles are
 * compiled in only when priority() reads them (PF_FEATURES).
 *
 * policyforge compiles the candidate's priority() against pf_cache_policy.h alone and links it
 * with this file's machinery; its export replaces the line holding PF_POLICY_HOLE with the
 * checked priority() and inlines the header, which gives one C file for a stock libCacheSim:
 * `gcc -O2 -shared -fPIC -I<libCacheSim include>`.
 */
/* PF_FEATURES */
#ifndef PF_FEATURES
#define PF_FEATURES 15
#endif
/* what the generated priority() reads, set by policyforge from its source: 1 ghost history
 * (ghost_count, ghost_age, ghost_gap, ghost_hits, and irr, dfreq and total, which carry through it),
 * 2 percentiles (*_p50, *_p90), 4 decayed frequency (dfreq: an exp2 per access), 8 the frequency
 * sketch (sketch: four counters per access). Left out, a part costs nothing; the result is the
 * same, as priority() cannot see it. 16: two orders mixed (PF_MIX, with the ghost history): the
 * candidate defines priority2() too, and each eviction draws which order's minimum goes, by
 * LeCaR's weights: a miss that finds an object in the ghost history lowers the weight of the
 * order that evicted it by exp(-PF_MIX_RATE). */
#define PF_GHOSTS ((PF_FEATURES) & 1)
#define PF_STATS ((PF_FEATURES) & 2)
#define PF_DECAY ((PF_FEATURES) & 4)
#define PF_SKETCH ((PF_FEATURES) & 8)
#define PF_MIX ((PF_FEATURES) & 16)
#if PF_MIX && !PF_GHOSTS
#error "two orders (PF_FEATURES 16) learn from the ghost history (PF_FEATURES 1)"
#endif
#ifndef PF_MIX_RATE
#define PF_MIX_RATE 0.45  /* LeCaR's learning rate */
#endif
/* ghosts kept per cached object: with two orders, twice as many, so that each order's latest
 * evictions (half a cache's worth, Cacheus's history per order) are still there however the
 * two orders shared the evictions since. The ghost features then reach twice as far back. */
#ifndef PF_GHOST_RING
#define PF_GHOST_RING (PF_MIX ? 2 : 1)
#endif

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef PF_QUEUE_STATS
#include <stdio.h>
#endif

#include "libCacheSim/cache.h"

/* what priority() may read and call: its own header, which the export inlines here */
#include "pf_cache_policy.h"

/* PF_POLICY_HOLE */

/* the machinery, one part a file: its data, the map, the queue, the statistics */
#include "pf_cache_types.h"
#include "pf_cache_map.h"
#include "pf_cache_queue.h"
#include "pf_cache_stats.h"

/* priority() on record r: its current key */
static inline void keyed(pf_state *s, uint32_t r) {
  if (s->seq >= PF_TIE_LIMIT) pf_renumber_ties(s);
  s->ctx.n_objs = s->n_cached;
  s->ctx.once = s->n_cached ? (double)s->n_once / s->n_cached : 0;
  pf_rec *x = &s->recs[r];
  double p = priority(&x->f, &s->ctx);
  x->prio = p == p ? p : -INFINITY;  /* NaN (the probe screens for it) evicts first */
  x->tie = ++s->seq;
#if PF_MIX
  double p2 = priority2(&x->f, &s->ctx);
  x->prio2 = p2 == p2 ? p2 : -INFINITY;
  push2(s, r);
#endif
}

/* ---- libCacheSim pluginCache hooks ---------------------------------------------------- */
void *cache_init_hook(const common_cache_params_t params) {
  pf_state *s = calloc(1, sizeof(pf_state));
  s->capacity = params.cache_size;
  uint32_t guess = params.cache_size < (1 << 20) ? (uint32_t)params.cache_size + 16 : (1 << 20);
  s->cap_recs = (1 + PF_GHOST_RING * !!PF_GHOSTS) * guess;
  s->recs = malloc(s->cap_recs * sizeof(pf_rec));
  s->free_list = malloc(s->cap_recs * sizeof(uint32_t));
  heap_reserve(s, guess);
  map_init(&s->objects, s->cap_recs);
#if PF_GHOSTS
  s->ghost_cap = PF_GHOST_RING * guess;
  s->ghosts = malloc(s->ghost_cap * sizeof(uint32_t));
  for (uint32_t i = 0; i < s->ghost_cap; i++) s->ghosts[i] = PF_EMPTY;
#endif
#if PF_SKETCH
  sketch_init(s, guess);
#endif
  s->ctx.cache_size = (double)params.cache_size;
  s->rng = 0x2545F4914F6CDD1DULL;
#if PF_MIX
  s->w[0] = s->w[1] = 0.5;
  s->mix_rng = 0x9E3779B97F4A7C15ULL;
#endif
  for (int k = 0; k < PF_RUNS; k++) s->rhead[k] = s->rtail[k] = PF_NO_NODE;
  return s;
}

void cache_hit_hook(void *data, const request_t *req) {
  pf_state *s = data;
  tick(s);
#if PF_SKETCH
  double seen = sketch_add(s, req->obj_id);
#endif
  uint32_t r = map_get(&s->objects, req->obj_id);
  if (r == PF_EMPTY || s->recs[r].state != PF_CACHED) return;
  pf_rec *x = &s->recs[r];
  double since = (double)s->now - x->f.last_access;
  x->f.irr = since;
#if PF_DECAY
  x->f.dfreq = 1 + x->f.dfreq * pow(2.0, -since / (s->n_cached ? s->n_cached : 1));
#endif
  s->n_once -= x->f.count == 1;
  x->f.count += 1;
  x->f.total += 1;
  x->f.last_access = (double)s->now;
  x->f.size = (double)req->obj_size;
#if PF_SKETCH
  x->f.sketch = seen;
#endif
  keyed(s, r);
  x = &s->recs[r];
  /* the new tie is the largest yet: the key went below the node's only if prio did */
  if (x->prio < x->nprio) pf_push(s, r, 0);
}

static uint32_t new_rec(pf_state *s) {
  if (s->n_free) return s->free_list[--s->n_free];
  if (s->n_recs == s->cap_recs) {
    s->cap_recs *= 2;
    s->recs = realloc(s->recs, s->cap_recs * sizeof(pf_rec));
    s->free_list = realloc(s->free_list, s->cap_recs * sizeof(uint32_t));
  }
  return s->n_recs++;
}

static void free_rec(pf_state *s, uint32_t r) {
  s->recs[r].state = PF_FREE;
  s->recs[r].ntie = 0;
  s->free_list[s->n_free++] = r;
}

void cache_miss_hook(void *data, const request_t *req) {
  pf_state *s = data;
  tick(s);
#if PF_SKETCH
  double seen = sketch_add(s, req->obj_id);  /* every request counts, admitted or not */
#endif
  s->misses_window++;
  if (req->obj_size > s->capacity) return;  /* libCacheSim does not admit it either */
  if ((s->objects.n + 1) * 2 > s->objects.mask + 1) map_grow(&s->objects);
  pf_slot *slot = map_slot(&s->objects, req->obj_id);
  uint32_t r;
  pf_rec *x;
  if (slot->val != PF_EMPTY) {  /* a ghost: libCacheSim sends hits to cache_hit_hook */
    r = slot->val;
    if (s->recs[r].state == PF_CACHED) return;
    x = &s->recs[r];
    double count = x->f.count, age = x->evict_time - x->f.insert_time, gap = (double)s->now - x->evict_time;
    double since = (double)s->now - x->f.last_access, dfreq = 0, total = x->f.total;
#if PF_DECAY
    dfreq = x->f.dfreq * pow(2.0, -since / (s->n_cached ? s->n_cached : 1));
#endif
    memset(&x->f, 0, sizeof x->f);
    x->f.ghost_count = count;
    x->f.ghost_age = age;
    x->f.ghost_gap = gap;
    x->f.irr = since;
    x->f.dfreq = dfreq;
    x->f.total = total;
    s->ghost_hits_window++;
#if PF_MIX
    /* the order that evicted it was wrong, if that was among its latest evictions (half a cache's
     * worth, as Cacheus's history per order): less weight (LeCaR's regret update) */
    if (s->n_ev[x->by] - x->evseq < (s->n_cached + 1) / 2) {
      s->w[x->by] *= exp(-PF_MIX_RATE);
      double wsum = s->w[0] + s->w[1];
      s->w[0] /= wsum;
      s->w[1] = 1 - s->w[0];
    }
#endif
  } else {
    slot->key = req->obj_id;
    r = slot->val = new_rec(s);
    s->objects.n++;
    x = &s->recs[r];
    memset(&x->f, 0, sizeof x->f);
    x->id = req->obj_id;
    x->ntie = 0;
  }
  x->state = PF_CACHED;
  x->f.count = 1;
  x->f.dfreq += 1;
  x->f.total += 1;
  x->f.last_access = x->f.insert_time = (double)s->now;
  x->f.size = (double)req->obj_size;
#if PF_SKETCH
  x->f.sketch = seen;
#endif
  keyed(s, r);
  pf_push(s, r, 1);
  s->n_cached++;
  s->n_once++;
}

#if PF_GHOSTS
/* the ghost ring holds as many objects as the cache does (twice as many with two orders):
 * double it, oldest first */
static void grow_ghosts(pf_state *s) {
  uint32_t cap = s->ghost_cap * 2;
  uint32_t *g = malloc(cap * sizeof(uint32_t));
  for (uint32_t i = 0; i < cap; i++) g[i] = PF_EMPTY;
  for (uint32_t i = 0; i < s->ghost_cap; i++) {
    uint32_t slot = (s->ghost_head + i) % s->ghost_cap, r = s->ghosts[slot];
    if (r != PF_EMPTY && s->recs[r].state == PF_GHOSTED && s->recs[r].gpos == slot) {
      g[i] = r;
      s->recs[r].gpos = i;
    }
  }
  free(s->ghosts);
  s->ghosts = g;
  s->ghost_head = s->ghost_cap;
  s->ghost_cap = cap;
}

/* the victim turns into its own ghost; the oldest ghost is forgotten */
static void remember(pf_state *s, uint32_t r) {
  if (PF_GHOST_RING * (s->n_cached + 1) > s->ghost_cap) grow_ghosts(s);
  uint32_t head = s->ghost_head, old = s->ghosts[head];
  if (old != PF_EMPTY && s->recs[old].state == PF_GHOSTED && s->recs[old].gpos == head) {
    map_del(&s->objects, s->recs[old].id);
    free_rec(s, old);
  }
  pf_rec *x = &s->recs[r];
  x->state = PF_GHOSTED;
  x->ntie = 0;
  x->evict_time = (double)s->now;
  x->gpos = head;
  s->ghosts[head] = r;
  s->ghost_head = head + 1 == s->ghost_cap ? 0 : head + 1;
}
#endif

/* the cached object of least (priority, tie); see the heap's comment */
static uint32_t pop_min(pf_state *s) {
  for (;;) {
    /* the least of the runs' heads and the heap's top */
    const pf_node *m = s->heap_n ? &s->heap[0] : &PF_NO_NODE;
    int from = -1;
    for (int k = 0; k < PF_RUNS; k++)
      if (less(&s->rhead[k], m)) { m = &s->rhead[k]; from = k; }
    pf_node top = *m;
#ifdef PF_QUEUE_STATS
    if (from < 0) s->n_heap_pops++; else s->n_run_pops++;
#endif
    if (from < 0) {
      heap_pop(s);
    } else {
      pf_ring *q = &s->runs[from];
      q->head = (q->head + 1) & (q->cap - 1);
      q->n--;
      s->n_run_nodes--;
      s->rhead[from] = q->n ? q->buf[q->head] : PF_NO_NODE;
      if (q->n == 0) s->rtail[from] = PF_NO_NODE;
    }
    pf_rec *x = &s->recs[top.r];
#ifdef PF_QUEUE_STATS
    s->n_garbage += x->ntie != top.tie;
    s->n_rekeyed += x->ntie == top.tie && x->tie != top.tie;
#endif
    if (x->ntie != top.tie) continue;                     /* garbage */
    if (x->tie == top.tie) return top.r;                  /* current: the minimum */
    pf_push(s, top.r, 0);                                 /* stale: re-key */
  }
}

obj_id_t cache_eviction_hook(void *data, const request_t *req) {
  pf_state *s = data;
  if (s->n_cached == 0) return req->obj_id;
  /* cache_miss_hook comes next, for this request: start loading its map slot */
  __builtin_prefetch(&s->objects.slots[pf_home(&s->objects, req->obj_id)]);
  uint32_t r;
#if PF_MIX
  /* which order's minimum goes: drawn by the weights */
  s->mix_rng ^= s->mix_rng << 13; s->mix_rng ^= s->mix_rng >> 7; s->mix_rng ^= s->mix_rng << 17;
  int order = (double)(s->mix_rng >> 11) * 0x1.0p-53 >= s->w[0];
  r = order ? pop2(s) : pop_min(s);
  s->recs[r].by = (uint32_t)order;
  s->recs[r].evseq = ++s->n_ev[order];
#else
  r = pop_min(s);
#endif
#ifdef PF_QUEUE_STATS
  s->n_evict++;
#endif
  obj_id_t victim = s->recs[r].id;
  s->n_once -= s->recs[r].f.count == 1;
#if PF_GHOSTS
  remember(s, r);  /* the ring is sized while the victim still counts */
#else
  map_del(&s->objects, victim);
  free_rec(s, r);
#endif
  s->n_cached--;
  return victim;
}

void cache_remove_hook(void *data, obj_id_t obj_id) {
  pf_state *s = data;
  uint32_t r = map_get(&s->objects, obj_id);
  if (r == PF_EMPTY || s->recs[r].state != PF_CACHED) return;
  s->n_once -= s->recs[r].f.count == 1;
  map_del(&s->objects, obj_id);
  free_rec(s, r);  /* its heap node is garbage now */
  s->n_cached--;
}

void cache_free_hook(void *data) {
  pf_state *s = data;
#ifdef PF_QUEUE_STATS
  /* a build for tests and tuning (-DPF_QUEUE_STATS): where the queue's work went */
  fprintf(stderr, "pf_queue_stats {\"evictions\": %llu, \"heap_pops\": %llu, \"run_pops\": %llu, "
          "\"garbage\": %llu, \"rekeyed\": %llu, \"insertions_to_heap\": %llu, \"others_to_heap\": %llu}\n",
          (unsigned long long)s->n_evict, (unsigned long long)s->n_heap_pops, (unsigned long long)s->n_run_pops,
          (unsigned long long)s->n_garbage, (unsigned long long)s->n_rekeyed,
          (unsigned long long)s->n_insert_heap, (unsigned long long)s->n_other_heap);
#endif
  free(s->recs);
  free(s->heap_mem);
  for (int k = 0; k < PF_RUNS; k++) free(s->runs[k].buf);
  free(s->free_list);
  free(s->objects.slots);
  free(s->ghosts);
  free(s->sketch);
#if PF_MIX
  free(s->heap2);
#endif
  free(s);
}
