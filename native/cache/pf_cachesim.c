/*
 * pf-cachesim: run one eviction algorithm of libCacheSim (built in, or a pluginCache
 * plugin .so) on a trace at several cache sizes and print the miss ratios as JSON.
 *
 * The simulation is libCacheSim's own: its trace readers and simulate_with_multi_caches().
 * policyforge runs this binary inside its sandbox, so a faulty plugin only kills this
 * process.
 *
 *   pf-cachesim --trace T --type oracleGeneral --algo lru --sizes 1000,5000 [--unit]
 *   pf-cachesim --trace T --type csv --csv "time=1,obj_id=2,obj_size=3,header=1,delimiter=comma" ...
 *   pf-cachesim --trace T --type oracleGeneral --plugin ./policy.so --sizes 1000 --unit
 *   pf-cachesim --trace T --type oracleGeneral --footprint [--unit]
 */
#include <getopt.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "libCacheSim/cache.h"
#include "libCacheSim/evictionAlgo.h"
#include "libCacheSim/reader.h"
#include "libCacheSim/simulator.h"

typedef cache_t *(*init_fn)(common_cache_params_t, const char *);

static const struct {
  const char *name;
  init_fn init;
} ALGOS[] = {
    {"lru", LRU_init},       {"lfu", LFU_init},         {"fifo", FIFO_init},
    {"mru", MRU_init},       {"lirs", LIRS_init},       {"clock", Clock_init},
    {"fifo-reinsertion", FIFO_Reinsertion_init},        {"cr-lfu", CR_LFU_init},
    {"sr-lru", SR_LRU_init}, {"gdsf", GDSF_init},       {"sieve", Sieve_init},
    {"s3-fifo", S3FIFO_init}, {"lhd", LHD_init},        {"lecar", LeCaR_init},
    {"cacheus", Cacheus_init}, {"arc", ARC_init},       {"tinylfu", WTinyLFU_init},
    {"belady", Belady_init}, {"twoq", TwoQ_init},       {"slru", SLRU_init},
    {"lfuda", LFUDA_init},   {"pluginCache", pluginCache_init},
};

static void die(const char *msg, const char *arg) {
  fprintf(stderr, "pf-cachesim: %s%s\n", msg, arg ? arg : "");
  exit(2);
}

static trace_type_e trace_type(const char *s) {
  if (!strcasecmp(s, "oracleGeneral")) return ORACLE_GENERAL_TRACE;
  if (!strcasecmp(s, "csv")) return CSV_TRACE;
  if (!strcasecmp(s, "lcs")) return LCS_TRACE;
  if (!strcasecmp(s, "txt")) return PLAIN_TXT_TRACE;
  if (!strcasecmp(s, "vscsi")) return VSCSI_TRACE;
  die("unknown trace type ", s);
  return UNKNOWN_TRACE;
}

/* "time=1,obj_id=2,obj_size=3,header=1,delimiter=comma" -> reader params (1-based columns) */
static void parse_csv_spec(char *spec, reader_init_param_t *p) {
  p->has_header_set = true;
  p->has_header = false;
  p->delimiter = ',';
  p->obj_id_is_num = false;
  for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
    char *v = strchr(kv, '=');
    if (!v) die("bad --csv item ", kv);
    *v++ = '\0';
    if (!strcmp(kv, "time")) p->time_field = atoi(v);
    else if (!strcmp(kv, "obj_id")) p->obj_id_field = atoi(v);
    else if (!strcmp(kv, "obj_size")) p->obj_size_field = atoi(v);
    else if (!strcmp(kv, "header")) p->has_header = atoi(v) != 0;
    else if (!strcmp(kv, "obj_id_is_num")) p->obj_id_is_num = atoi(v) != 0;
    else if (!strcmp(kv, "delimiter"))
      p->delimiter = !strcmp(v, "tab") ? '\t' : !strcmp(v, "space") ? ' ' : !strcmp(v, "comma") ? ',' : v[0];
    else die("unknown --csv key ", kv);
  }
  if (p->obj_id_field <= 0) die("--csv needs obj_id=COLUMN", NULL);
}

static double clock_s(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void footprint(reader_t *reader) {
  /* object ids are 64-bit and so are pointers here: the id itself is the key */
  GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
  request_t *req = new_request();
  int64_t n_req = 0, n_obj = 0, bytes = 0;
  while (read_one_req(reader, req) == 0) {
    n_req++;
    if (g_hash_table_add(seen, GSIZE_TO_POINTER(req->obj_id))) {
      n_obj++;
      bytes += req->obj_size;
    }
  }
  printf("{\"n_req\": %ld, \"n_obj\": %ld, \"bytes\": %ld}\n", (long)n_req, (long)n_obj, (long)bytes);
  g_hash_table_destroy(seen);
  free_request(req);
}

int main(int argc, char **argv) {
  const char *trace = NULL, *type = "oracleGeneral", *algo = NULL, *plugin = NULL, *params = NULL;
  char *csv = NULL, *sizes_arg = NULL;
  bool unit = false, want_footprint = false;
  int hashpower = 20;
  static struct option opts[] = {
      {"trace", required_argument, 0, 't'}, {"type", required_argument, 0, 'y'},
      {"algo", required_argument, 0, 'a'},  {"plugin", required_argument, 0, 'p'},
      {"params", required_argument, 0, 'e'}, {"sizes", required_argument, 0, 's'},
      {"csv", required_argument, 0, 'c'},   {"unit", no_argument, 0, 'u'},
      {"hashpower", required_argument, 0, 'h'}, {"footprint", no_argument, 0, 'f'},
      {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 't': trace = optarg; break;
      case 'y': type = optarg; break;
      case 'a': algo = optarg; break;
      case 'p': plugin = optarg; break;
      case 'e': params = optarg; break;
      case 's': sizes_arg = optarg; break;
      case 'c': csv = optarg; break;
      case 'u': unit = true; break;
      case 'h': hashpower = atoi(optarg); break;
      case 'f': want_footprint = true; break;
      default: die("usage: see the comment at the top of pf_cachesim.c", NULL);
    }
  }
  if (!trace) die("--trace is required", NULL);

  reader_init_param_t rp = default_reader_init_params();
  rp.ignore_obj_size = unit;
  if (csv) parse_csv_spec(csv, &rp);
  reader_t *reader = open_trace(trace, trace_type(type), &rp);
  if (!reader) die("cannot open trace ", trace);

  if (want_footprint) {
    footprint(reader);
    close_trace(reader);
    return 0;
  }
  if (!sizes_arg || (!algo && !plugin)) die("need --sizes and --algo or --plugin", NULL);

  char plugin_params[4096];
  if (plugin) {
    snprintf(plugin_params, sizeof plugin_params, "plugin_path=%s,cache_name=policyforge", plugin);
    algo = "pluginCache";
    params = plugin_params;
  }
  init_fn init = NULL;
  for (size_t i = 0; i < sizeof ALGOS / sizeof ALGOS[0]; i++)
    if (!strcasecmp(algo, ALGOS[i].name)) init = ALGOS[i].init;
  if (!init) die("unknown algorithm ", algo);

  cache_t *caches[64];
  int n = 0;
  for (char *s = strtok(sizes_arg, ","); s && n < 64; s = strtok(NULL, ",")) {
    common_cache_params_t cp = {.cache_size = strtoull(s, NULL, 10), .hashpower = hashpower,
                                .default_ttl = 86400 * 300};
    if (cp.cache_size == 0) die("cache size must be > 0: ", s);
    caches[n++] = init(cp, params);
  }

  /* CPU time as well as wall time: on a busy machine only the CPU time is comparable */
  double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  cache_stat_t *st = simulate_with_multi_caches(reader, caches, n, NULL, 0, 0, 1, false, false);
  double dt = clock_s(CLOCK_MONOTONIC) - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;

  int64_t total_req = 0;
  printf("{\"algo\": \"%s\", \"seconds\": %.6f, \"cpu_seconds\": %.6f, \"results\": [",
         plugin ? "plugin" : algo, dt, cpu);
  for (int i = 0; i < n; i++) {
    total_req += st[i].n_req;
    printf("%s{\"cache_size\": %ld, \"n_req\": %ld, \"n_miss\": %ld, \"n_req_byte\": %ld, \"n_miss_byte\": %ld,"
           " \"miss_ratio\": %.8f, \"byte_miss_ratio\": %.8f}",
           i ? ", " : "", (long)caches[i]->cache_size, (long)st[i].n_req, (long)st[i].n_miss,
           (long)st[i].n_req_byte, (long)st[i].n_miss_byte,
           st[i].n_req ? (double)st[i].n_miss / st[i].n_req : 0.0,
           st[i].n_req_byte ? (double)st[i].n_miss_byte / st[i].n_req_byte : 0.0);
  }
  printf("], \"req_per_s\": %.1f, \"req_per_cpu_s\": %.1f}\n", dt > 0 ? total_req / dt : 0.0,
         cpu > 0 ? total_req / cpu : 0.0);
  for (int i = 0; i < n; i++) caches[i]->cache_free(caches[i]);
  free(st);
  close_trace(reader);
  return 0;
}
