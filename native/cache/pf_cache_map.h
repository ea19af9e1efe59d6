/*
 * The map obj_id -> record: open addressing with Fibonacci hashing.
 * Part of the cache template: included by pq_template.c after its feature macros (PF_GHOSTS,
 * PF_STATS); policyforge's export inlines it into one self-contained file.
 */
#ifndef PF_CACHE_MAP_H
#define PF_CACHE_MAP_H

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

#endif
