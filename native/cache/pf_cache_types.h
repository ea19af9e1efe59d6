/*
 * The template's data: records, queue nodes, map slots, sorted runs and the plugin's state.
 * Part of the cache template: included by pq_template.c after its feature macros (PF_GHOSTS,
 * PF_STATS); policyforge's export inlines it into one self-contained file.
 */
#ifndef PF_CACHE_TYPES_H
#define PF_CACHE_TYPES_H

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
#if PF_MIX
  double prio2;       /* priority2(), set with prio (and the same tie) */
  uint32_t by;        /* ghost: the order (0: priority, 1: priority2) that evicted it ... */
  uint64_t evseq;     /* ... and which of that order's evictions it was */
#endif
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
  uint32_t n_once;    /* cached objects with count == 1 (ctx.once) */
  pf_map objects;     /* cached objects and ghosts */
  uint32_t *ghosts;   /* ring of record indices, oldest eviction at ghost_head */
  uint32_t ghost_cap, ghost_head;
  struct pf_ctx ctx;
  uint32_t seq;
  uint64_t now;
  uint64_t misses_window, ghost_hits_window;
  uint64_t rng;
  int64_t capacity;
  uint8_t *sketch;         /* PF_SKETCH: 4 rows of saturating counters (pf_cache_stats.h) */
  uint64_t sketch_mask;    /* row width - 1 */
  uint64_t sketch_window, sketch_n;  /* all counters halve every sketch_window requests */
#if PF_MIX
  pf_node *heap2;          /* the second order: a 4-ary heap on (prio2, tie), one node per update */
  uint32_t heap2_n, heap2_cap;
  double w[2];             /* the orders' weights (LeCaR's), summing to 1 */
  uint64_t n_ev[2];        /* evictions by each order so far */
  uint64_t mix_rng;        /* the draws between them: its own stream, so no other sample moves */
#endif
} pf_state;

#endif
