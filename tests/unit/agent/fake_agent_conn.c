/* tests/unit/agent/fake_agent_conn.c — see fake_agent_conn.h. */
#include "fake_agent_conn.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

agent_conn_t *fake_last_conn;
bool fake_auto_next;
const char *fake_manifest_next;
const char *fake_shutdown_after_next;
const char *fake_touch_on_ready_next;
const char *fake_event_when_next[2];
const char *fake_sigterm_after_next;

agent_conn_t *fake_conn_new(uv_loop_t *loop, bool up) {
  agent_conn_t *c = calloc(1, sizeof *c);
  c->loop = loop;
  c->up = up;
  uv_timer_init(loop, &c->tick);
  c->tick.data = c;
  return c;
}

void fake_conn_free(agent_conn_t *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->reqs[i].body);
  free(c->log_text);
  free(c);
}

int agent_conn_new(uv_loop_t *loop, const agent_conn_opts_t *opts,
                   const agent_conn_cbs_t *cbs, void *ud, agent_conn_t **out,
                   char **err) {
  (void)opts;
  (void)err;
  agent_conn_t *c = fake_conn_new(loop, false);
  c->cbs = *cbs;
  c->ud = ud;
  c->autoreply = fake_auto_next;
  c->manifest = fake_manifest_next;
  c->event_after_state = fake_shutdown_after_next;
  c->touch_on_ready = fake_touch_on_ready_next;
  c->event_when[0] = fake_event_when_next[0];
  c->event_when[1] = fake_event_when_next[1];
  c->sigterm_after_state = fake_sigterm_after_next;
  fake_last_conn = c;
  *out = c;
  return 0;
}

static void auto_answer(agent_conn_t *c, fake_req_t *r);

static void on_tick(uv_timer_t *t) {
  agent_conn_t *c = t->data;
  if (c->started && !c->up && !c->stopped) {
    c->up = true;
    c->cbs.on_up(c->ud);
  }
  for (size_t i = 0; i < c->n; i++)
    if (!c->reqs[i].answered && c->autoreply && c->up)
      auto_answer(c, &c->reqs[i]);
}

void agent_conn_start(agent_conn_t *c) {
  c->started = true;
  uv_timer_start(&c->tick, on_tick, 0, 0);
}

bool agent_conn_up(const agent_conn_t *c) {
  return c->up;
}

int agent_conn_request(agent_conn_t *c, const char *method, const char *path,
                       const char *json_body, agent_conn_reply_fn reply,
                       void *reply_ud) {
  if (!c->up || c->n == FAKE_MAX_REQS)
    return ATR_EAGAIN;
  fake_req_t *r = &c->reqs[c->n++];
  snprintf(r->method, sizeof r->method, "%s", method);
  snprintf(r->path, sizeof r->path, "%s", path);
  r->body = json_body ? strdup(json_body) : NULL;
  r->reply = reply;
  r->ud = reply_ud;
  if (c->autoreply && !uv_is_closing((uv_handle_t *)&c->tick))
    uv_timer_start(&c->tick, on_tick, 0, 0);
  return 0;
}

void fake_reply(agent_conn_t *c, size_t i, int status, const char *body) {
  fake_req_t *r = &c->reqs[i];
  if (r->answered)
    return;
  r->answered = true;
  r->reply(r->ud, status, body, body ? strlen(body) : 0);
}

void fake_down(agent_conn_t *c) {
  c->up = false;
  for (size_t i = 0; i < c->n; i++)
    fake_reply(c, i, 0, NULL);
  if (c->cbs.on_down)
    c->cbs.on_down(c->ud, 0, "test");
}

void fake_up(agent_conn_t *c) {
  c->up = true;
  if (c->cbs.on_up)
    c->cbs.on_up(c->ud);
}

size_t fake_count(const agent_conn_t *c, const char *path) {
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++)
    k += strstr(c->reqs[i].path, path) != NULL;
  return k;
}

static void store_logs(agent_conn_t *c, fake_req_t *r, char *ans, size_t sz) {
  json_t *j = json_loads(r->body, 0, NULL);
  json_t *logs = json_object_get(j, "logs");
  json_int_t last = 0;
  size_t i;
  json_t *it;
  json_array_foreach(logs, i, it) {
    last = json_integer_value(json_object_get(it, "seq"));
    const char *out = json_string_value(json_object_get(it, "output"));
    size_t old = c->log_text ? strlen(c->log_text) : 0, n = strlen(out);
    c->log_text = realloc(c->log_text, old + n + 2);
    memcpy(c->log_text + old, out, n);
    memcpy(c->log_text + old + n, "\n", 2);
  }
  json_decref(j);
  snprintf(ans, sz, "{\"acked_seq\":%lld}", (long long)last);
}

static void store_state(agent_conn_t *c, fake_req_t *r) {
  json_t *j = json_loads(r->body, 0, NULL);
  const char *st = json_string_value(json_object_get(j, "state"));
  if (st && c->nstates < 32)
    snprintf(c->states[c->nstates++], sizeof c->states[0], "%s", st);
  if (st && c->touch_on_ready && strcmp(st, "ready") == 0) {
    FILE *f = fopen(c->touch_on_ready, "w");
    if (f)
      fclose(f);
  }
  if (st && c->sigterm_after_state && strcmp(st, c->sigterm_after_state) == 0)
    raise(SIGTERM);
  if (st && c->event_after_state && strcmp(st, c->event_after_state) == 0 &&
      c->cbs.on_event) {
    static const char ev[] = "{\"type\":\"shutdown\"}";
    c->events_sent++;
    c->cbs.on_event(c->ud, ev, sizeof ev - 1);
  }
  json_decref(j);
}

static void send_shutdown(agent_conn_t *c) {
  static const char ev[] = "{\"type\":\"shutdown\"}";
  c->events_sent++;
  c->cbs.on_event(c->ud, ev, sizeof ev - 1);
}

static void auto_answer(agent_conn_t *c, fake_req_t *r) {
  char ans[64];
  if (c->event_when[0] && r->body && strstr(r->body, c->event_when[0]) &&
      strstr(r->body, c->event_when[1]) && c->events_sent == 0)
    send_shutdown(c);
  if (strstr(r->path, "/manifest")) {
    fake_reply(c, (size_t)(r - c->reqs), 200, c->manifest);
  } else if (strstr(r->path, "/logs/state")) {
    fake_reply(c, (size_t)(r - c->reqs), 200,
               c->logs_state ? c->logs_state : "{\"sources\":[]}");
  } else if (strstr(r->path, "/logs")) {
    store_logs(c, r, ans, sizeof ans);
    fake_reply(c, (size_t)(r - c->reqs), 200, ans);
  } else if (strstr(r->path, "/report-lifecycle")) {
    store_state(c, r);
    fake_reply(c, (size_t)(r - c->reqs), 204, NULL);
  } else if (strstr(r->path, "/report-stats")) {
    fake_reply(c, (size_t)(r - c->reqs), 200,
               "{\"report_interval\":30000000000}");
  } else {
    fake_reply(c, (size_t)(r - c->reqs), 204, NULL);
  }
}

void agent_conn_stop(agent_conn_t *c, void (*done)(void *ud), void *ud) {
  c->stopped = true;
  c->up = false;
  for (size_t i = 0; i < c->n; i++)
    fake_reply(c, i, 0, NULL);
  uv_close((uv_handle_t *)&c->tick, NULL);
  if (done)
    done(ud);
}

void agent_conn_free(agent_conn_t *c) {
  /* the agent frees its connection; the test reads it first */
  (void)c;
}

int64_t agent_conn_ping_us(const agent_conn_t *c) {
  (void)c;
  return 0;
}

uint64_t agent_conn_sessions(const agent_conn_t *c) {
  (void)c;
  return 1;
}

uint64_t agent_conn_drops(const agent_conn_t *c) {
  (void)c;
  return 0;
}

/* Streams: an error-only stream (end) is recorded as a request whose
 * body is the header's value; a real stream is never opened here. */
int agent_conn_stream_open(agent_conn_t *c, const char *path,
                           const agent_conn_header_t *hdrs, size_t nhdrs,
                           bool end, const agent_stream_cbs_t *cbs, void *ud,
                           agent_stream_t **out) {
  (void)cbs;
  (void)ud;
  if (out)
    *out = NULL;
  if (!c->up || !end || c->n == FAKE_MAX_REQS)
    return ATR_EAGAIN;
  fake_req_t *r = &c->reqs[c->n++];
  snprintf(r->method, sizeof r->method, "POST");
  snprintf(r->path, sizeof r->path, "%s", path);
  r->body = nhdrs ? strdup(hdrs[0].value) : NULL;
  r->answered = true;
  return 0;
}

int agent_stream_write(agent_stream_t *s, const char *data, size_t len) {
  (void)s;
  (void)data;
  (void)len;
  return ATR_EINVAL;
}

size_t agent_stream_pending(const agent_stream_t *s) {
  (void)s;
  return 0;
}

void agent_stream_end(agent_stream_t *s) {
  (void)s;
}

void agent_stream_consume(agent_stream_t *s, size_t n) {
  (void)s;
  (void)n;
}

void agent_stream_reset(agent_stream_t *s) {
  (void)s;
}

int32_t agent_conn_stream_limit(const agent_conn_t *c) {
  (void)c;
  return INT32_MAX;
}
