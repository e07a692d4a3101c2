/* tests/bench/policy — what a policy costs: evaluations per second of the
 * 50-line tests/bench/policy/bench.lua on the warm path (compiled once,
 * evaluated many times, each in a fresh sandbox, as the server does), and
 * beside it the same with a compile on every evaluation (the cold path)
 * and an empty hook (the sandbox alone).
 *
 *   bench_policy [--seconds S]     (default 1 per figure)
 *
 * Figures only: nothing is asserted on timing. Exit 1 when the policy does
 * not decide as expected (it must warn and set, and not deny). The
 * added latency on a workspace create, beside a create without policies,
 * is measured through the API once the policies are wired in. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 16);
  *len = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  if (buf)
    buf[*len] = '\0';
  return buf;
}

typedef struct bench {
  const char *text;
  size_t len;
  atr_policy_t *warm;
  json_t *input;
} bench_t;

/* One evaluation; cold: compile first. 0 when the decision is right. */
static int once(bench_t *b, const atr_policy_t *p, bool cold, bool expect) {
  atr_policy_t *fresh = NULL;
  if (cold &&
      atr_policy_load("bench.lua", b->text, b->len, NULL, &fresh, NULL) != 0)
    return 1;
  atr_decision_t d;
  int rc =
      atr_policy_eval(cold ? fresh : p, "workspace_create", b->input, NULL, &d);
  if (rc == 0 && expect &&
      (d.ndenies != 0 || d.nwarnings != 1 ||
       !atr_decision_get_set(&d, "memory")))
    rc = 1;
  atr_decision_clear(&d);
  atr_policy_unref(fresh);
  return rc;
}

static int measure(const char *what, bench_t *b, const atr_policy_t *p,
                   bool cold, bool expect, double seconds) {
  size_t cap = 1 << 20, n = 0;
  double *lat = malloc(cap * sizeof *lat);
  if (!lat)
    return 1;
  double start = now_s(), end = start + seconds;
  double t = start;
  while (t < end && n < cap) {
    if (once(b, p, cold, expect) != 0) {
      fprintf(stderr, "bench_policy: %s: unexpected decision\n", what);
      free(lat);
      return 1;
    }
    double t2 = now_s();
    lat[n++] = t2 - t;
    t = t2;
  }
  qsort(lat, n, sizeof *lat, cmp_double);
  printf("%-34s %9.0f evaluations/s   p50 %6.1f us   p99 %6.1f us\n", what,
         (double)n / (t - start), lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
  free(lat);
  return 0;
}

int main(int argc, char **argv) {
  double seconds = 1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      seconds = atof(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_policy [--seconds S]\n");
      return 2;
    }
  }
  bench_t b = {0};
  char *text = read_file(ATR_BENCH_POLICY, &b.len);
  b.text = text;
  b.input = json_pack(
      "{s:{s:s, s:s, s:[s], s:[s, s]}, s:{s:s}, s:{s:s, s:s}, s:{s:s},"
      " s:s, s:{s:n, s:{s:s, s:s, s:s}}}",
      "user", "name", "alice", "email", "alice@example.com", "roles", "member",
      "groups", "dev", "gpu-users", "organization", "name", "default",
      "template", "id", "7d1c", "name", "docker-dev", "workspace", "name",
      "alice-dev", "transition", "start", "parameters", "old", "new", "cpus",
      "8", "memory", "128", "image", "ubuntu:24.04");
  char *err = NULL;
  atr_policy_t *empty = NULL;
  static const char empty_text[] = "function workspace_create(input) end\n";
  if (!text || !b.input ||
      atr_policy_load("bench.lua", b.text, b.len, NULL, &b.warm, &err) != 0 ||
      atr_policy_load("empty.lua", empty_text, sizeof empty_text - 1, NULL,
                      &empty, &err) != 0) {
    fprintf(stderr, "bench_policy: %s\n", err ? err : "set-up failed");
    return 1;
  }
  printf("policy: %s (50 lines), hook workspace_create, %.1f s each\n",
         ATR_BENCH_POLICY, seconds);
  int rc = measure("warm (compiled once)", &b, b.warm, false, true, seconds);
  if (rc == 0)
    rc = measure("cold (compile + evaluate)", &b, NULL, true, true, seconds);
  if (rc == 0)
    rc = measure("empty hook (the sandbox alone)", &b, empty, false, false,
                 seconds);
  atr_policy_unref(b.warm);
  atr_policy_unref(empty);
  json_decref(b.input);
  free(text);
  return rc;
}
