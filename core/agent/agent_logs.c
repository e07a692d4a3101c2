/* core/agent/agent_logs.c — numbered, acked log batches (agent_logs.h). */
#include "agent_logs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_lines.h"
#include "agent_util.h"
#include "atrium/error.h"
#include "log.h"

#define LOGS_PATH "/api/v2/workspaceagents/me/logs"
#define RETRY_MS 1000

static size_t line_cost(size_t len) {
  return sizeof(agent_log_line_t) + len + 1;
}

int agent_logs_init(agent_logs_t *l, uv_loop_t *loop, agent_conn_t *conn,
                    size_t cap_bytes, int64_t flush_ms) {
  memset(l, 0, sizeof *l);
  l->loop = loop;
  l->conn = conn;
  l->cap_bytes = cap_bytes ? cap_bytes : AGENT_LOGS_CAP_BYTES;
  l->flush_ms = flush_ms < 0 ? 250 : flush_ms;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  return 0;
}

agent_log_source_t *agent_logs_source(agent_logs_t *l, const char *id) {
  for (size_t i = 0; i < l->nsrc; i++)
    if (strcmp(l->src[i].id, id) == 0)
      return &l->src[i];
  if (l->nsrc == AGENT_LOGS_MAX_SOURCES || strlen(id) >= sizeof l->src[0].id)
    return NULL;
  agent_log_source_t *s = &l->src[l->nsrc++];
  memset(s, 0, sizeof *s);
  s->logs = l;
  snprintf(s->id, sizeof s->id, "%s", id);
  s->next_seq = 1;
  return s;
}

static int push(agent_logs_t *l, agent_log_source_t *s, const char *level,
                const char *output, size_t len, int64_t now_us) {
  if (s->count == s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 64;
    agent_log_line_t **ring = malloc(ncap * sizeof *ring);
    if (!ring)
      return ATR_ENOMEM;
    for (size_t i = 0; i < s->count; i++)
      ring[i] = s->ring[(s->head + i) % s->cap];
    free(s->ring);
    s->ring = ring;
    s->cap = ncap;
    s->head = 0;
  }
  agent_log_line_t *line = malloc(line_cost(len));
  if (!line)
    return ATR_ENOMEM;
  line->seq = s->next_seq++;
  line->created_at_us = now_us;
  line->level = level;
  line->len = len;
  memcpy(line->output, output, len);
  line->output[len] = '\0';
  s->ring[(s->head + s->count) % s->cap] = line;
  s->count++;
  l->bytes += line_cost(len);
  return 0;
}

static void schedule(agent_logs_t *l, int64_t ms);

/* The warn line that counts the lines dropped, if there are any and it
 * fits with extra more bytes; false when it does not fit. */
static bool push_dropped(agent_logs_t *l, agent_log_source_t *s, size_t extra,
                         int64_t now_us) {
  if (s->dropped == 0)
    return true;
  char warn[96];
  int n = snprintf(warn, sizeof warn,
                   "%" PRIu64 " lines dropped: the agent's buffer was full",
                   s->dropped);
  if (l->bytes + line_cost((size_t)n) + extra > l->cap_bytes ||
      push(l, s, "warn", warn, (size_t)n, now_us) != 0)
    return false;
  s->dropped = 0;
  return true;
}

bool agent_logs_add(agent_logs_t *l, agent_log_source_t *s, const char *level,
                    const char *output, size_t len, int64_t now_us) {
  if (len > AGENT_LINE_MAX)
    len = AGENT_LINE_MAX;
  size_t fixed_len;
  char *fixed = agent_utf8_repair(output, len, &fixed_len);
  if (!fixed)
    return false;
  bool ok = push_dropped(l, s, line_cost(fixed_len), now_us) &&
            l->bytes + line_cost(fixed_len) <= l->cap_bytes &&
            push(l, s, level, fixed, fixed_len, now_us) == 0;
  free(fixed);
  if (!ok) {
    s->dropped++;
    return false;
  }
  schedule(l, l->flush_ms);
  return true;
}

char *agent_logs_batch_json(const agent_log_source_t *s, int64_t *last_seq) {
  if (s->count == 0)
    return NULL;
  json_t *logs = json_array();
  size_t bytes = 0;
  for (size_t i = 0; i < s->count && i < AGENT_LOGS_BATCH_LINES; i++) {
    const agent_log_line_t *line = s->ring[(s->head + i) % s->cap];
    if (i > 0 && bytes + line->len > AGENT_LOGS_BATCH_BYTES)
      break;
    bytes += line->len;
    char at[40];
    agent_time_format(line->created_at_us, at, sizeof at);
    json_array_append_new(
        logs,
        json_pack("{sI ss ss# ss}", "seq",
                  (json_int_t)s->offset + (json_int_t)line->seq, "created_at",
                  at, "output", line->output, line->len, "level", line->level));
    *last_seq = line->seq;
  }
  json_t *body = json_pack("{ss so}", "log_source_id", s->id, "logs", logs);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  return text;
}

void agent_logs_ack(agent_logs_t *l, agent_log_source_t *s, int64_t acked_seq) {
  int64_t local = acked_seq - s->offset;
  while (s->count > 0 && s->ring[s->head]->seq <= local) {
    agent_log_line_t *line = s->ring[s->head];
    l->bytes -= line_cost(line->len);
    l->acked++;
    free(line);
    s->head = (s->head + 1) % s->cap;
    s->count--;
  }
  /* room again: say how many lines were lost, numbered in order */
  push_dropped(l, s, 0, agent_now_us());
}

static void send_source(agent_log_source_t *s);

static void on_reply(void *ud, int status, const char *body, size_t len) {
  agent_log_source_t *s = ud;
  agent_logs_t *l = s->logs;
  int64_t sent_last = s->in_flight;
  s->in_flight = 0;
  if (status == 200 || status == 201) {
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *acked = json_object_get(j, "acked_seq");
    agent_logs_ack(l, s,
                   json_is_integer(acked) ? json_integer_value(acked)
                                          : s->offset + sent_last);
    json_decref(j);
    send_source(s);
  } else if (status == 400 || status == 413 || status == 422) {
    /* The server will never take this batch: drop it rather than wedge
     * every later line behind it. */
    atr_log(ATR_LOG_ERROR, "agent", "log batch refused (HTTP %d): dropped",
            status);
    agent_logs_ack(l, s, s->offset + sent_last);
    send_source(s);
  } else if (status != 0) {
    schedule(l, RETRY_MS);
  }
  /* status 0: the session is gone; agent_logs_kick resends once up. */
}

static void send_source(agent_log_source_t *s) {
  agent_logs_t *l = s->logs;
  if (!l->resumed || s->in_flight || s->count == 0 || !agent_conn_up(l->conn))
    return;
  int64_t last = 0;
  char *body = agent_logs_batch_json(s, &last);
  if (!body)
    return;
  if (agent_conn_request(l->conn, "PATCH", LOGS_PATH, body, on_reply, s) == 0) {
    s->in_flight = last;
    l->sent++;
  }
  free(body);
}

void agent_logs_kick(agent_logs_t *l) {
  for (size_t i = 0; i < l->nsrc; i++)
    send_source(&l->src[i]);
}

static void on_timer(uv_timer_t *t) {
  agent_logs_t *l = t->data;
  l->timer_armed = false;
  agent_logs_kick(l);
}

static void schedule(agent_logs_t *l, int64_t ms) {
  if (ms == 0) {
    agent_logs_kick(l);
    return;
  }
  if (l->timer_armed || uv_is_closing((uv_handle_t *)&l->timer))
    return;
  l->timer_armed = true;
  uv_timer_start(&l->timer, on_timer, (uint64_t)ms, 0);
}

void agent_logs_resume(agent_logs_t *l, const json_t *state) {
  json_t *sources = json_object_get(state, "sources");
  size_t i;
  json_t *it;
  json_array_foreach(sources, i, it) {
    const char *id = json_string_value(json_object_get(it, "log_source_id"));
    json_t *last = json_object_get(it, "last_seq");
    if (!id || !json_is_integer(last) || json_integer_value(last) < 0)
      continue;
    agent_log_source_t *s = agent_logs_source(l, id);
    if (s)
      s->offset = json_integer_value(last);
  }
  l->resumed = true;
  agent_logs_kick(l);
}

void agent_logs_lost(agent_logs_t *l) {
  for (size_t i = 0; i < l->nsrc; i++)
    l->src[i].in_flight = 0;
}

bool agent_logs_idle(const agent_logs_t *l) {
  for (size_t i = 0; i < l->nsrc; i++)
    if (l->src[i].count > 0)
      return false;
  return true;
}

void agent_logs_close(agent_logs_t *l) {
  uv_timer_stop(&l->timer);
  if (!uv_is_closing((uv_handle_t *)&l->timer))
    uv_close((uv_handle_t *)&l->timer, NULL);
}

void agent_logs_free(agent_logs_t *l) {
  for (size_t i = 0; i < l->nsrc; i++) {
    agent_log_source_t *s = &l->src[i];
    for (size_t k = 0; k < s->count; k++)
      free(s->ring[(s->head + k) % s->cap]);
    free(s->ring);
    s->ring = NULL;
    s->count = 0;
  }
}
