/*
 * A priority-queue eviction algorithm for libCacheSim, as a pluginCache plugin.
 *
 * The idea (PolicySmith's cache template): every cached object carries a priority. On
 * insert and on every hit the generated priority() recomputes it from the object's
 * features and from cache-wide statistics; eviction removes the object of minimum
 * priority. Ties go to the object whose priority was set earliest, which makes the
 * LFU seed evict exactly like libCacheSim's LFU (FIFO among equal counts).
 *
 * Data structures, all owned here: a priority queue of nodes (priority, tie) with lazy
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
#define PF_FEATURES 3
#endif
/* what the generated priority() reads, set by policyforge from its source: 1 ghost history
 * (ghost_count, ghost_age, ghost_gap, ghost_hits), 2 percentiles (*_p50, *_p90). Left out, a
 * part costs nothing; the result is the same, as priority() cannot see it. */
#define PF_GHOSTS ((PF_FEATURES) & 1)
#define PF_STATS ((PF_FEATURES) & 2)

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

/* ---- fixed machinery ------------------------------------------------------------------ */
#define PF_STATS_PERIOD 1024
#define PF_STATS_SAMPLE 256
#define PF_EMPTY UINT32_MAX
#ifndef PF_TIE_LIMIT
#define PF_TIE_LIMIT 0xfffffff0u  /* ties are renumbered (order kept) before they overflow */
#endif

enum { PF_FREE, PF_CACHED, PF_GHOSTED };

/* One record per cached object or ghost: an object turns into its own ghost in place, so
 * eviction leaves the map alone. */
typedef struct {
  struct pf_obj f;
  obj_id_t id;
  double prio;        /* current priority ... */
  uint32_t tie;       /* ... and the sequence number of that update */
  uint32_t ntie;      /* tie of this object's heap node (0: none); the node's key is */
  double nprio;       /* (nprio, ntie) <= (prio, tie): a lower bound, see pf_evict */
  double evict_time;  /* ghost: when it was evicted */
  uint32_t gpos;      /* ghost: its slot in the ghost ring */
  uint32_t state;
} pf_rec;

/* a heap node: 16 bytes, so the four children of a node share one 64-byte line */
typedef struct {
  double prio;
  uint32_t tie;
  uint32_t r;   /* record index */
} pf_node;

/* open addressing, linear probing, backward-shift deletion; key and value share a slot */
typedef struct {
  obj_id_t key;
  uint32_t val;  /* record index; PF_EMPTY marks a free slot */
} pf_slot;

typedef struct {
  pf_slot *slots;
  uint64_t mask;
  uint64_t n;
  int shift;
} pf_map;

/* a sorted run: a ring of nodes in increasing (prio, tie) order, oldest first */
typedef struct {
  pf_node *buf;
  uint32_t head, n, cap;  /* cap: a power of two (or 0) */
} pf_ring;

#ifndef PF_RUNS
#define PF_RUNS 2
#endif
#ifndef PF_STEP_AFTER
#define PF_STEP_AFTER 3  /* run 0 follows a stream that stepped ahead after this many keys (pf_push) */
#endif

typedef struct {
  pf_rec *recs;
  uint32_t n_recs, cap_recs;
  uint32_t *free_list;
  uint32_t n_free;
  pf_node *heap;      /* 4-ary min-heap on (prio, tie); may hold stale nodes, see the heap's comment */
  void *heap_mem;
  uint32_t heap_n, heap_cap;
  pf_ring runs[PF_RUNS];      /* see pf_push */
  pf_node rhead[PF_RUNS];     /* each run's first and last node; (inf, max) when empty */
  pf_node rtail[PF_RUNS];
  double rtime[PF_RUNS];      /* when the tail was appended */
  double turned_prio, turned_time;  /* the last insertion run 0 turned away as ahead of */
  uint32_t n_turned;                /* its clock, when, and how many such in a row follow
                                     * each other like a stream (see pf_push) */
#ifdef PF_QUEUE_STATS
  uint64_t n_evict, n_heap_pops, n_run_pops, n_garbage, n_rekeyed, n_insert_heap, n_other_heap;
#endif
  uint32_t n_run_nodes;
  uint32_t n_cached;
  pf_map objects;     /* cached objects and ghosts */
  uint32_t *ghosts;   /* ring of record indices, oldest eviction at ghost_head */
  uint32_t ghost_cap, ghost_head;
  struct pf_ctx ctx;
  uint32_t seq;
  uint64_t now;
  uint64_t misses_window, ghost_hits_window;
  uint64_t rng;
  int64_t capacity;
} pf_state;

/* Fibonacci hashing: one multiply, the top bits index the table */
static inline uint64_t pf_home(const pf_map *m, obj_id_t k) {
  return ((uint64_t)k * 0x9e3779b97f4a7c15ULL) >> m->shift;
}

static void map_init(pf_map *m, uint64_t cap) {
  uint64_t c = 16;
  int bits = 4;
  while (c < cap * 2) { c <<= 1; bits++; }
  m->slots = malloc(c * sizeof(pf_slot));
  for (uint64_t i = 0; i < c; i++) m->slots[i].val = PF_EMPTY;
  m->mask = c - 1;
  m->shift = 64 - bits;
  m->n = 0;
}

static inline uint32_t map_get(const pf_map *m, obj_id_t k) {
  for (uint64_t i = pf_home(m, k);; i = (i + 1) & m->mask) {
    if (m->slots[i].val == PF_EMPTY) return PF_EMPTY;
    if (m->slots[i].key == k) return m->slots[i].val;
  }
}

/* the slot holding k, or the free slot where k goes; valid until the next map_slot or map_del */
static inline pf_slot *map_slot(pf_map *m, obj_id_t k) {
  for (uint64_t i = pf_home(m, k);; i = (i + 1) & m->mask)
    if (m->slots[i].val == PF_EMPTY || m->slots[i].key == k) return &m->slots[i];
}

static void map_grow(pf_map *m) {
  pf_map old = *m;
  map_init(m, old.mask + 1);
  for (uint64_t i = 0; i <= old.mask; i++)
    if (old.slots[i].val != PF_EMPTY) {
      pf_slot *s = map_slot(m, old.slots[i].key);
      *s = old.slots[i];
      m->n++;
    }
  free(old.slots);
}

static void map_del(pf_map *m, obj_id_t k) {
  uint64_t i = pf_home(m, k);
  while (m->slots[i].val != PF_EMPTY && m->slots[i].key != k) i = (i + 1) & m->mask;
  if (m->slots[i].val == PF_EMPTY) return;
  m->n--;
  /* backward-shift: pull later members of the probe run into the hole */
  uint64_t hole = i;
  for (uint64_t j = (i + 1) & m->mask; m->slots[j].val != PF_EMPTY; j = (j + 1) & m->mask) {
    uint64_t home = pf_home(m, m->slots[j].key);
    if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].val = PF_EMPTY;
}

/* ---- 4-ary heap ordered by (prio, tie) --------------------------------------------------
 * Ties are unique, so (prio, tie) is a strict total order and the order of removals does
 * not depend on the queue's shape (which nodes sit in the heap and which in the runs, see
 * pf_push): any layout evicts the same objects. Nodes are not told where they sit: a hit that
 * raises an object's key (the usual case: LRU, LFU, FIFO never lower one) only records the new
 * key in the object and leaves its node with the old, lower key. Eviction re-keys such a node
 * when it reaches the front (cache_eviction_hook); a node whose key is current there is a true
 * minimum.
 * A hit that lowers the key pushes a second node and the old one becomes garbage, dropped
 * when it reaches the front or when garbage makes up half the queue (pf_compact). */
static inline int less(const pf_node *x, const pf_node *y) {
  /* bitwise, not short-circuit: no branch, the callers pick with conditional moves */
  return (x->prio < y->prio) | ((x->prio == y->prio) & (x->tie < y->tie));
}

static inline void sift_up(pf_node *h, uint32_t pos) {
  pf_node n = h[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) >> 2;
    if (!less(&n, &h[parent])) break;
    h[pos] = h[parent];
    pos = parent;
  }
  h[pos] = n;
}

static inline void sift_down(pf_node *h, uint32_t hn, uint32_t pos, pf_node n) {
  for (;;) {
    uint32_t c = 4 * pos + 1;
    if (c >= hn) break;
    uint32_t best = c;
    if (c + 3 < hn) {
      uint32_t b1 = less(&h[c + 1], &h[c]) ? c + 1 : c;
      uint32_t b2 = less(&h[c + 3], &h[c + 2]) ? c + 3 : c + 2;
      best = less(&h[b2], &h[b1]) ? b2 : b1;
    } else {
      for (uint32_t k = c + 1; k < hn; k++)
        if (less(&h[k], &h[best])) best = k;
    }
    if (!less(&h[best], &n)) break;
    h[pos] = h[best];
    pos = best;
  }
  h[pos] = n;
}

static inline int node_live(const pf_state *s, const pf_node *n) {
  return s->recs[n->r].ntie == n->tie;  /* freed records and ghosts have ntie 0 */
}

static void heap_reserve(pf_state *s, uint32_t want) {
  if (want <= s->heap_cap) return;
  uint32_t cap = s->heap_cap ? s->heap_cap : 64;
  while (cap < want) cap *= 2;
  /* the heap starts 3 nodes into a 64-byte-aligned block: node 1 and every group of four
   * children 4p+1..4p+4 then fill exactly one cache line */
  void *mem;
  if (posix_memalign(&mem, 64, (cap + 4) * sizeof(pf_node))) abort();
  pf_node *h = (pf_node *)mem + 3;
  if (s->heap_n) memcpy(h, s->heap, s->heap_n * sizeof(pf_node));
  free(s->heap_mem);
  s->heap_mem = mem;
  s->heap = h;
  s->heap_cap = cap;
}

static const pf_node PF_NO_NODE = {INFINITY, UINT32_MAX, 0};

static inline pf_node *ring_at(pf_ring *q, uint32_t i) { return &q->buf[(q->head + i) & (q->cap - 1)]; }

/* after a ring changed wholesale: its cached first and last node */
static void run_ends(pf_state *s, int k) {
  pf_ring *q = &s->runs[k];
  s->rhead[k] = q->n ? *ring_at(q, 0) : PF_NO_NODE;
  s->rtail[k] = q->n ? *ring_at(q, q->n - 1) : PF_NO_NODE;
}

/* drop garbage nodes: re-heapify (Floyd), filter the runs in order; O(nodes). A run's rtime
 * may then belong to a dropped tail: that only makes run 0 a little stricter for a while. */
static void pf_compact(pf_state *s) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < s->heap_n; i++)
    if (node_live(s, &s->heap[i])) s->heap[k++] = s->heap[i];
  s->heap_n = k;
  for (uint32_t i = k / 4 + 1; i-- > 0;)
    if (i < k) sift_down(s->heap, k, i, s->heap[i]);
  /* runs keep their order; each restarts at slot 0 */
  s->n_run_nodes = 0;
  for (int j = 0; j < PF_RUNS; j++) {
    pf_ring *q = &s->runs[j];
    pf_node *buf = malloc((q->cap ? q->cap : 1) * sizeof(pf_node));
    k = 0;
    for (uint32_t i = 0; i < q->n; i++)
      if (node_live(s, ring_at(q, i))) buf[k++] = *ring_at(q, i);
    free(q->buf);
    q->buf = buf;
    q->head = 0;
    q->n = k;
    s->n_run_nodes += k;
    run_ends(s, j);
  }
}

static void ring_append(pf_ring *q, pf_node n) {
  if (q->n == q->cap) {
    uint32_t cap = q->cap ? 2 * q->cap : 256;
    pf_node *buf = malloc(cap * sizeof(pf_node));
    for (uint32_t i = 0; i < q->n; i++) buf[i] = *ring_at(q, i);
    free(q->buf);
    q->buf = buf;
    q->head = 0;
    q->cap = cap;
  }
  *ring_at(q, q->n++) = n;
}

/* a node for record r with its current key; `insertion`: set by cache_miss_hook.
 * Where a node goes changes only speed, never the eviction order (see the heap's comment).
 * Run 0 takes the stream of insertions. Objects inserted under the same rule, say now + c,
 * arrive in key order: a key joins if it is not below the run's last key and not further
 * ahead of the clock than that key was when it joined (a returning ghost with a bonus, say,
 * would block the stream behind it until it is evicted). That covers LRU, LFU (equal keys,
 * later ties), FIFO and most recency-based policies. A stream can also step ahead for good:
 * priority() reads a percentile, the statistics are refreshed, and now + c becomes now + c'
 * with c' > c (by 0.001 or by 50). Every later key is then ahead of the stale tail's clock
 * and would go to the heap until run 0 drains (a cache's lifetime, and by then the next
 * refresh has stepped again). So when PF_STEP_AFTER (3) keys in a row are turned away and
 * each follows the one before like a stream, the last of them joins. An outlier (the ghost)
 * is followed by keys below it, which reset the count. On the demo trace this took bench/cache's
 * feature-heavy priority from 158k of 177k insertions in the heap to 26k.
 * Runs 1.. take the other nodes (hits that lower a key, stale nodes re-keyed at eviction):
 * the run whose last key is the largest not above the new one and not far above it
 * (within 64 times the run's mean step); else an empty run; else a run of one or two nodes,
 * which move to the heap. The rest go to the heap. The minimum is the least of the runs'
 * heads and the heap's top. On cloudPhysicsIO the LRU seed went from 0.35x to 0.52x native
 * LRU, LFU from 0.40x to 0.56x, LFU with LRU ties from 0.40x to 0.56x; a priority whose
 * victims come from many count classes (bench/cache's feature-heavy one) still pops mostly
 * from the heap. */
static void pf_push(pf_state *s, uint32_t r, int insertion) {
  if (s->heap_n + s->n_run_nodes > 2 * s->n_cached + 64) pf_compact(s);
  pf_rec *x = &s->recs[r];
  x->nprio = x->prio;
  x->ntie = x->tie;
  pf_node n = {x->prio, x->tie, r};
  int best = -1, empty = -1, tiny = -1;
  int k0 = insertion ? 0 : 1, k1 = insertion ? 1 : PF_RUNS;
  for (int k = k0; k < k1; k++) {
    uint32_t len = s->runs[k].n;
    if (len == 0) {
      if (empty < 0) empty = k;
      continue;
    }
    if (len <= 2) tiny = k;
    if (less(&n, &s->rtail[k])) continue;
    if (insertion) {  /* no further ahead of the clock than the tail (to rounding) */
      double gap = n.prio - s->rtail[k].prio, dt = (double)s->now - s->rtime[k];
      if (gap > dt + 1e-9 * fabs(n.prio)) {
        int follows = s->n_turned && n.prio >= s->turned_prio &&
                      n.prio - s->turned_prio <= (double)s->now - s->turned_time + 1e-9 * fabs(n.prio);
        s->n_turned = follows ? s->n_turned + 1 : 1;
        s->turned_prio = n.prio;
        s->turned_time = (double)s->now;
        if (s->n_turned < PF_STEP_AFTER) continue;  /* else: the stream stepped ahead, follow it */
      }
    } else if (len >= 2 && n.prio - s->rtail[k].prio >
               64 * (s->rtail[k].prio - s->rhead[k].prio) / (len - 1)) {
      continue;  /* far above the tail: it would block the run */
    }
    if (best < 0 || less(&s->rtail[best], &s->rtail[k])) best = k;
  }
  if (best < 0) best = empty;
  if (best < 0 && tiny >= 0) {  /* a run of one or two nodes that blocks: to the heap with them */
    pf_ring *q = &s->runs[tiny];
    heap_reserve(s, s->heap_n + q->n);
    for (uint32_t i = 0; i < q->n; i++) {
      s->heap[s->heap_n] = *ring_at(q, i);
      sift_up(s->heap, s->heap_n++);
    }
    s->n_run_nodes -= q->n;
    q->n = 0;
    best = tiny;
  }
  if (best >= 0) {
    if (insertion) s->n_turned = 0;
    if (s->runs[best].n == 0) s->rhead[best] = n;
    ring_append(&s->runs[best], n);
    s->rtail[best] = n;
    s->rtime[best] = (double)s->now;
    s->n_run_nodes++;
    return;
  }
#ifdef PF_QUEUE_STATS
  if (insertion) s->n_insert_heap++; else s->n_other_heap++;
#endif
  heap_reserve(s, s->heap_n + 1);
  s->heap[s->heap_n] = n;
  sift_up(s->heap, s->heap_n++);
}

/* remove the root: walk the hole down along the least children to a leaf, then sift the
 * last node up from there (it usually belongs near the bottom): 3 comparisons a level */
static inline void heap_pop(pf_state *s) {
  pf_node *h = s->heap;
  uint32_t hn = --s->heap_n, pos = 0;
  if (hn == 0) return;
  pf_node last = h[hn];
  for (;;) {
    uint32_t c = 4 * pos + 1, best = c;
    if (c + 3 < hn) {
      /* the next level's four lines, whichever child wins: their latency overlaps ours */
      __builtin_prefetch(&h[4 * c + 1]);
      __builtin_prefetch(&h[4 * c + 5]);
      __builtin_prefetch(&h[4 * c + 9]);
      __builtin_prefetch(&h[4 * c + 13]);
      uint32_t b1 = less(&h[c + 1], &h[c]) ? c + 1 : c;
      uint32_t b2 = less(&h[c + 3], &h[c + 2]) ? c + 3 : c + 2;
      best = less(&h[b2], &h[b1]) ? b2 : b1;
    } else if (c < hn) {
      for (uint32_t k = c + 1; k < hn; k++)
        if (less(&h[k], &h[best])) best = k;
    } else {
      break;
    }
    h[pos] = h[best];
    pos = best;
  }
  h[pos] = last;
  sift_up(h, pos);
}

/* ---- ties ---------------------------------------------------------------------------- */
static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static uint32_t renumber(const uint32_t *sorted, uint32_t n, uint32_t t) {
  uint32_t lo = 0, hi = n;  /* sorted[lo] == t */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (sorted[mid] < t) lo = mid + 1; else hi = mid;
  }
  return lo + 1;
}

/* ties run out after ~4e9 priority updates: renumber the ones in use 1, 2, ... in order */
static void pf_renumber_ties(pf_state *s) {
  pf_compact(s);
  uint32_t n = 0;
  uint32_t *t = malloc((2 * (size_t)s->n_recs + 1) * sizeof(uint32_t));
  for (uint32_t i = 0; i < s->n_recs; i++)
    if (s->recs[i].state == PF_CACHED) {
      t[n++] = s->recs[i].tie;
      if (s->recs[i].ntie) t[n++] = s->recs[i].ntie;  /* 0 (no node) stays 0 */
    }
  qsort(t, n, sizeof(uint32_t), cmp_u32);
  for (uint32_t i = 0; i < s->heap_n; i++) s->heap[i].tie = renumber(t, n, s->heap[i].tie);
  for (int k = 0; k < PF_RUNS; k++) {
    for (uint32_t i = 0; i < s->runs[k].n; i++) {
      pf_node *nd = ring_at(&s->runs[k], i);
      nd->tie = renumber(t, n, nd->tie);
    }
    run_ends(s, k);
  }
  for (uint32_t i = 0; i < s->n_recs; i++)
    if (s->recs[i].state == PF_CACHED) {
      s->recs[i].tie = renumber(t, n, s->recs[i].tie);
      if (s->recs[i].ntie) s->recs[i].ntie = renumber(t, n, s->recs[i].ntie);
    }
  s->seq = n + 1;
  free(t);
}

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

static inline void tick(pf_state *s) {
  s->now++;
  s->ctx.now = (double)s->now;
#if PF_STATS || PF_GHOSTS
  if (s->now % PF_STATS_PERIOD == 0) refresh_stats(s);
#endif
}

/* priority() on record r: its current key */
static inline void keyed(pf_state *s, uint32_t r) {
  if (s->seq >= PF_TIE_LIMIT) pf_renumber_ties(s);
  s->ctx.n_objs = s->n_cached;
  pf_rec *x = &s->recs[r];
  double p = priority(&x->f, &s->ctx);
  x->prio = p == p ? p : -INFINITY;  /* NaN (the probe screens for it) evicts first */
  x->tie = ++s->seq;
}

/* ---- libCacheSim pluginCache hooks ---------------------------------------------------- */
void *cache_init_hook(const common_cache_params_t params) {
  pf_state *s = calloc(1, sizeof(pf_state));
  s->capacity = params.cache_size;
  uint32_t guess = params.cache_size < (1 << 20) ? (uint32_t)params.cache_size + 16 : (1 << 20);
  s->cap_recs = PF_GHOSTS ? 2 * guess : guess;
  s->recs = malloc(s->cap_recs * sizeof(pf_rec));
  s->free_list = malloc(s->cap_recs * sizeof(uint32_t));
  heap_reserve(s, guess);
  map_init(&s->objects, s->cap_recs);
#if PF_GHOSTS
  s->ghost_cap = guess;
  s->ghosts = malloc(guess * sizeof(uint32_t));
  for (uint32_t i = 0; i < guess; i++) s->ghosts[i] = PF_EMPTY;
#endif
  s->ctx.cache_size = (double)params.cache_size;
  s->rng = 0x2545F4914F6CDD1DULL;
  for (int k = 0; k < PF_RUNS; k++) s->rhead[k] = s->rtail[k] = PF_NO_NODE;
  return s;
}

void cache_hit_hook(void *data, const request_t *req) {
  pf_state *s = data;
  tick(s);
  uint32_t r = map_get(&s->objects, req->obj_id);
  if (r == PF_EMPTY || s->recs[r].state != PF_CACHED) return;
  pf_rec *x = &s->recs[r];
  x->f.count += 1;
  x->f.last_access = (double)s->now;
  x->f.size = (double)req->obj_size;
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
    memset(&x->f, 0, sizeof x->f);
    x->f.ghost_count = count;
    x->f.ghost_age = age;
    x->f.ghost_gap = gap;
    s->ghost_hits_window++;
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
  x->f.last_access = x->f.insert_time = (double)s->now;
  x->f.size = (double)req->obj_size;
  keyed(s, r);
  pf_push(s, r, 1);
  s->n_cached++;
}

#if PF_GHOSTS
/* the ghost ring holds as many objects as the cache does: double it, oldest first */
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
  if (s->n_cached + 1 > s->ghost_cap) grow_ghosts(s);
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
obj_id_t cache_eviction_hook(void *data, const request_t *req) {
  pf_state *s = data;
  if (s->n_cached == 0) return req->obj_id;
  /* cache_miss_hook comes next, for this request: start loading its map slot */
  __builtin_prefetch(&s->objects.slots[pf_home(&s->objects, req->obj_id)]);
  uint32_t r;
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
    if (x->tie == top.tie) { r = top.r; break; }          /* current: the minimum */
    pf_push(s, top.r, 0);                                 /* stale: re-key */
  }
#ifdef PF_QUEUE_STATS
  s->n_evict++;
#endif
  obj_id_t victim = s->recs[r].id;
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
  free(s);
}
