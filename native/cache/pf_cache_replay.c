/*
 * pf-cache-replay: the trusted recount of a candidate's cache simulation.
 *
 * pf-cachesim --eviction-log wrote, per cache size, the objects the candidate's plugin
 * evicted, in order. This program, which runs no candidate code, replays the trace against
 * those decisions with libCacheSim's rules (a hit if the object is cached; on a miss, an
 * object larger than the cache is not admitted, else victims are taken from the log until
 * the object fits) and counts hits and misses itself. A log that names an object not in
 * the cache, runs out, or has victims left over is rejected. So a claimed miss count is
 * accepted only if some sequence of real eviction decisions produces it.
 *
 *   pf-cache-replay --trace T --type oracleGeneral [--unit] --sizes S1,S2 --logs L1,L2
 * prints {"results": [{"cache_size", "n_req", "n_miss", "n_req_byte", "n_miss_byte"} ...]}
 * or {"error": "..."}.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "libCacheSim/reader.h"

/* open addressing, linear probing; size1 = the object's size + 1, 0 marks a free slot */
typedef struct {
  uint64_t id;
  int64_t size1;
} slot_t;

typedef struct {
  slot_t *slots;
  uint64_t mask, n;
} set_t;

static uint64_t home(const set_t *s, uint64_t id) { return (id * 0x9e3779b97f4a7c15ULL) & s->mask; }

static void set_init(set_t *s, uint64_t cap) {
  uint64_t c = 1024;
  while (c < 2 * cap) c <<= 1;
  s->slots = calloc(c, sizeof(slot_t));
  s->mask = c - 1;
  s->n = 0;
}

static slot_t *set_find(set_t *s, uint64_t id) {
  for (uint64_t i = home(s, id);; i = (i + 1) & s->mask) {
    if (s->slots[i].size1 == 0 || s->slots[i].id == id) return &s->slots[i];
  }
}

static void set_grow(set_t *s) {
  set_t old = *s;
  set_init(s, (old.mask + 1));
  for (uint64_t i = 0; i <= old.mask; i++)
    if (old.slots[i].size1) {
      *set_find(s, old.slots[i].id) = old.slots[i];
      s->n++;
    }
  free(old.slots);
}

static void set_del(set_t *s, slot_t *hole) {
  uint64_t i = (uint64_t)(hole - s->slots);
  s->n--;
  for (uint64_t j = (i + 1) & s->mask; s->slots[j].size1; j = (j + 1) & s->mask) {
    uint64_t h = home(s, s->slots[j].id);
    if (((j - h) & s->mask) >= ((j - i) & s->mask)) {
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i].size1 = 0;
}

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fflush(stdout);
  printf("\n{\"error\": \"");
  vprintf(fmt, ap);
  printf("\"}\n");
  va_end(ap);
  return 1;
}

int main(int argc, char **argv) {
  const char *trace = NULL, *type = "oracleGeneral";
  char *sizes_arg = NULL, *logs_arg = NULL;
  int unit = 0;
  static struct option opts[] = {{"trace", required_argument, 0, 't'}, {"type", required_argument, 0, 'y'},
                                 {"sizes", required_argument, 0, 's'}, {"logs", required_argument, 0, 'l'},
                                 {"unit", no_argument, 0, 'u'},        {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': trace = optarg; break;
      case 'y': type = optarg; break;
      case 's': sizes_arg = optarg; break;
      case 'l': logs_arg = optarg; break;
      case 'u': unit = 1; break;
      default: return 2;
    }
  }
  if (!trace || !sizes_arg || !logs_arg || strcasecmp(type, "oracleGeneral") != 0) {
    fprintf(stderr, "usage: pf-cache-replay --trace T --type oracleGeneral [--unit] --sizes S,.. --logs L,..\n");
    return 2;
  }
  int64_t sizes[64];
  FILE *logs[64];
  int n = 0;
  char *lp = NULL;
  for (char *s = strtok(sizes_arg, ","); s && n < 64; s = strtok(NULL, ",")) sizes[n++] = strtoll(s, NULL, 10);
  int nl = 0;
  for (char *l = strtok_r(logs_arg, ",", &lp); l && nl < 64; l = strtok_r(NULL, ",", &lp)) {
    logs[nl] = fopen(l, "rb");
    if (!logs[nl]) return fail("cannot read the eviction log %s", l);
    setvbuf(logs[nl], NULL, _IOFBF, 1 << 20);
    nl++;
  }
  if (nl != n) return fail("%d eviction logs for %d cache sizes", nl, n);

  printf("{\"results\": [");
  for (int k = 0; k < n; k++) {
    reader_init_param_t rp = default_reader_init_params();
    rp.ignore_obj_size = unit;
    reader_t *reader = open_trace(trace, ORACLE_GENERAL_TRACE, &rp);
    if (!reader) return fail("cannot open the trace %s", trace);
    request_t *req = new_request();
    set_t cached;
    set_init(&cached, 1024);
    int64_t used = 0, n_req = 0, n_miss = 0, n_req_byte = 0, n_miss_byte = 0;
    while (read_one_req(reader, req) == 0) {
      n_req++;
      n_req_byte += req->obj_size;
      slot_t *s = set_find(&cached, req->obj_id);
      if (s->size1) continue; /* a hit */
      n_miss++;
      n_miss_byte += req->obj_size;
      if (req->obj_size > sizes[k]) continue; /* libCacheSim does not admit it */
      while (used + (int64_t)req->obj_size > sizes[k]) {
        uint64_t victim;
        if (fread(&victim, sizeof victim, 1, logs[k]) != 1)
          return fail("the eviction log of cache %d ends at request %lld", k, (long long)n_req);
        slot_t *v = set_find(&cached, victim);
        if (!v->size1)
          return fail("the plugin evicted object %llu at request %lld, which is not in the cache",
                      (unsigned long long)victim, (long long)n_req);
        used -= v->size1 - 1;
        set_del(&cached, v);
      }
      if ((cached.n + 1) * 2 > cached.mask + 1) set_grow(&cached);
      s = set_find(&cached, req->obj_id);
      s->id = req->obj_id;
      s->size1 = req->obj_size + 1;
      cached.n++;
      used += req->obj_size;
    }
    uint64_t extra;
    if (fread(&extra, sizeof extra, 1, logs[k]) == 1)
      return fail("the eviction log of cache %d has victims beyond the trace's end (%llu)", k,
                  (unsigned long long)extra);
    printf("%s{\"cache_size\": %lld, \"n_req\": %lld, \"n_miss\": %lld, \"n_req_byte\": %lld, \"n_miss_byte\": %lld}",
           k ? ", " : "", (long long)sizes[k], (long long)n_req, (long long)n_miss, (long long)n_req_byte,
           (long long)n_miss_byte);
    free(cached.slots);
    free_request(req);
    close_trace(reader);
  }
  printf("]}\n");
  return 0;
}
