/*
 * pf-tcptrace: load the per-ACK tracer (pf_tcptrace.bpf.c, compiled at run time against this
 * kernel), attach it, and print one CSV line per ACK until SIGINT or SIGTERM:
 *   t_ns,sport,dport,ca,cwnd,ssthresh,srtt_us,mss,delivered,rate_delivered,rate_interval_us
 * after a first line "ready". libbpf directly: bcc compiles its programs against the running
 * kernel's headers, which this host does not have (docs/testbed.md).
 *
 *   pf-tcptrace OBJ NETNS_INODE PORT_LO PORT_HI
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pf_ack {
  uint64_t t_ns;
  uint64_t delivered;
  uint32_t cwnd, ssthresh, srtt_us, mss;
  uint32_t rate_delivered, rate_interval_us;
  uint16_t sport, dport;
  char ca[16];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap) {
  return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static int on_ack(void *ctx, void *data, size_t size) {
  (void)ctx;
  if (size < sizeof(struct pf_ack)) return 0;
  const struct pf_ack *a = data;
  char ca[17];
  memcpy(ca, a->ca, 16);
  ca[16] = 0;
  printf("%llu,%u,%u,%s,%u,%u,%u,%u,%llu,%u,%u\n", (unsigned long long)a->t_ns, a->sport, a->dport, ca, a->cwnd,
         a->ssthresh, a->srtt_us, a->mss, (unsigned long long)a->delivered, a->rate_delivered, a->rate_interval_us);
  return 0;
}

static unsigned long long number(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || end == s) {
    fprintf(stderr, "pf-tcptrace: %s must be a number, got '%s'\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: pf-tcptrace OBJ NETNS_INODE PORT_LO PORT_HI\n");
    return 2;
  }
  uint64_t cfg[3] = {number(argv[2], "NETNS_INODE"), number(argv[3], "PORT_LO"), number(argv[4], "PORT_HI")};
  libbpf_set_print(print_libbpf);
  struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
  if (!obj || libbpf_get_error(obj)) {
    fprintf(stderr, "pf-tcptrace: cannot open %s\n", argv[1]);
    return 1;
  }
  if (bpf_object__load(obj)) {
    fprintf(stderr, "pf-tcptrace: the kernel refused the tracer (see above)\n");
    return 1;
  }
  int cfg_fd = bpf_object__find_map_fd_by_name(obj, "pf_config");
  for (uint32_t k = 0; k < 3; k++) {
    if (bpf_map_update_elem(cfg_fd, &k, &cfg[k], BPF_ANY)) {
      fprintf(stderr, "pf-tcptrace: cannot configure the tracer: %s\n", strerror(errno));
      return 1;
    }
  }
  struct bpf_program *prog = bpf_object__find_program_by_name(obj, "pf_on_probe");
  struct bpf_link *link = prog ? bpf_program__attach(prog) : NULL;
  if (!link || libbpf_get_error(link)) {
    fprintf(stderr, "pf-tcptrace: cannot attach to tcp:tcp_probe\n");
    return 1;
  }
  struct ring_buffer *rb = ring_buffer__new(bpf_object__find_map_fd_by_name(obj, "pf_acks"), on_ack, NULL, NULL);
  if (!rb) {
    fprintf(stderr, "pf-tcptrace: cannot open the ring buffer\n");
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  printf("ready\n");
  fflush(stdout);
  while (!stop) {
    int n = ring_buffer__poll(rb, 100);
    if (n < 0 && n != -EINTR) break;
  }
  ring_buffer__consume(rb);  /* what arrived before the signal */
  fflush(stdout);
  ring_buffer__free(rb);
  bpf_link__destroy(link);
  bpf_object__close(obj);
  return 0;
}
