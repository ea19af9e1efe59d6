/*
 * The priority queue: two sorted runs and a 4-ary heap ordered by (priority, tie), with lazy increase-key; tie renumbering.
 * Part of the cache template: included by pq_template.c after its feature macros (PF_GHOSTS,
 * PF_STATS); policyforge's export inlines it into one self-contained file.
 */
#ifndef PF_CACHE_QUEUE_H
#define PF_CACHE_QUEUE_H

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

#if PF_MIX
/* ---- the second order (two orders mixed, PF_MIX) ----------------------------------------
 * A plain 4-ary heap on (prio2, tie): every update of a record pushes a node with the
 * record's new tie, so a node is current exactly when its tie is the record's and the record
 * is cached; the others are garbage, dropped at the top or when garbage is half the heap.
 * Its minimum is the cached object of least (prio2, tie), as the first order's is of
 * (prio, tie). */
static inline int live2(const pf_state *s, const pf_node *n) {
  return s->recs[n->r].state == PF_CACHED && s->recs[n->r].tie == n->tie;
}

static void heap2_rebuild(pf_state *s, int from_records) {
  uint32_t k = 0;
  if (from_records) {  /* after the ties were renumbered: one node per cached record */
    for (uint32_t i = 0; i < s->n_recs; i++)
      if (s->recs[i].state == PF_CACHED) s->heap2[k++] = (pf_node){s->recs[i].prio2, s->recs[i].tie, i};
  } else {
    for (uint32_t i = 0; i < s->heap2_n; i++)
      if (live2(s, &s->heap2[i])) s->heap2[k++] = s->heap2[i];
  }
  s->heap2_n = k;
  for (uint32_t i = k / 4 + 1; i-- > 0;)
    if (i < k) sift_down(s->heap2, k, i, s->heap2[i]);
}

static void push2(pf_state *s, uint32_t r) {
  if (s->heap2_n > 2 * s->n_cached + 64) heap2_rebuild(s, 0);
  if (s->heap2_n == s->heap2_cap) {
    s->heap2_cap = s->heap2_cap ? 2 * s->heap2_cap : 1024;
    s->heap2 = realloc(s->heap2, s->heap2_cap * sizeof(pf_node));
  }
  s->heap2[s->heap2_n] = (pf_node){s->recs[r].prio2, s->recs[r].tie, r};
  sift_up(s->heap2, s->heap2_n++);
}

/* the cached object of least (prio2, tie) */
static uint32_t pop2(pf_state *s) {
  for (;;) {
    pf_node top = s->heap2[0];
    s->heap2_n--;
    if (s->heap2_n) sift_down(s->heap2, s->heap2_n, 0, s->heap2[s->heap2_n]);
    if (live2(s, &top)) return top.r;
  }
}
#endif

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
#if PF_MIX
  if (s->n_recs > s->heap2_cap) {
    s->heap2_cap = s->n_recs;
    s->heap2 = realloc(s->heap2, s->heap2_cap * sizeof(pf_node));
  }
  heap2_rebuild(s, 1);
#endif
}

#endif
