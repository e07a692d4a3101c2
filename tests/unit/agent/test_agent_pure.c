/* tests/unit/agent/test_agent_pure.c — the agent's pure parts: env files,
 * line splitting, UTF-8 repair, /proc/net/tcp, stats from a fixture
 * directory, health-check URLs, metadata values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_apps.h"
#include "agent_envfile.h"
#include "agent_lines.h"
#include "agent_metadata.h"
#include "agent_stats.h"
#include "agent_util.h"
#include "atrium/error.h"

static void test_envfile_parse(void **state) {
  (void)state;
  const char *text = "# made by echo\n"
                     "\n"
                     "export ATRIUM_AGENT_URL=http://127.0.0.1:3000\r\n"
                     "  ATRIUM_AGENT_TOKEN = 'atragt_abc'  \n"
                     "OTHER=ignored\n";
  agent_envfile_t e;
  char *err = NULL;
  assert_int_equal(agent_envfile_parse(text, strlen(text), &e, &err), 0);
  assert_string_equal(e.url, "http://127.0.0.1:3000");
  assert_string_equal(e.token, "atragt_abc");
  agent_envfile_free(&e);

  const char *bad = "ATRIUM_AGENT_URL=x\nATRIUM_AGENT_TOKEN\n";
  assert_int_equal(agent_envfile_parse(bad, strlen(bad), &e, &err), ATR_EINVAL);
  assert_string_equal(err, "line 2: expected KEY=VALUE");
  free(err);
  /* a message never quotes a value */
  const char *nul = "ATRIUM_AGENT_TOKEN=sec\0ret\n";
  err = NULL;
  assert_int_equal(agent_envfile_parse(nul, 27, &e, &err), ATR_EINVAL);
  assert_null(strstr(err, "sec"));
  free(err);
}

static void test_envfile_mode(void **state) {
  (void)state;
  char path[] = "/tmp/atrium-agent-envXXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "ATRIUM_AGENT_URL=http://h\nATRIUM_AGENT_TOKEN=t0k\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  agent_envfile_t e;
  char *err = NULL;
  chmod(path, 0640);
  assert_int_equal(agent_envfile_load(path, &e, &err), ATR_EACCES);
  assert_non_null(strstr(err, "chmod 600"));
  assert_null(strstr(err, "t0k"));
  free(err);
  chmod(path, 0600);
  assert_int_equal(agent_envfile_load(path, &e, &err), 0);
  assert_string_equal(e.token, "t0k");
  agent_envfile_free(&e);
  unlink(path);
}

typedef struct collected {
  char lines[8][64];
  size_t len[8];
  size_t n;
} collected_t;

static void collect(void *ud, const char *line, size_t len) {
  collected_t *c = ud;
  if (c->n < 8) {
    c->len[c->n] = len;
    snprintf(c->lines[c->n], sizeof c->lines[0], "%.*s",
             (int)(len < 63 ? len : 63), line);
  }
  c->n++;
}

static void test_lines(void **state) {
  (void)state;
  agent_lines_t l = {0};
  collected_t c = {0};
  agent_lines_feed(&l, "hel", 3, collect, &c);
  assert_int_equal(c.n, 0);
  agent_lines_feed(&l, "lo\r\nwor", 7, collect, &c);
  assert_int_equal(c.n, 1);
  assert_string_equal(c.lines[0], "hello");
  agent_lines_feed(&l, "ld\n\nlast", 8, collect, &c);
  assert_int_equal(c.n, 3);
  assert_string_equal(c.lines[1], "world");
  assert_int_equal(c.len[2], 0);
  agent_lines_flush(&l, collect, &c);
  assert_int_equal(c.n, 4);
  assert_string_equal(c.lines[3], "last");
  /* a line without a newline is cut at AGENT_LINE_MAX */
  size_t big = AGENT_LINE_MAX * 2 + 10;
  char *data = malloc(big);
  memset(data, 'x', big);
  collected_t d = {0};
  agent_lines_feed(&l, data, big, collect, &d);
  agent_lines_flush(&l, collect, &d);
  assert_int_equal(d.n, 3);
  assert_int_equal(d.len[0], AGENT_LINE_MAX);
  assert_int_equal(d.len[1], AGENT_LINE_MAX);
  assert_int_equal(d.len[2], 10);
  free(data);
  agent_lines_free(&l);
}

static void test_utf8_repair(void **state) {
  (void)state;
  size_t n;
  char *s = agent_utf8_repair("a\xff"
                              "b\0c\xc3\xa9",
                              7, &n);
  assert_string_equal(s, "a\xef\xbf\xbd"
                         "b\xef\xbf\xbd"
                         "c\xc3\xa9");
  assert_int_equal(n, strlen(s));
  free(s);
  s = agent_utf8_repair("\xe2\x82", 2, &n); /* cut short */
  assert_string_equal(s, "\xef\xbf\xbd\xef\xbf\xbd");
  free(s);
}

static const char tcp_fixture[] =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
    "retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n"
    "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000     0        0 17 1 0000000000000000 100 0 0 10 0\n"
    "   2: 0100007F:0CEA 0100007F:9C40 01 00000000:00000000 00:00000000 "
    "00000000  1000        0 999 1 0000000000000000 20 4 30 10 -1\n";

static const char tcp6_fixture[] =
    "  sl  local_address                         remote_address           "
    "              st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
    "inode\n"
    "   0: 00000000000000000000000000000000:0016 "
    "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000     0        0 18 1 0000000000000000 100 0 0 10 0\n"
    "   1: 00000000000000000000000001000000:3415 "
    "00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 "
    "00000000  1000        0 77 1 0000000000000000 100 0 0 10 0\n";

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void test_ports(void **state) {
  (void)state;
  agent_port_t p[AGENT_PORTS_MAX];
  size_t n = agent_ports_parse(tcp_fixture, strlen(tcp_fixture), p, 0,
                               AGENT_PORTS_MAX);
  assert_int_equal(n, 2); /* the established socket is not listening */
  assert_int_equal(p[0].port, 3306);
  assert_int_equal(p[0].inode, 4242);
  assert_int_equal(p[1].port, 22);
  /* tcp6 adds 13333 and not 22 twice */
  n = agent_ports_parse(tcp6_fixture, strlen(tcp6_fixture), p, n,
                        AGENT_PORTS_MAX);
  assert_int_equal(n, 3);
  assert_int_equal(p[2].port, 13333);
  /* bounded */
  assert_int_equal(agent_ports_parse(tcp_fixture, strlen(tcp_fixture), p, 0, 1),
                   1);
  /* from a fixture /proc: sorted */
  char dir[] = "/tmp/atrium-agent-procXXXXXX";
  assert_non_null(mkdtemp(dir));
  char net[600];
  snprintf(net, sizeof net, "%s/net", dir);
  mkdir(net, 0700);
  write_file(net, "tcp", tcp_fixture);
  write_file(net, "tcp6", tcp6_fixture);
  n = agent_ports_read(dir, p, AGENT_PORTS_MAX);
  assert_int_equal(n, 3);
  assert_int_equal(p[0].port, 22);
  assert_int_equal(p[1].port, 3306);
  assert_int_equal(p[2].port, 13333);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_stats(void **state) {
  (void)state;
  char cg[] = "/tmp/atrium-agent-cgXXXXXX",
       proc[] = "/tmp/atrium-agent-prXXXXXX";
  assert_non_null(mkdtemp(cg));
  assert_non_null(mkdtemp(proc));
  write_file(proc, "stat",
             "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0\n"
             "cpu1 50 0 50 350 50 0 0 0\nintr 1\n");
  write_file(proc, "meminfo",
             "MemTotal:        1000 kB\nMemFree:  100 kB\n"
             "MemAvailable:     250 kB\n");
  /* no cgroup files: /proc */
  agent_cpu_sample_t a, b;
  assert_int_equal(agent_cpu_sample(cg, proc, 0, &a), 0);
  assert_false(a.cgroup);
  assert_int_equal(a.busy_us, 200);
  assert_true(agent_cpu_cores_total(cg, proc) == 2.0);
  int64_t used, total;
  assert_int_equal(agent_memory(cg, proc, &used, &total), 0);
  assert_int_equal(used, 750 * 1024);
  assert_int_equal(total, 1000 * 1024);
  write_file(proc, "stat", "cpu  200 0 200 800 100 0 0 0 0 0\ncpu0 1\n");
  assert_int_equal(agent_cpu_sample(cg, proc, 0, &b), 0);
  /* 200 busy of 300 ticks, on 2 cores */
  double u = agent_cpu_cores_used(&a, &b, 2);
  assert_true(u > 1.33 && u < 1.34);
  /* cgroup v2 files win */
  write_file(cg, "cpu.stat", "usage_usec 1000000\nuser_usec 1\n");
  write_file(cg, "cpu.max", "150000 100000\n");
  write_file(cg, "memory.current", "4096\n");
  write_file(cg, "memory.max", "max\n");
  assert_int_equal(agent_cpu_sample(cg, proc, 1000000, &a), 0);
  assert_true(a.cgroup);
  write_file(cg, "cpu.stat", "usage_usec 1500000\n");
  assert_int_equal(agent_cpu_sample(cg, proc, 2000000, &b), 0);
  u = agent_cpu_cores_used(&a, &b, 1.5);
  assert_true(u > 0.49 && u < 0.51);
  assert_true(agent_cpu_cores_total(cg, proc) == 1.5);
  assert_int_equal(agent_memory(cg, proc, &used, &total), 0);
  assert_int_equal(used, 4096);
  assert_int_equal(total, 1000 * 1024); /* "max": the machine's */
  write_file(cg, "memory.max", "8192\n");
  assert_int_equal(agent_memory(cg, proc, &used, &total), 0);
  assert_int_equal(total, 8192);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s %s", cg, proc);
  assert_int_equal(system(cmd), 0);
}

static void test_url_split(void **state) {
  (void)state;
  char h[64], p[8], path[64];
  assert_int_equal(
      agent_url_split("http://localhost:13337/healthz", h, 64, p, 8, path, 64),
      0);
  assert_string_equal(h, "localhost");
  assert_string_equal(p, "13337");
  assert_string_equal(path, "/healthz");
  assert_int_equal(agent_url_split("http://[::1]", h, 64, p, 8, path, 64), 0);
  assert_string_equal(h, "::1");
  assert_string_equal(p, "80");
  assert_string_equal(path, "/");
  assert_int_equal(agent_url_split("https://x/", h, 64, p, 8, path, 64),
                   ATR_EINVAL);
  assert_int_equal(agent_url_split("http://x:8a/", h, 64, p, 8, path, 64),
                   ATR_EINVAL);
  assert_int_equal(agent_url_split("http://:80/", h, 64, p, 8, path, 64),
                   ATR_EINVAL);
}

static void test_metadata_value(void **state) {
  (void)state;
  char buf[AGENT_METADATA_MAX + 1];
  size_t len = 0;
  agent_metadata_append(buf, &len, "0.10 0.20", 9);
  agent_metadata_append(buf, &len, "second", 6);
  assert_string_equal(buf, "0.10 0.20\nsecond");
  char big[4000];
  memset(big, 'y', sizeof big);
  agent_metadata_append(buf, &len, big, sizeof big);
  assert_int_equal(len, AGENT_METADATA_MAX);
  assert_int_equal(strlen(buf), AGENT_METADATA_MAX);
  agent_metadata_append(buf, &len, "more", 4);
  assert_int_equal(len, AGENT_METADATA_MAX);
}

static void test_time_format(void **state) {
  (void)state;
  char buf[40];
  agent_time_format(1796680310123456LL, buf, sizeof buf);
  assert_string_equal(buf, "2026-12-07T21:51:50.123456Z");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envfile_parse),
      cmocka_unit_test(test_envfile_mode),
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_utf8_repair),
      cmocka_unit_test(test_ports),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_url_split),
      cmocka_unit_test(test_metadata_value),
      cmocka_unit_test(test_time_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
