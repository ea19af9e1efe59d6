/*
 * A priority-queue eviction algorithm for libCacheSim, as a pluginCache plugin.
 *
 * The idea (PolicySmith's cache template): every cached object carries a priority. On
 * insert and on every hit the generated priority() recomputes it from the object's
 * features and from cache-wide statistics; eviction removes the object of minimum
 * priority. Ties go to the object whose priority was set earliest, which makes the
 * LFU seed evict exactly like libCacheSim's LFU (FIFO among equal counts).
 *
 * Data structures, all owned here: an indexed 4-ary min-heap of entries, a ghost ring of
 * recently evicted objects (as many as the cache holds), and one open-addressing hash map
 * obj_id -> cached entry or ghost slot, so an object moves between the two in place. Cache-wide percentiles are estimated
 * from a fixed-size sample of the cached objects, refreshed every PF_STATS_PERIOD
 * requests: amortized O(1) per request.
 *
 * policyforge replaces the line holding PF_POLICY_HOLE with the candidate's priority().
 * The result is one C file: `gcc -O2 -shared -fPIC -I<libCacheSim include>`.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "libCacheSim/cache.h"

/* ---- what priority() may read ------------------------------------------------------ */
struct pf_obj {
  double count;        /* accesses since insertion, this one included */
  double last_access;  /* virtual time (request index) of the latest access */
  double insert_time;  /* virtual time of insertion */
  double size;         /* bytes (1 when sizes are ignored) */
  double ghost_count;  /* count when last evicted, 0 if it was not in the ghost history */
  double ghost_age;    /* how long it had stayed in the cache when last evicted, 0 if none */
  double ghost_gap;    /* virtual time between that eviction and this insertion, 0 if none */
};

struct pf_ctx {
  double now;          /* current virtual time */
  double n_objs;       /* objects in the cache */
  double cache_size;   /* capacity (objects or bytes) */
  double count_p50, count_p90;  /* percentiles over cached objects */
  double age_p50, age_p90;      /* age = now - last_access */
  double size_p50, size_p90;
  double ghost_hits;   /* fraction of recent misses that were ghost hits */
};

static inline double pf_div(double a, double b) { return b == 0 ? 0 : a / b; }
static inline double pf_min(double a, double b) { return a < b ? a : b; }
static inline double pf_max(double a, double b) { return a > b ? a : b; }
static inline double pf_log(double a) { return log1p(fabs(a)); }

double priority(const struct pf_obj *obj, const struct pf_ctx *ctx);

/* PF_POLICY_HOLE */

/* ---- fixed machinery ------------------------------------------------------------------ */
#define PF_STATS_PERIOD 1024
#define PF_STATS_SAMPLE 256
#define PF_EMPTY UINT32_MAX
#define PF_GHOST 0x80000000u  /* map value flag: the rest is a ghost ring slot, not an entry */

typedef struct {
  obj_id_t id;
  struct pf_obj f;
  uint32_t heap_pos;
} pf_entry;

/* a heap slot carries its keys, so sifting reads only the contiguous heap array */
typedef struct {
  double prio;
  uint64_t tie;   /* sequence number of the last priority update */
  uint32_t e;     /* entry index */
} pf_node;

typedef struct {
  obj_id_t id;
  double count, age, evict_time;
  int live;
} pf_ghost;

/* open addressing, linear probing, backward-shift deletion; values are uint32 indices.
 * Key and value share a slot, so a probe touches one cache line. */
typedef struct {
  obj_id_t key;
  uint32_t val;  /* PF_EMPTY marks a free slot */
} pf_slot;

typedef struct {
  pf_slot *slots;
  uint64_t mask;
  uint64_t n;
} pf_map;

typedef struct {
  pf_entry *entries;
  uint32_t n_entries, cap_entries;
  uint32_t *free_list;
  uint32_t n_free;
  pf_node *heap;   /* 4-ary min-heap on (prio, tie) */
  uint32_t heap_n;
  pf_map objects;  /* cached objects and ghosts */
  pf_ghost *ghosts;
  uint32_t ghost_cap, ghost_head;
  struct pf_ctx ctx;
  uint64_t seq, now;
  uint64_t misses_window, ghost_hits_window;
  uint64_t rng;
  int64_t capacity;
} pf_state;

static inline uint64_t pf_hash(obj_id_t k) {
  uint64_t x = (uint64_t)k + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

static void map_init(pf_map *m, uint64_t cap) {
  uint64_t c = 16;
  while (c < cap * 2) c <<= 1;
  m->slots = malloc(c * sizeof(pf_slot));
  for (uint64_t i = 0; i < c; i++) m->slots[i].val = PF_EMPTY;
  m->mask = c - 1;
  m->n = 0;
}

static uint32_t map_get(const pf_map *m, obj_id_t k) {
  for (uint64_t i = pf_hash(k) & m->mask;; i = (i + 1) & m->mask) {
    if (m->slots[i].val == PF_EMPTY) return PF_EMPTY;
    if (m->slots[i].key == k) return m->slots[i].val;
  }
}

/* the slot holding k, or NULL; valid until the next map_put or map_del */
static pf_slot *map_find(pf_map *m, obj_id_t k) {
  for (uint64_t i = pf_hash(k) & m->mask;; i = (i + 1) & m->mask) {
    if (m->slots[i].val == PF_EMPTY) return NULL;
    if (m->slots[i].key == k) return &m->slots[i];
  }
}

static void map_put(pf_map *m, obj_id_t k, uint32_t v);

static void map_grow(pf_map *m) {
  pf_map old = *m;
  map_init(m, (old.mask + 1));
  for (uint64_t i = 0; i <= old.mask; i++)
    if (old.slots[i].val != PF_EMPTY) map_put(m, old.slots[i].key, old.slots[i].val);
  free(old.slots);
}

static void map_put(pf_map *m, obj_id_t k, uint32_t v) {
  if ((m->n + 1) * 2 > m->mask + 1) map_grow(m);
  uint64_t i = pf_hash(k) & m->mask;
  while (m->slots[i].val != PF_EMPTY && m->slots[i].key != k) i = (i + 1) & m->mask;
  if (m->slots[i].val == PF_EMPTY) m->n++;
  m->slots[i].key = k;
  m->slots[i].val = v;
}

static void map_del(pf_map *m, obj_id_t k) {
  uint64_t i = pf_hash(k) & m->mask;
  while (m->slots[i].val != PF_EMPTY && m->slots[i].key != k) i = (i + 1) & m->mask;
  if (m->slots[i].val == PF_EMPTY) return;
  m->n--;
  /* backward-shift: pull later members of the probe run into the hole */
  uint64_t hole = i;
  for (uint64_t j = (i + 1) & m->mask; m->slots[j].val != PF_EMPTY; j = (j + 1) & m->mask) {
    uint64_t home = pf_hash(m->slots[j].key) & m->mask;
    if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].val = PF_EMPTY;
}

/* ---- 4-ary heap ordered by (prio, tie): half the depth of a binary heap ------------- */
static inline int less(const pf_node *x, const pf_node *y) {
  return x->prio < y->prio || (x->prio == y->prio && x->tie < y->tie);
}

static inline void heap_set(pf_state *s, uint32_t pos, pf_node n) {
  s->heap[pos] = n;
  s->entries[n.e].heap_pos = pos;
}

static void sift_up(pf_state *s, uint32_t pos) {
  pf_node n = s->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 4;
    if (!less(&n, &s->heap[parent])) break;
    heap_set(s, pos, s->heap[parent]);
    pos = parent;
  }
  heap_set(s, pos, n);
}

static void sift_down(pf_state *s, uint32_t pos) {
  pf_node n = s->heap[pos];
  for (;;) {
    uint32_t first = 4 * pos + 1, best = pos;
    const pf_node *bn = &n;
    uint32_t last = first + 4 < s->heap_n ? first + 4 : s->heap_n;
    for (uint32_t c = first; c < last; c++)
      if (less(&s->heap[c], bn)) { best = c; bn = &s->heap[c]; }
    if (best == pos) break;
    heap_set(s, pos, s->heap[best]);
    pos = best;
  }
  heap_set(s, pos, n);
}

static void heap_remove(pf_state *s, uint32_t e) {
  uint32_t pos = s->entries[e].heap_pos;
  pf_node last = s->heap[--s->heap_n];
  if (pos == s->heap_n) return;
  heap_set(s, pos, last);
  sift_up(s, pos);
  sift_down(s, s->entries[last.e].heap_pos);
}

/* ---- statistics ----------------------------------------------------------------------- */
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

static void refresh_stats(pf_state *s) {
  struct pf_ctx *c = &s->ctx;
  uint32_t n = s->heap_n;
  c->n_objs = n;
  c->ghost_hits = s->misses_window ? (double)s->ghost_hits_window / s->misses_window : 0;
  s->misses_window = s->ghost_hits_window = 0;
  if (n == 0) return;
  double counts[PF_STATS_SAMPLE], ages[PF_STATS_SAMPLE], sizes[PF_STATS_SAMPLE];
  uint32_t k = n < PF_STATS_SAMPLE ? n : PF_STATS_SAMPLE;
  for (uint32_t i = 0; i < k; i++) {
    s->rng ^= s->rng << 13; s->rng ^= s->rng >> 7; s->rng ^= s->rng << 17;  /* deterministic */
    const pf_entry *e = &s->entries[s->heap[k == n ? i : s->rng % n].e];
    counts[i] = e->f.count;
    ages[i] = (double)s->now - e->f.last_access;
    sizes[i] = e->f.size;
  }
  pct(counts, k, &c->count_p50, &c->count_p90);
  pct(ages, k, &c->age_p50, &c->age_p90);
  pct(sizes, k, &c->size_p50, &c->size_p90);
}

static inline void tick(pf_state *s) {
  s->now++;
  s->ctx.now = (double)s->now;
  if (s->now % PF_STATS_PERIOD == 0) refresh_stats(s);
}

static inline pf_node keyed(pf_state *s, uint32_t e) {
  s->ctx.n_objs = s->heap_n;
  pf_node n = {priority(&s->entries[e].f, &s->ctx), ++s->seq, e};
  return n;
}

/* ---- libCacheSim pluginCache hooks ---------------------------------------------------- */
void *cache_init_hook(const common_cache_params_t params) {
  pf_state *s = calloc(1, sizeof(pf_state));
  s->capacity = params.cache_size;
  uint32_t guess = params.cache_size < (1 << 20) ? (uint32_t)params.cache_size + 16 : (1 << 20);
  s->cap_entries = guess;
  s->entries = malloc(guess * sizeof(pf_entry));
  s->heap = malloc(guess * sizeof(pf_node));
  s->free_list = malloc(guess * sizeof(uint32_t));
  map_init(&s->objects, 2 * (uint64_t)guess);
  s->ghost_cap = guess;
  s->ghosts = calloc(guess, sizeof(pf_ghost));
  s->ctx.cache_size = (double)params.cache_size;
  s->rng = 0x2545F4914F6CDD1DULL;
  return s;
}

void cache_hit_hook(void *data, const request_t *req) {
  pf_state *s = data;
  tick(s);
  uint32_t e = map_get(&s->objects, req->obj_id);
  if (e == PF_EMPTY || (e & PF_GHOST)) return;
  pf_entry *x = &s->entries[e];
  x->f.count += 1;
  x->f.last_access = (double)s->now;
  x->f.size = (double)req->obj_size;
  uint32_t pos = x->heap_pos;
  double old = s->heap[pos].prio;
  s->heap[pos] = keyed(s, e);
  /* the tie grew, so an unchanged priority can only move down */
  if (s->heap[pos].prio < old) sift_up(s, pos);
  else sift_down(s, pos);
}

static uint32_t new_entry(pf_state *s) {
  if (s->n_free) return s->free_list[--s->n_free];
  if (s->n_entries == s->cap_entries) {
    s->cap_entries *= 2;
    s->entries = realloc(s->entries, s->cap_entries * sizeof(pf_entry));
    s->heap = realloc(s->heap, s->cap_entries * sizeof(pf_node));
    s->free_list = realloc(s->free_list, s->cap_entries * sizeof(uint32_t));
  }
  return s->n_entries++;
}

void cache_miss_hook(void *data, const request_t *req) {
  pf_state *s = data;
  tick(s);
  s->misses_window++;
  if (req->obj_size > s->capacity) return;  /* libCacheSim does not admit it either */
  uint32_t e = new_entry(s);
  pf_entry *x = &s->entries[e];
  memset(&x->f, 0, sizeof x->f);
  x->id = req->obj_id;
  x->f.count = 1;
  x->f.last_access = x->f.insert_time = (double)s->now;
  x->f.size = (double)req->obj_size;
  pf_slot *known = map_find(&s->objects, req->obj_id);
  if (known && (known->val & PF_GHOST)) {
    pf_ghost *gh = &s->ghosts[known->val & ~PF_GHOST];
    x->f.ghost_count = gh->count;
    x->f.ghost_age = gh->age;
    x->f.ghost_gap = (double)s->now - gh->evict_time;
    gh->live = 0;
    s->ghost_hits_window++;
    known->val = e;  /* the ghost becomes the cached object */
  } else {
    map_put(&s->objects, req->obj_id, e);
  }
  pf_node n = keyed(s, e);
  heap_set(s, s->heap_n++, n);
  sift_up(s, s->heap_n - 1);
}

/* the ghost ring holds as many objects as the cache does: double it, oldest first */
static void grow_ghosts(pf_state *s) {
  uint32_t cap = s->ghost_cap * 2;
  pf_ghost *g = calloc(cap, sizeof(pf_ghost));
  for (uint32_t i = 0; i < s->ghost_cap; i++) {
    g[i] = s->ghosts[(s->ghost_head + i) % s->ghost_cap];
    if (g[i].live) map_find(&s->objects, g[i].id)->val = i | PF_GHOST;
  }
  free(s->ghosts);
  s->ghosts = g;
  s->ghost_head = s->ghost_cap;
  s->ghost_cap = cap;
}

/* the victim's map value turns into its ghost slot in place; the oldest ghost is forgotten */
static void remember(pf_state *s, const pf_entry *x) {
  if (s->heap_n + 1 > s->ghost_cap) grow_ghosts(s);
  pf_ghost *slot = &s->ghosts[s->ghost_head];
  if (slot->live) map_del(&s->objects, slot->id);
  slot->id = x->id;
  slot->count = x->f.count;
  slot->age = (double)s->now - x->f.insert_time;
  slot->evict_time = (double)s->now;
  slot->live = 1;
  map_find(&s->objects, x->id)->val = s->ghost_head | PF_GHOST;
  s->ghost_head = (s->ghost_head + 1) % s->ghost_cap;
}

static void release(pf_state *s, uint32_t e) {
  heap_remove(s, e);
  s->free_list[s->n_free++] = e;
}

obj_id_t cache_eviction_hook(void *data, const request_t *req) {
  pf_state *s = data;
  if (s->heap_n == 0) return req->obj_id;
  uint32_t e = s->heap[0].e;
  obj_id_t victim = s->entries[e].id;
  remember(s, &s->entries[e]);
  release(s, e);
  return victim;
}

void cache_remove_hook(void *data, obj_id_t obj_id) {
  pf_state *s = data;
  uint32_t e = map_get(&s->objects, obj_id);
  if (e == PF_EMPTY || (e & PF_GHOST)) return;
  map_del(&s->objects, obj_id);
  release(s, e);
}

void cache_free_hook(void *data) {
  pf_state *s = data;
  free(s->entries);
  free(s->heap);
  free(s->free_list);
  free(s->objects.slots);
  free(s->ghosts);
  free(s);
}
