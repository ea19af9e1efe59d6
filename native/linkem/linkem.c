/*
 * linkem: a userspace link emulator over two TUN devices (this kernel has no netem).
 *
 * Packets read from one TUN device go through, per direction,
 *   droptail queue -> bottleneck (Mahimahi delivery opportunities) -> delay line
 * and are written to the other TUN device. Mahimahi's trace semantics: each line of a
 * trace is a millisecond timestamp at which 1500 bytes may leave; the file loops. A
 * fixed rate is the same with opportunities every 1500*8/rate seconds.
 *
 *   linkem --dev-a TUN --dev-b TUN [--rate-mbps R | --trace FILE] [--delay-ms D]
 *          [--queue-pkts N | --queue-bytes B] [--loss P] [--log FILE] [--uplink-* ...]
 *
 * Direction a->b is the "downlink" (data, e.g. sender to receiver); b->a the uplink (ACKs),
 * which by default has the same delay and no rate limit. Every packet is logged
 * (direction, size, enqueue/departure/delivery ns or dropped) for the delay metrics; the
 * first record (direction 255) holds the clock's start, where the trace's time 0 lies.
 * It runs until SIGTERM/SIGINT. The devices are created here and then moved into other
 * network namespaces by the harness; the file descriptors keep working.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MTU_BUF 2048
#define OPP_BYTES 1500

typedef struct {
  uint8_t dir, dropped;
  uint16_t size;
  uint32_t pad;
  uint64_t enq_ns, deq_ns, dlv_ns;
} log_rec; /* 32 bytes, read by harness/metrics.py */
#define LOG_ORIGIN 255 /* dir of the first record: enq_ns = time 0 of the traces */

typedef struct pkt {
  struct pkt *next;
  uint64_t enq_ns, deq_ns, release_ns;
  uint16_t len;
  uint8_t data[MTU_BUF];
} pkt;

typedef struct {
  pkt *head, *tail;
} fifo;

typedef struct {
  const char *name;
  int in_fd, out_fd;
  /* bottleneck */
  double rate_mbps;        /* 0 and no trace: unlimited */
  uint64_t *trace_ms;      /* opportunities, ms, ascending */
  size_t trace_n;
  uint64_t trace_period_ms;
  uint64_t next_opp_ns;    /* absolute time of the next opportunity */
  size_t trace_i;
  uint64_t trace_base_ns;
  int64_t credit;
  uint64_t wire_free_ns;   /* fixed rate: when the wire finishes the packet in flight */
  /* queue */
  fifo queue;
  uint64_t q_bytes, q_pkts, q_limit_bytes, q_limit_pkts;
  /* delay line */
  fifo delay;
  uint64_t delay_ns;
  double loss;
  uint8_t dir;
} path;

static volatile sig_atomic_t stop;
static FILE *logf;
/* Log records collect in memory and reach the file at exit (or every LOG_FLUSH records):
 * a write() can block for tens of ms when other processes dirty the page cache, and
 * the packets behind it would be late. */
#define LOG_FLUSH (1u << 22) /* 4 M records = 128 MiB */
static log_rec *log_buf;
static size_t log_n, log_cap;

static void log_flush(void) {
  if (logf && log_n) fwrite(log_buf, sizeof(log_rec), log_n, logf);
  log_n = 0;
}

static void log_add(const log_rec *r) {
  if (log_n == LOG_FLUSH) log_flush();
  if (log_n == log_cap) {
    log_cap = log_cap ? log_cap * 2 : 65536;
    log_buf = realloc(log_buf, log_cap * sizeof(log_rec));
    if (!log_buf) { fprintf(stderr, "linkem: out of memory for the log\n"); exit(1); }
  }
  log_buf[log_n++] = *r;
}
static pkt *free_pkts;
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static void on_signal(int s) { (void)s; stop = 1; }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static double uniform(void) {
  rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
  return (rng_state >> 11) * (1.0 / 9007199254740992.0);
}

static pkt *pkt_alloc(void) {
  pkt *p = free_pkts;
  if (p) free_pkts = p->next; else p = malloc(sizeof(pkt));
  p->next = NULL;
  return p;
}
static void pkt_free(pkt *p) { p->next = free_pkts; free_pkts = p; }
static void push(fifo *f, pkt *p) { p->next = NULL; if (f->tail) f->tail->next = p; else f->head = p; f->tail = p; }
static pkt *pop(fifo *f) { pkt *p = f->head; if (p) { f->head = p->next; if (!f->head) f->tail = NULL; } return p; }

static void log_pkt(const path *pa, const pkt *p, int dropped, uint64_t dlv) {
  if (!logf) return;
  log_rec r = {pa->dir, (uint8_t)dropped, p->len, 0, p->enq_ns, dropped ? 0 : p->deq_ns, dlv};
  log_add(&r);
}

static int tun_open(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { perror("linkem: /dev/net/tun"); exit(1); }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) { fprintf(stderr, "linkem: TUNSETIFF %s: %s\n", name, strerror(errno)); exit(1); }
  return fd;
}

static void load_trace(path *pa, const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) { fprintf(stderr, "linkem: cannot open trace %s\n", file); exit(1); }
  size_t cap = 1024;
  pa->trace_ms = malloc(cap * sizeof(uint64_t));
  char line[64];
  while (fgets(line, sizeof line, f)) {
    char *end;
    unsigned long long v = strtoull(line, &end, 10);
    if (end == line) continue;
    if (pa->trace_n && v < pa->trace_ms[pa->trace_n - 1]) {
      fprintf(stderr, "linkem: trace %s is not sorted at value %llu\n", file, v); exit(1);
    }
    if (pa->trace_n == cap) pa->trace_ms = realloc(pa->trace_ms, (cap *= 2) * sizeof(uint64_t));
    pa->trace_ms[pa->trace_n++] = v;
  }
  fclose(f);
  if (!pa->trace_n || pa->trace_ms[pa->trace_n - 1] == 0) {
    fprintf(stderr, "linkem: trace %s has no opportunity after 0 ms\n", file); exit(1);
  }
  pa->trace_period_ms = pa->trace_ms[pa->trace_n - 1];
}

static int limited(const path *pa) { return pa->trace_n || pa->rate_mbps > 0; }

/* trace: advance next_opp_ns to the following opportunity */
static void next_opportunity(path *pa) {
  if (pa->trace_n) {
    pa->trace_i++;
    if (pa->trace_i == pa->trace_n) { pa->trace_i = 0; pa->trace_base_ns += pa->trace_period_ms * 1000000ULL; }
    pa->next_opp_ns = pa->trace_base_ns + pa->trace_ms[pa->trace_i] * 1000000ULL;
  }
}

static void start(path *pa, uint64_t t0) {
  pa->trace_base_ns = t0;
  pa->next_opp_ns = pa->trace_n ? t0 + pa->trace_ms[0] * 1000000ULL : t0;
}

static void enqueue(path *pa, pkt *p, uint64_t t) {
  p->enq_ns = t;
  if (pa->loss > 0 && uniform() < pa->loss) { log_pkt(pa, p, 1, 0); pkt_free(p); return; }
  if (!limited(pa)) { p->deq_ns = t; p->release_ns = t + pa->delay_ns; push(&pa->delay, p); return; }
  if ((pa->q_limit_pkts && pa->q_pkts + 1 > pa->q_limit_pkts) ||
      (pa->q_limit_bytes && pa->q_bytes + p->len > pa->q_limit_bytes)) {
    log_pkt(pa, p, 2, 0); /* droptail */
    pkt_free(p);
    return;
  }
  push(&pa->queue, p);
  pa->q_pkts++;
  pa->q_bytes += p->len;
}

static pkt *dequeue(path *pa) {
  pkt *p = pop(&pa->queue);
  pa->q_pkts--;
  pa->q_bytes -= p->len;
  return p;
}

/* the packet left the bottleneck at dep; it arrives after the propagation delay */
static void to_delay_line(path *pa, pkt *p, uint64_t dep) {
  p->deq_ns = dep;
  p->release_ns = dep + pa->delay_ns;
  push(&pa->delay, p);
}

/* Trace bottleneck: run all opportunities due by t; each gives OPP_BYTES of credit, wasted
 * if the queue is empty (Mahimahi: an unused opportunity is gone). */
static void serve_trace(path *pa, uint64_t t) {
  while (pa->next_opp_ns <= t) {
    if (!pa->queue.head) pa->credit = 0;
    else pa->credit += OPP_BYTES;
    while (pa->queue.head && pa->credit >= pa->queue.head->len) {
      pkt *p = dequeue(pa);
      pa->credit -= p->len;
      to_delay_line(pa, p, pa->next_opp_ns);
    }
    if (!pa->queue.head) pa->credit = 0;
    next_opportunity(pa);
  }
}

/* Fixed-rate bottleneck: a wire of rate_mbps that serializes one packet after the other.
 * Under backlog this equals a constant trace; an idle link sends at once (no wait for an
 * opportunity), as a real link does. */
static uint64_t tx_ns(const path *pa, const pkt *p) { return (uint64_t)(p->len * 8.0 / pa->rate_mbps * 1e3); }

static uint64_t rate_departure(const path *pa) {
  const pkt *p = pa->queue.head;
  uint64_t begin = p->enq_ns > pa->wire_free_ns ? p->enq_ns : pa->wire_free_ns;
  return begin + tx_ns(pa, p);
}

static void serve_rate(path *pa, uint64_t t) {
  while (pa->queue.head) {
    uint64_t dep = rate_departure(pa);
    if (dep > t) break;
    pa->wire_free_ns = dep;
    to_delay_line(pa, dequeue(pa), dep);
  }
}

static void serve(path *pa, uint64_t t) {
  if (pa->trace_n) serve_trace(pa, t);
  else if (pa->rate_mbps > 0) serve_rate(pa, t);
}

static void deliver(path *pa, uint64_t t) {
  while (pa->delay.head && pa->delay.head->release_ns <= t) {
    pkt *p = pop(&pa->delay);
    uint64_t now = now_ns();
    if (write(pa->out_fd, p->data, p->len) < 0 && errno != EAGAIN) { /* receiver gone: drop */ }
    log_pkt(pa, p, 0, now);
    pkt_free(p);
  }
}

static uint64_t next_event(const path *pa) {
  uint64_t e = UINT64_MAX;
  if (pa->delay.head) e = pa->delay.head->release_ns;
  if (pa->queue.head) {
    uint64_t dep = pa->trace_n ? pa->next_opp_ns : pa->rate_mbps > 0 ? rate_departure(pa) : e;
    if (dep < e) e = dep;
  }
  return e;
}

static void usage(void) {
  fprintf(stderr, "usage: linkem --dev-a TUN --dev-b TUN [--rate-mbps R | --trace FILE] [--delay-ms D]\n"
                  "              [--queue-pkts N | --queue-bytes B] [--loss P] [--uplink-rate-mbps R]\n"
                  "              [--uplink-trace FILE] [--log FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  path down = {.name = "down", .dir = 0}, up = {.name = "up", .dir = 1};
  const char *dev_a = NULL, *dev_b = NULL, *log_path = NULL;
  double delay_ms = 0;
  static struct option opts[] = {
      {"dev-a", 1, 0, 'a'}, {"dev-b", 1, 0, 'b'}, {"rate-mbps", 1, 0, 'r'}, {"trace", 1, 0, 't'},
      {"delay-ms", 1, 0, 'd'}, {"queue-pkts", 1, 0, 'q'}, {"queue-bytes", 1, 0, 'Q'}, {"loss", 1, 0, 'l'},
      {"uplink-rate-mbps", 1, 0, 'R'}, {"uplink-trace", 1, 0, 'T'}, {"log", 1, 0, 'L'}, {0, 0, 0, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
      case 'a': dev_a = optarg; break;
      case 'b': dev_b = optarg; break;
      case 'r': down.rate_mbps = atof(optarg); break;
      case 't': load_trace(&down, optarg); break;
      case 'd': delay_ms = atof(optarg); break;
      case 'q': down.q_limit_pkts = strtoull(optarg, NULL, 10); break;
      case 'Q': down.q_limit_bytes = strtoull(optarg, NULL, 10); break;
      case 'l': down.loss = atof(optarg); break;
      case 'R': up.rate_mbps = atof(optarg); break;
      case 'T': load_trace(&up, optarg); break;
      case 'L': log_path = optarg; break;
      default: usage();
    }
  }
  if (!dev_a || !dev_b) usage();
  if (down.rate_mbps < 0 || up.rate_mbps < 0 || delay_ms < 0 || down.loss < 0 || down.loss > 1) {
    fprintf(stderr, "linkem: rates and delay must be >= 0 and loss in [0, 1]\n");
    return 2;
  }
  if (limited(&down) && !down.q_limit_pkts && !down.q_limit_bytes) down.q_limit_pkts = 1000;
  if (limited(&up) && !up.q_limit_pkts && !up.q_limit_bytes) up.q_limit_pkts = 1000;
  down.delay_ns = up.delay_ns = (uint64_t)(delay_ms * 1e6);
  down.in_fd = up.out_fd = tun_open(dev_a);
  down.out_fd = up.in_fd = tun_open(dev_b);
  if (log_path && !(logf = fopen(log_path, "wb"))) { perror("linkem: log"); return 1; }
  prctl(PR_SET_TIMERSLACK, 1UL);  /* wake within microseconds, not the default 50 us */
  /* the harness (precisely: the thread that started us) died: stop, so the TUN devices vanish */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  /* a real-time priority keeps departures on time on a busy machine; without it still works */
  struct sched_param sp = {.sched_priority = 10};
  if (!getenv("LINKEM_NO_RT")) sched_setscheduler(0, SCHED_FIFO, &sp);
  /* no page fault on the packet path: under memory pressure (a build, a page cache full of a
   * writer's dirty pages) a fault can wait for reclaim. Packet buffers and the log are faulted
   * in when allocated, outside the departure deadlines' critical moments. */
  if (!getenv("LINKEM_NO_MLOCK") && mlockall(MCL_CURRENT | MCL_FUTURE) != 0) { /* best effort */ }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  printf("ready\n");
  fflush(stdout);

  uint64_t t0 = now_ns();
  start(&down, t0);
  start(&up, t0);
  if (logf) {
    log_rec origin = {.dir = LOG_ORIGIN, .enq_ns = t0};
    log_add(&origin);
  }
  struct pollfd fds[2] = {{down.in_fd, POLLIN, 0}, {up.in_fd, POLLIN, 0}};
  path *paths[2] = {&down, &up};
  while (!stop) {
    uint64_t t = now_ns();
    for (int i = 0; i < 2; i++) {
      /* keep opportunities in step with the clock even when idle (they are wasted then) */
      if (paths[i]->trace_n && !paths[i]->queue.head)
        while (paths[i]->next_opp_ns + 1000000000ULL < t) next_opportunity(paths[i]);
      serve(paths[i], t);
      deliver(paths[i], t);
    }
    uint64_t e = next_event(&down), e2 = next_event(&up);
    if (e2 < e) e = e2;
    t = now_ns();
    struct timespec to;
    uint64_t wait = e == UINT64_MAX ? 100000000ULL : (e > t ? e - t : 0);
    to.tv_sec = wait / 1000000000ULL;
    to.tv_nsec = wait % 1000000000ULL;
    int n = ppoll(fds, 2, &to, NULL);
    if (n < 0 && errno != EINTR) { perror("linkem: ppoll"); break; }
    t = now_ns();
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & POLLIN)) continue;
      for (int k = 0; k < 64; k++) {
        pkt *p = pkt_alloc();
        ssize_t len = read(fds[i].fd, p->data, MTU_BUF);
        if (len <= 0) { pkt_free(p); break; }
        p->len = (uint16_t)len;
        if (paths[i]->trace_n && !paths[i]->queue.head && paths[i]->next_opp_ns < t) {
          /* an idle link's missed opportunities are gone; the next one is in the future */
          while (paths[i]->next_opp_ns < t) next_opportunity(paths[i]);
        }
        enqueue(paths[i], p, t);
      }
    }
  }
  if (logf) {
    log_flush();
    fclose(logf);
  }
  return 0;
}
