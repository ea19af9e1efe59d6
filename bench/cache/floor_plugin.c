/*
 * The cheapest pluginCache plugin there is: FIFO over a ring of object ids, unit sizes.
 * bench/cache/run.py times it to show what libCacheSim's plugin path costs by itself, so the
 * template's own cost (heap, maps, ghost history, statistics) can be read off the difference.
 */
#include <stdlib.h>

#include "libCacheSim/cache.h"

typedef struct {
  obj_id_t *ring;
  uint64_t head, tail, cap;
} fifo_ring;

void *cache_init_hook(const common_cache_params_t params) {
  fifo_ring *r = calloc(1, sizeof *r);
  r->cap = params.cache_size + 1;
  r->ring = malloc(r->cap * sizeof(obj_id_t));
  return r;
}

void cache_hit_hook(void *data, const request_t *req) { (void)data; (void)req; }

void cache_miss_hook(void *data, const request_t *req) {
  fifo_ring *r = data;
  r->ring[r->tail++ % r->cap] = req->obj_id;
}

obj_id_t cache_eviction_hook(void *data, const request_t *req) {
  fifo_ring *r = data;
  (void)req;
  return r->ring[r->head++ % r->cap];
}

void cache_remove_hook(void *data, obj_id_t obj_id) { (void)data; (void)obj_id; }

void cache_free_hook(void *data) {
  fifo_ring *r = data;
  free(r->ring);
  free(r);
}
