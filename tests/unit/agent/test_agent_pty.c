/* tests/unit/agent/test_agent_pty.c — the web terminal's far end
 * (core/agent/agent_pty.h): real shells on real PTYs, driven through a
 * socketpair as the tunnel would. Every wait runs the loop until what is
 * awaited is seen, with a bound; nothing sleeps and then asserts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/sockios.h>

#include "agent_pty.h"
#include "agent_pty_internal.h"
#include "agent_util.h"

#define ID1 "0b5e2a4c-1f43-4d7e-9a51-7c2d9e8f6a10"
#define ID2 "7d1c3b2a-9e8f-4a6b-8c5d-4e3f2a1b0c9d"
#define BOUND_MS 10000

typedef struct client {
  int fd;
  char *buf;
  size_t len, cap;
  bool eof;
} client_t;

typedef struct fx {
  uv_loop_t loop;
  uv_timer_t tick;
  agent_pty_t *p;
  bool freed;
} fx_t;

static void on_tick(uv_timer_t *t) {
  (void)t; /* only makes UV_RUN_ONCE return now and then */
}

static fx_t *fx_new(int64_t idle_ms) {
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, on_tick, 5, 5);
  const char *env[] = {"ATRIUM_PTY_TEST=from-config", NULL};
  agent_pty_config_t cfg = {
      .directory = "/tmp", .env = env, .shell = "/bin/sh", .idle_ms = idle_ms};
  f->p = agent_pty_new(&f->loop, &cfg);
  assert_non_null(f->p);
  return f;
}

static void on_freed(void *ud) {
  ((fx_t *)ud)->freed = true;
}

/* Frees the PTYs, then checks the loop closes with nothing left open. */
static void fx_free(fx_t *f) {
  agent_pty_free(f->p, on_freed, f);
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->freed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
}

static void client_read(client_t *c) {
  for (;;) {
    if (c->cap - c->len < 65536) {
      c->cap = c->cap ? c->cap * 2 : 65536;
      c->buf = realloc(c->buf, c->cap + 1);
      assert_non_null(c->buf);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
    if (n > 0) {
      c->len += (size_t)n;
      c->buf[c->len] = '\0';
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      c->eof = true;
    return;
  }
}

static bool client_has(client_t *c, const char *needle) {
  return c->buf && memmem(c->buf, c->len, needle, strlen(needle)) != NULL;
}

typedef bool (*cond_fn)(fx_t *f, void *ud);

static bool run_until(fx_t *f, cond_fn cond, void *ud) {
  uint64_t deadline = uv_now(&f->loop) + BOUND_MS;
  while (!cond(f, ud)) {
    if (uv_now(&f->loop) > deadline)
      return false;
    uv_run(&f->loop, UV_RUN_ONCE);
  }
  return true;
}

typedef struct seen {
  client_t *c;
  const char *needle;
} seen_t;

static bool cond_seen(fx_t *f, void *ud) {
  (void)f;
  seen_t *s = ud;
  client_read(s->c);
  return client_has(s->c, s->needle);
}

static void wait_seen(fx_t *f, client_t *c, const char *needle) {
  seen_t s = {c, needle};
  if (!run_until(f, cond_seen, &s))
    fail_msg("never saw \"%s\"; got: %.*s", needle, (int)c->len,
             c->buf ? c->buf : "");
}

static bool cond_eof(fx_t *f, void *ud) {
  (void)f;
  client_read(ud);
  return ((client_t *)ud)->eof;
}

static bool cond_count0(fx_t *f, void *ud) {
  (void)ud;
  return agent_pty_count(f->p) == 0;
}

static bool cond_sent(fx_t *f, void *ud) {
  (void)f;
  int outq = -1;
  assert_int_equal(ioctl(*(int *)ud, SIOCOUTQ, &outq), 0);
  return outq == 0;
}

/* Attaches a new socketpair to id; the test keeps the other end. */
static client_t *attach(fx_t *f, const char *id, int w, int h,
                        const char *command) {
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  client_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  c->fd = sv[0];
  assert_int_equal(agent_pty_attach(f->p, sv[1], id, w, h, command), 0);
  return c;
}

static void client_free(client_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  free(c->buf);
  free(c);
}

/* Writes s, then runs the loop until the agent has read all of it. */
static void send_str(fx_t *f, client_t *c, const char *s) {
  size_t n = strlen(s);
  assert_int_equal(write(c->fd, s, n), (ssize_t)n);
  assert_true(run_until(f, cond_sent, &c->fd));
}

static void test_echo_answers_42(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  assert_int_equal(agent_pty_count(f->p), 1);
  send_str(f, c, "{\"data\":\"echo $((6*7))\\r\"}");
  wait_seen(f, c, "42\r\n");
  /* the environment: TERM and the configuration's variables */
  send_str(f, c, "{\"data\":\"echo T=$TERM V=$ATRIUM_PTY_TEST D=$(pwd)\\r\"}");
  wait_seen(f, c, "T=xterm-256color V=from-config D=/tmp");
  client_free(c);
  fx_free(f);
}

static void test_object_split_across_writes(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  /* the cut falls inside a key, then inside an escape */
  send_str(f, c, "{\"da");
  send_str(f, c, "ta\":\"echo sp\\");
  send_str(f, c, "u006cit$((1+1))\\r\"}");
  wait_seen(f, c, "split2");
  client_free(c);
  fx_free(f);
}

static void test_two_objects_in_one_write(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"A=41\\r\"}\n {\"data\":\"echo two$((A+1))\\r\"}");
  wait_seen(f, c, "two42");
  client_free(c);
  fx_free(f);
}

static void test_resize_reaches_stty(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"stty size\\r\"}");
  wait_seen(f, c, "24 80");
  send_str(f, c, "{\"width\":123,\"height\":45}{\"data\":\"stty size\\r\"}");
  wait_seen(f, c, "45 123");
  /* one dimension alone keeps the other; 0 is one left out (Coder) */
  send_str(f, c, "{\"height\":50,\"width\":0}{\"data\":\"stty size\\r\"}");
  wait_seen(f, c, "50 123");
  client_free(c);
  fx_free(f);
}

static bool cond_detached(fx_t *f, void *ud) {
  return !agent__pty_attached(f->p, ud);
}

static void test_reconnect_keeps_shell_and_scrollback(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"X=5; echo $((6*7))\\r\"}");
  wait_seen(f, c, "42\r\n");
  client_free(c);
  assert_true(run_until(f, cond_detached, (void *)ID1));
  assert_int_equal(agent_pty_count(f->p), 1);

  c = attach(f, ID1, 80, 24, NULL);
  /* the scrollback comes before anything is sent */
  wait_seen(f, c, "42\r\n");
  send_str(f, c, "{\"data\":\"echo X=$X\\r\"}");
  wait_seen(f, c, "X=5");
  assert_int_equal(agent_pty_count(f->p), 1);

  /* a second id is another shell, without X */
  client_t *d = attach(f, ID2, 80, 24, NULL);
  assert_int_equal(agent_pty_count(f->p), 2);
  send_str(f, d, "{\"data\":\"echo other-X=$X.\\r\"}");
  wait_seen(f, d, "other-X=.");
  assert_false(client_has(d, "42"));
  client_free(d);
  client_free(c);
  fx_free(f);
}

static void test_newer_connection_replaces_older(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *a = attach(f, ID1, 80, 24, NULL);
  send_str(f, a, "{\"data\":\"echo first$((1+1))\\r\"}");
  wait_seen(f, a, "first2");
  client_t *b = attach(f, ID1, 80, 24, NULL);
  assert_true(run_until(f, cond_eof, a));
  wait_seen(f, b, "first2");
  send_str(f, b, "{\"data\":\"echo second$((1+1))\\r\"}");
  wait_seen(f, b, "second2");
  assert_false(client_has(a, "second2"));
  client_free(a);
  client_free(b);
  fx_free(f);
}

static void test_command_exit_ends_pty(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, "echo bye$((1+2)); exit 3");
  assert_true(run_until(f, cond_eof, c));
  assert_true(client_has(c, "bye3"));
  assert_true(run_until(f, cond_count0, NULL));
  client_free(c);
  /* the id is free again: a new shell, without the old output */
  c = attach(f, ID1, 80, 24, NULL);
  assert_int_equal(agent_pty_count(f->p), 1);
  send_str(f, c, "{\"data\":\"echo again$((1+1))\\r\"}");
  wait_seen(f, c, "again2");
  assert_false(client_has(c, "bye3"));
  client_free(c);
  fx_free(f);
}

static void test_shell_exit_sends_last_output(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"echo last$((2+2)); exit\\r\"}");
  assert_true(run_until(f, cond_eof, c));
  assert_true(client_has(c, "last4"));
  assert_true(run_until(f, cond_count0, NULL));
  client_free(c);
  fx_free(f);
}

static void test_garbage_closes_connection_not_pty(void **state) {
  (void)state;
  const char *bad[] = {
      "not json",          "[1,2]",
      "{\"data\":42}",     "{\"width\":-1}",
      "{\"height\":1001}", "{\"data\":\"\"}}",
  };
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"Y=7; echo $((6*7))\\r\"}");
  wait_seen(f, c, "42\r\n");
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(write(c->fd, bad[i], strlen(bad[i])),
                     (ssize_t)strlen(bad[i]));
    if (!run_until(f, cond_eof, c))
      fail_msg("\"%s\" did not close the connection", bad[i]);
    assert_int_equal(agent_pty_count(f->p), 1);
    client_free(c);
    c = attach(f, ID1, 80, 24, NULL);
    wait_seen(f, c, "42\r\n"); /* the scrollback */
  }
  send_str(f, c, "{\"data\":\"echo Y=$Y\\r\"}");
  wait_seen(f, c, "Y=7");
  client_free(c);
  fx_free(f);
}

static void test_oversized_object_closes_connection(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  /* an object that never ends: cut off past 64 KiB */
  assert_int_equal(write(c->fd, "{\"data\":\"", 9), 9);
  char chunk[4096];
  memset(chunk, 'a', sizeof chunk);
  size_t sent = 9;
  while (!c->eof && sent < 200 * 1024) {
    ssize_t n = send(c->fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0)
      sent += (size_t)n;
    uv_run(&f->loop, UV_RUN_NOWAIT);
    client_read(c);
  }
  assert_true(run_until(f, cond_eof, c));
  assert_true(sent > AGENT_PTY_MAX_OBJECT);
  assert_int_equal(agent_pty_count(f->p), 1);
  client_free(c);
  fx_free(f);
}

static void test_idle_timeout_ends_pty(void **state) {
  (void)state;
  fx_t *f = fx_new(100);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"echo $((6*7))\\r\"}");
  wait_seen(f, c, "42\r\n");
  /* attached, it outlives idle_ms many times over */
  uint64_t until = uv_now(&f->loop) + 500;
  while (uv_now(&f->loop) < until)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(agent_pty_count(f->p), 1);
  client_free(c);
  assert_true(run_until(f, cond_count0, NULL));
  fx_free(f);
}

static bool cond_paused(fx_t *f, void *ud) {
  return agent__pty_paused(f->p, ud);
}

/* Lines ending in "y" (the prompt may come before the first). */
static size_t count_y(const client_t *c) {
  size_t n = 0;
  for (size_t i = 0; i + 2 < c->len; i++)
    n += memcmp(c->buf + i, "y\r\n", 3) == 0;
  return n;
}

static void test_slow_connection_pauses_the_shell(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  /* 1.5 million "y" lines; the client reads nothing for now */
  send_str(f, c,
           "{\"data\":\"stty -echo; yes | head -n 1500000; "
           "echo E$((1+1))N\\r\"}");
  assert_true(run_until(f, cond_paused, (void *)ID1));
  assert_true(agent__pty_attached(f->p, ID1));
  /* then everything arrives, nothing dropped */
  wait_seen(f, c, "E2N");
  assert_int_equal(count_y(c), 1500000);
  assert_false(agent__pty_paused(f->p, ID1));
  client_free(c);
  fx_free(f);
}

static void test_stalled_connection_is_dropped(void **state) {
  (void)state;
  setenv("ATRIUM_AGENT_PTY_STALL", "200ms", 1);
  fx_t *f = fx_new(0);
  unsetenv("ATRIUM_AGENT_PTY_STALL");
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"stty -echo; yes\\r\"}");
  assert_true(run_until(f, cond_paused, (void *)ID1));
  /* it never reads: dropped, and the shell runs on into the scrollback */
  assert_true(run_until(f, cond_detached, (void *)ID1));
  assert_false(agent__pty_paused(f->p, ID1));
  assert_int_equal(agent_pty_count(f->p), 1);
  client_free(c);
  c = attach(f, ID1, 80, 24, NULL);
  wait_seen(f, c, "y\r\ny\r\n");
  client_free(c);
  fx_free(f);
}

static bool cond_hung_up(fx_t *f, void *ud) {
  (void)f;
  struct pollfd pf = {.fd = *(int *)ud, .events = POLLRDHUP};
  return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP));
}

static void test_unread_last_output_is_let_go(void **state) {
  (void)state;
  setenv("ATRIUM_AGENT_PTY_STALL", "200ms", 1);
  fx_t *f = fx_new(0);
  unsetenv("ATRIUM_AGENT_PTY_STALL");
  /* 600 kB: more than the socket holds, less than what pauses the shell */
  client_t *c = attach(f, ID1, 80, 24,
                       "head -c 600000 /dev/zero | tr '\\0' y; echo; exit");
  assert_true(run_until(f, cond_count0, NULL));
  /* the client reads nothing: the agent lets the connection go anyway */
  assert_true(run_until(f, cond_hung_up, &c->fd));
  assert_true(run_until(f, cond_eof, c));
  assert_true(c->len < 600000);
  client_free(c);
  fx_free(f);
}

static void test_attach_refuses_bad_arguments(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  struct {
    const char *id;
    int w, h;
  } bad[] = {
      {"not-a-uuid", 80, 24},
      {"0b5e2a4c-1f43-4d7e-9a51-7c2d9e8f6a1", 80, 24},
      {"0b5e2a4c_1f43-4d7e-9a51-7c2d9e8f6a10", 80, 24},
      {"0b5e2a4c-1f43-4d7e-9a51-7c2d9e8f6a1g", 80, 24},
      {NULL, 80, 24},
      {ID1, 0, 24},
      {ID1, 80, 1001},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(
        agent_pty_attach(f->p, sv[1], bad[i].id, bad[i].w, bad[i].h, NULL), -1);
    /* the fd was closed: the other end sees EOF */
    char b;
    assert_int_equal(read(sv[0], &b, 1), 0);
    close(sv[0]);
  }
  assert_int_equal(agent_pty_count(f->p), 0);
  fx_free(f);
}

static void test_free_ends_live_shells(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  client_t *a = attach(f, ID1, 80, 24, NULL);
  client_t *b = attach(f, ID2, 80, 24, "sleep 1000");
  send_str(f, a, "{\"data\":\"echo $((6*7))\\r\"}");
  wait_seen(f, a, "42\r\n");
  assert_int_equal(agent_pty_count(f->p), 2);
  fx_free(f); /* returns only once both were reaped and closed */
  client_read(a);
  client_read(b);
  assert_true(a->eof);
  assert_true(b->eof);
  client_free(a);
  client_free(b);
}

/* --- the scanner alone ----------------------------------------------- */

typedef struct got {
  int n;
  char data[8][64];
} got_t;

static int on_obj(void *ud, json_t *obj) {
  got_t *g = ud;
  agent_pty_request_t r;
  const char *err;
  assert_int_equal(agent__pty_request_parse(obj, &r, &err), 0);
  assert_true(g->n < 8);
  snprintf(g->data[g->n++], 64, "%.*s", (int)r.data_len, r.data ? r.data : "");
  return 0;
}

static void test_scanner_any_cut(void **state) {
  (void)state;
  const char *in =
      " {\"data\":\"a}\\\"{b\"} {\"data\":\"[c\",\"x\":{\"y\":[1,{}]}}"
      "\n{\"width\":3}";
  size_t n = strlen(in);
  for (size_t cut = 0; cut <= n; cut++) {
    agent_pty_scanner_t sc = {0};
    got_t g = {0};
    const char *err = NULL;
    assert_int_equal(agent__pty_scan_feed(&sc, in, cut, on_obj, &g, &err), 0);
    assert_int_equal(
        agent__pty_scan_feed(&sc, in + cut, n - cut, on_obj, &g, &err), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.data[0], "a}\"{b");
    assert_string_equal(g.data[1], "[c");
    assert_string_equal(g.data[2], "");
    agent__pty_scan_free(&sc);
  }
  /* one byte at a time */
  agent_pty_scanner_t sc = {0};
  got_t g = {0};
  const char *err = NULL;
  for (size_t i = 0; i < n; i++)
    assert_int_equal(agent__pty_scan_feed(&sc, in + i, 1, on_obj, &g, &err), 0);
  assert_int_equal(g.n, 3);
  agent__pty_scan_free(&sc);
}

static void test_scanner_refuses(void **state) {
  (void)state;
  struct {
    const char *in, *err;
  } bad[] = {
      {"x", "the terminal input is not a stream of JSON objects"},
      {"{} ]", "the terminal input is not a stream of JSON objects"},
      {"{\"a\":}", "the terminal input is not a stream of JSON objects"},
      {"{\"a\":1]", "the terminal input is not a stream of JSON objects"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    agent_pty_scanner_t sc = {0};
    got_t g = {0};
    const char *err = NULL;
    assert_int_equal(agent__pty_scan_feed(&sc, bad[i].in, strlen(bad[i].in),
                                          on_obj, &g, &err),
                     -1);
    assert_string_equal(err, bad[i].err);
    agent__pty_scan_free(&sc);
  }
  agent_pty_scanner_t sc = {0};
  got_t g = {0};
  const char *err = NULL;
  char *big = malloc(AGENT_PTY_MAX_OBJECT + 2);
  memset(big, ' ', AGENT_PTY_MAX_OBJECT + 1);
  big[0] = '{';
  big[AGENT_PTY_MAX_OBJECT + 1] = '\0';
  assert_int_equal(agent__pty_scan_feed(&sc, big, AGENT_PTY_MAX_OBJECT + 1,
                                        on_obj, &g, &err),
                   -1);
  assert_string_equal(err, "a terminal input object is longer than 64 KiB");
  agent__pty_scan_free(&sc);
  free(big);

  const char *fields[][2] = {
      {"{\"data\":1}", "data must be a string"},
      {"{\"width\":\"80\"}", "width must be an integer from 1 to 1000"},
      {"{\"height\":1001}", "height must be an integer from 1 to 1000"},
      {"{\"height\":2.5}", "height must be an integer from 1 to 1000"},
  };
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
    json_t *j = json_loads(fields[i][0], 0, NULL);
    agent_pty_request_t r;
    assert_int_equal(agent__pty_request_parse(j, &r, &err), -1);
    assert_string_equal(err, fields[i][1]);
    json_decref(j);
  }
}

static void test_env_later_names_win(void **state) {
  (void)state;
  setenv("ATRIUM_PTY_ENV_A", "agent", 1);
  setenv("TERM", "dumb", 1);
  const char *extra[] = {"ATRIUM_PTY_ENV_A=config", "ATRIUM_PTY_ENV_B=b", NULL};
  char **env = agent__pty_env(extra);
  int a = 0, term = 0, b = 0;
  for (size_t i = 0; env[i]; i++) {
    if (strncmp(env[i], "ATRIUM_PTY_ENV_A=", 17) == 0) {
      a++;
      assert_string_equal(env[i], "ATRIUM_PTY_ENV_A=config");
    } else if (strncmp(env[i], "TERM=", 5) == 0) {
      term++;
      assert_string_equal(env[i], "TERM=xterm-256color");
    } else if (strncmp(env[i], "ATRIUM_PTY_ENV_B=", 17) == 0) {
      b++;
    }
  }
  assert_int_equal(a, 1);
  assert_int_equal(term, 1);
  assert_int_equal(b, 1);
  agent__pty_env_free(env);
  unsetenv("ATRIUM_PTY_ENV_A");
}

static void test_shell_choice(void **state) {
  (void)state;
  char *sh = agent_user_shell("/bin/dash");
  assert_string_equal(sh, "/bin/dash");
  free(sh);
  /* not a path: the user's login shell, or /bin/sh; never nologin */
  const char *given[] = {NULL, "", "sh"};
  for (size_t i = 0; i < sizeof given / sizeof *given; i++) {
    sh = agent_user_shell(given[i]);
    assert_non_null(sh);
    assert_int_equal(sh[0], '/');
    assert_int_equal(access(sh, X_OK), 0);
    assert_null(strstr(sh, "nologin"));
    free(sh);
  }
}

static void test_default_shell_is_a_login_shell(void **state) {
  (void)state;
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, on_tick, 5, 5);
  agent_pty_config_t cfg = {0};
  f->p = agent_pty_new(&f->loop, &cfg);
  assert_non_null(f->p);
  client_t *c = attach(f, ID1, 80, 24, NULL);
  send_str(f, c, "{\"data\":\"echo zero=$0 pwd=$(pwd)\\r\"}");
  char want[4096];
  const char *home = getenv("HOME");
  snprintf(want, sizeof want, "pwd=%s", home && *home ? home : "/");
  wait_seen(f, c, want);
  assert_true(client_has(c, "zero=-"));
  client_free(c);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_echo_answers_42),
      cmocka_unit_test(test_object_split_across_writes),
      cmocka_unit_test(test_two_objects_in_one_write),
      cmocka_unit_test(test_resize_reaches_stty),
      cmocka_unit_test(test_reconnect_keeps_shell_and_scrollback),
      cmocka_unit_test(test_newer_connection_replaces_older),
      cmocka_unit_test(test_command_exit_ends_pty),
      cmocka_unit_test(test_shell_exit_sends_last_output),
      cmocka_unit_test(test_garbage_closes_connection_not_pty),
      cmocka_unit_test(test_oversized_object_closes_connection),
      cmocka_unit_test(test_idle_timeout_ends_pty),
      cmocka_unit_test(test_slow_connection_pauses_the_shell),
      cmocka_unit_test(test_stalled_connection_is_dropped),
      cmocka_unit_test(test_unread_last_output_is_let_go),
      cmocka_unit_test(test_attach_refuses_bad_arguments),
      cmocka_unit_test(test_free_ends_live_shells),
      cmocka_unit_test(test_scanner_any_cut),
      cmocka_unit_test(test_scanner_refuses),
      cmocka_unit_test(test_env_later_names_win),
      cmocka_unit_test(test_shell_choice),
      cmocka_unit_test(test_default_shell_is_a_login_shell),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
