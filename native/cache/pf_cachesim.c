/*
 * pf-cachesim: run one eviction algorithm of libCacheSim (built in, or a pluginCache
 * plugin .so) on a trace at several cache sizes and print the miss ratios as JSON.
 *
 * The simulation is libCacheSim's: its trace readers, its caches' get(), and the loop of its
 * simulate_with_multi_caches() (simulate(), below), run here in the calling thread because
 * libCacheSim's worker threads reopen the trace by name. policyforge runs this binary inside its sandbox. Once the trace is open and the plugin
 * loaded (its init hook is the template's own code), and before the first request reaches
 * the candidate's priority(), the process locks itself down (pf_lockdown: no new file, no
 * process, no socket). The counts it prints are the candidate's claim: the
 * parent checks them, and re-verifies a good result with --eviction-log and pf-cache-replay.
 *
 *   pf-cachesim --trace T --type oracleGeneral --algo lru --sizes 1000,5000 [--unit]
 *   pf-cachesim --trace T --type csv --csv "time=1,obj_id=2,obj_size=3,header=1,delimiter=comma" ...
 *   pf-cachesim --trace T --type oracleGeneral --plugin ./policy.so --sizes 1000 --unit
 *       [--preload ./priority.so]  a library loaded first, whose symbols the plugin uses (the
 *                                  candidate's priority() beside the template's machinery)
 *       [--eviction-log PREFIX]   each cache's victims, in order, to PREFIX.0, PREFIX.1, ...
 *   pf-cachesim --trace T --type oracleGeneral --footprint [--unit]
 *   pf-cachesim --trace T --type csv --csv ... --convert OUT   the trace as oracleGeneral
 *       without next-access times (the copy candidates run on: no oracle data in it)
 */
#include <dlfcn.h>
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
#include "pf_seccomp.h"

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
    {"lfuda", LFUDA_init},   {"clock2qplus", Clock2QPlus_init}, {"clockpro", ClockPro_init},
    {"qdlp", QDLP_init},     {"car", CAR_init},         {"mq", MQ_init},
    {"pluginCache", pluginCache_init},
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
  int64_t n_req = 0, n_obj = 0, bytes = 0, req_bytes = 0;
  while (read_one_req(reader, req) == 0) {
    n_req++;
    req_bytes += req->obj_size;
    if (g_hash_table_add(seen, GSIZE_TO_POINTER(req->obj_id))) {
      n_obj++;
      bytes += req->obj_size;
    }
  }
  /* bytes: of each object's first request (the misses no policy avoids); req_bytes: of all */
  printf("{\"n_req\": %ld, \"n_obj\": %ld, \"bytes\": %ld, \"req_bytes\": %ld}\n", (long)n_req, (long)n_obj,
         (long)bytes, (long)req_bytes);
  g_hash_table_destroy(seen);
  free_request(req);
}

/* the trace as oracleGeneral records with next_access_vtime = -1 ("no next access") */
static void convert(reader_t *reader, const char *out_path) {
  FILE *out = fopen(out_path, "wb");
  if (!out) die("cannot write ", out_path);
  request_t *req = new_request();
  int64_t n_req = 0;
  while (read_one_req(reader, req) == 0) {
    struct __attribute__((packed)) {
      uint32_t ts;
      uint64_t id;
      uint32_t size;
      int64_t next;
    } rec = {(uint32_t)req->clock_time, req->obj_id, (uint32_t)req->obj_size, -1};
    if (fwrite(&rec, sizeof rec, 1, out) != 1) die("cannot write ", out_path);
    n_req++;
  }
  if (fclose(out) != 0) die("cannot write ", out_path);
  free_request(req);
  printf("{\"n_req\": %ld}\n", (long)n_req);
}

/* --eviction-log: pluginCache keeps the plugin's hooks in a struct private to
 * plugin_cache.c; this is its layout in the pinned libCacheSim (0.3.5). eviction_logger()
 * checks the layout against the plugin it loaded before relying on it. */
typedef struct {
  char *plugin_path;
  void *plugin_handle;
  void *data;
  void *init_hook, *hit_hook, *miss_hook;
  obj_id_t (*eviction_hook)(void *, const request_t *);
  void *remove_hook, *free_hook;
  char *cache_name;
} plugin_params_0_3_5;

static struct {
  void *data;
  obj_id_t (*hook)(void *, const request_t *);
  FILE *log;
} logs[64];
static int n_logs;

static obj_id_t logged_eviction(void *data, const request_t *req) {
  for (int i = 0; i < n_logs; i++) {
    if (logs[i].data != data) continue;
    obj_id_t victim = logs[i].hook(data, req);
    fwrite(&victim, sizeof victim, 1, logs[i].log);
    return victim;
  }
  abort(); /* not one of ours */
}

static void eviction_logger(cache_t *cache, const char *plugin, const char *prefix, int idx) {
  plugin_params_0_3_5 *p = cache->eviction_params;
  void *h = dlopen(plugin, RTLD_NOW | RTLD_NOLOAD);
  if (!h || p->plugin_handle != h || (void *)p->eviction_hook != dlsym(h, "cache_eviction_hook"))
    die("--eviction-log: this libCacheSim's pluginCache has an unknown layout", NULL);
  dlclose(h);
  char path[4096];
  snprintf(path, sizeof path, "%s.%d", prefix, idx);
  FILE *f = fopen(path, "wb");
  if (!f) die("cannot write ", path);
  setvbuf(f, NULL, _IOFBF, 1 << 20);
  logs[n_logs].data = p->data;
  logs[n_logs].hook = p->eviction_hook;
  logs[n_logs].log = f;
  n_logs++;
  p->eviction_hook = logged_eviction;
}

/* libCacheSim's random source (utils/mymath.c; thread-local, not in its public headers) */
void set_rand_seed(uint64_t seed);

/* what libCacheSim's simulate_with_multi_caches() does with one worker thread and no warm-up:
 * each cache in turn sees the whole trace with the random seed reset to 1 and times made
 * relative to the first request; a miss is a get() that returns false. Same counts, same
 * random numbers, no second open() of the trace. */
static cache_stat_t *simulate(reader_t *reader, cache_t **caches, int n) {
  cache_stat_t *st = calloc((size_t)n, sizeof(cache_stat_t));
  request_t *req = new_request();
  for (int i = 0; i < n; i++) {
    set_rand_seed(1);
    reset_reader(reader);
    read_one_req(reader, req);
    int64_t start_ts = (int64_t)req->clock_time;
    while (req->valid) {
      st[i].n_req++;
      st[i].n_req_byte += req->obj_size;
      req->clock_time -= start_ts;
      if (!caches[i]->get(caches[i], req)) {
        st[i].n_miss++;
        st[i].n_miss_byte += req->obj_size;
      }
      read_one_req(reader, req);
    }
  }
  free_request(req);
  return st;
}

int main(int argc, char **argv) {
  const char *trace = NULL, *type = "oracleGeneral", *algo = NULL, *plugin = NULL, *params = NULL;
  const char *convert_to = NULL, *eviction_log = NULL, *preload = NULL;
  char *csv = NULL, *sizes_arg = NULL;
  bool unit = false, want_footprint = false;
  int hashpower = 20;
  static struct option opts[] = {
      {"trace", required_argument, 0, 't'}, {"type", required_argument, 0, 'y'},
      {"algo", required_argument, 0, 'a'},  {"plugin", required_argument, 0, 'p'},
      {"params", required_argument, 0, 'e'}, {"sizes", required_argument, 0, 's'},
      {"csv", required_argument, 0, 'c'},   {"unit", no_argument, 0, 'u'},
      {"hashpower", required_argument, 0, 'h'}, {"footprint", no_argument, 0, 'f'},
      {"convert", required_argument, 0, 'o'}, {"eviction-log", required_argument, 0, 'l'},
      {"preload", required_argument, 0, 'r'},
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
      case 'o': convert_to = optarg; break;
      case 'l': eviction_log = optarg; break;
      case 'r': preload = optarg; break;
      default: die("usage: see the comment at the top of pf_cachesim.c", NULL);
    }
  }
  if (!trace) die("--trace is required", NULL);

  reader_init_param_t rp = default_reader_init_params();
  rp.ignore_obj_size = unit;
  if (csv) parse_csv_spec(csv, &rp);
  reader_t *reader = open_trace(trace, trace_type(type), &rp);
  if (!reader) die("cannot open trace ", trace);

  if (want_footprint || convert_to) {
    if (want_footprint) footprint(reader);
    else convert(reader, convert_to);
    close_trace(reader);
    return 0;
  }
  if (!sizes_arg || (!algo && !plugin)) die("need --sizes and --algo or --plugin", NULL);

  if (preload && !dlopen(preload, RTLD_NOW | RTLD_GLOBAL)) die("cannot load --preload: ", dlerror());
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
    caches[n] = init(cp, params);
    if (eviction_log && plugin) eviction_logger(caches[n], plugin, eviction_log, n);
    n++;
  }
  /* the trace is open and mapped, the plugin loaded: nothing else may be opened from here */
  fflush(stdout);
  if (pf_lockdown() != 0) return 3;

  /* CPU time as well as wall time: on a busy machine only the CPU time is comparable */
  double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
  cache_stat_t *st = simulate(reader, caches, n);
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
  for (int i = 0; i < n_logs; i++)
    if (fclose(logs[i].log) != 0) die("cannot write the eviction log", NULL);
  fflush(stdout);
  for (int i = 0; i < n; i++) caches[i]->cache_free(caches[i]);
  free(st);
  close_trace(reader);
  return 0;
}
