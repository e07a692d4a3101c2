/* core/agent/agent_lifecycle.c — ordered lifecycle reports
 * (agent_lifecycle.h). */
#include "agent_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_util.h"
#include "log.h"

#define LIFECYCLE_PATH "/api/v2/workspaceagents/me/report-lifecycle"
#define RETRY_MS 1000

static const char *const names[] = {
    "created",          "starting",       "start_timeout",
    "start_error",      "ready",          "shutting_down",
    "shutdown_timeout", "shutdown_error", "off",
};

const char *agent_state_name(agent_state_t s) {
  return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

bool agent_state_final(agent_state_t s) {
  return s == AGENT_OFF || s == AGENT_SHUTDOWN_ERROR ||
         s == AGENT_SHUTDOWN_TIMEOUT;
}

bool agent_state_started(agent_state_t s) {
  return s == AGENT_READY || s == AGENT_START_ERROR || s == AGENT_START_TIMEOUT;
}

/* Whether to may follow from: the order of the enum, except that the three
 * ends of a start (and of a shutdown) exclude each other. */
static bool may_follow(agent_state_t from, agent_state_t to) {
  if (to <= from)
    return false;
  if (agent_state_started(from) && agent_state_started(to))
    return false;
  if (agent_state_final(from))
    return false;
  return true;
}

void agent_lifecycle_init(agent_lifecycle_t *lc, uv_loop_t *loop,
                          agent_conn_t *conn) {
  memset(lc, 0, sizeof *lc);
  lc->conn = conn;
  lc->state = AGENT_CREATED;
  lc->startup_exit_code = -1;
  uv_timer_init(loop, &lc->retry);
  lc->retry.data = lc;
}

bool agent_lifecycle_set(agent_lifecycle_t *lc, agent_state_t state,
                         int64_t now_us) {
  if (!may_follow(lc->state, state) || lc->n == AGENT_LIFECYCLE_QUEUE)
    return false;
  atr_log(ATR_LOG_INFO, "agent", "lifecycle: %s -> %s",
          agent_state_name(lc->state), agent_state_name(state));
  lc->state = state;
  lc->queue[lc->n].state = state;
  lc->queue[lc->n].changed_at_us = now_us;
  lc->n++;
  agent_lifecycle_kick(lc);
  return true;
}

static void on_retry(uv_timer_t *t) {
  agent_lifecycle_t *lc = t->data;
  lc->timer_armed = false;
  agent_lifecycle_kick(lc);
}

static void on_reply(void *ud, int status, const char *body, size_t len) {
  (void)body;
  (void)len;
  agent_lifecycle_t *lc = ud;
  lc->in_flight = false;
  if (lc->n == 0)
    return;
  if ((status >= 200 && status < 300) || status == 409) {
    agent_state_t done = lc->queue[0].state;
    if (status == 409)
      atr_log(ATR_LOG_WARN, "agent",
              "the server has a later lifecycle state than %s",
              agent_state_name(done));
    memmove(&lc->queue[0], &lc->queue[1], (lc->n - 1) * sizeof lc->queue[0]);
    lc->n--;
    if (lc->on_acked)
      lc->on_acked(lc->ud, done);
    agent_lifecycle_kick(lc);
  } else if (status != 0 && !lc->timer_armed &&
             !uv_is_closing((uv_handle_t *)&lc->retry)) {
    /* 401 (not yet known, or revoked), 5xx: try again later; status 0
     * waits for the next session. */
    lc->timer_armed = true;
    uv_timer_start(&lc->retry, on_retry, RETRY_MS, 0);
  }
}

void agent_lifecycle_kick(agent_lifecycle_t *lc) {
  if (lc->in_flight || lc->n == 0 || !agent_conn_up(lc->conn))
    return;
  char at[40], code[48] = "", body[192];
  agent_time_format(lc->queue[0].changed_at_us, at, sizeof at);
  if (lc->queue[0].state == AGENT_START_ERROR && lc->startup_exit_code >= 0)
    snprintf(code, sizeof code, ",\"startup_script_exit_code\":%d",
             lc->startup_exit_code);
  snprintf(body, sizeof body, "{\"state\":\"%s\",\"changed_at\":\"%s\"%s}",
           agent_state_name(lc->queue[0].state), at, code);
  if (agent_conn_request(lc->conn, "POST", LIFECYCLE_PATH, body, on_reply,
                         lc) == 0)
    lc->in_flight = true;
}

void agent_lifecycle_lost(agent_lifecycle_t *lc) {
  lc->in_flight = false;
}

bool agent_lifecycle_idle(const agent_lifecycle_t *lc) {
  return lc->n == 0;
}

void agent_lifecycle_close(agent_lifecycle_t *lc) {
  uv_timer_stop(&lc->retry);
  if (!uv_is_closing((uv_handle_t *)&lc->retry))
    uv_close((uv_handle_t *)&lc->retry, NULL);
}
