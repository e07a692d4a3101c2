/* core/domain/agents.c — see agents.h: lifecycle names, tokens and their
 * authentication, status, and the job runner's revoke and shutdown. */
#include "agents.h"
#include "agents_internal.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "events.h"
#include "rows.h"

static const char *const lifecycle_names[] = {
    "created",          "starting",       "start_timeout",
    "start_error",      "ready",          "shutting_down",
    "shutdown_timeout", "shutdown_error", "off",
};
#define NSTATES (sizeof lifecycle_names / sizeof *lifecycle_names)

const char *atr_agent_lifecycle_name(atr_agent_lifecycle_t s) {
  return (unsigned)s < NSTATES ? lifecycle_names[s] : NULL;
}

int atr_agent_lifecycle_parse(const char *name) {
  for (size_t i = 0; name && i < NSTATES; i++)
    if (strcmp(name, lifecycle_names[i]) == 0)
      return (int)i;
  return -1;
}

/* ---- tokens ------------------------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void random_bytes(unsigned char *buf, size_t n) {
  if (RAND_bytes(buf, (int)n) == 1)
    return;
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(buf + got, n - got, 0);
    if (r <= 0)
      abort(); /* a guessable token would be worse than no server */
    got += (size_t)r;
  }
}

void atr_agent_token_new(char out[ATR_AGENT_TOKEN_LEN + 1]) {
  unsigned char raw[33] = {0}; /* 32 random bytes; one zero pads the tail */
  random_bytes(raw, 32);
  size_t n = strlen(ATR_AGENT_TOKEN_PREFIX);
  memcpy(out, ATR_AGENT_TOKEN_PREFIX, n);
  for (size_t i = 0; i < 33; i += 3) {
    uint32_t v =
        (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    for (int k = 0; k < 4 && n < ATR_AGENT_TOKEN_LEN; k++)
      out[n++] = b64url[(v >> (18 - 6 * k)) & 63];
  }
  out[ATR_AGENT_TOKEN_LEN] = '\0';
  OPENSSL_cleanse(raw, sizeof raw);
}

static bool token_shaped(const char *t) {
  size_t n = strlen(ATR_AGENT_TOKEN_PREFIX);
  if (!t || strncmp(t, ATR_AGENT_TOKEN_PREFIX, n) != 0 ||
      strlen(t) != ATR_AGENT_TOKEN_LEN)
    return false;
  for (const char *p = t + n; *p; p++)
    if (!strchr(b64url, *p))
      return false;
  return true;
}

int atr__agent_refused(atr_fault_t *fault) {
  return atr_fault_set(fault, ATR_EACCES, ATR__AGENT_BAD_TOKEN, NULL);
}

int atr__agent_only(const atr_actor_t *actor, atr_fault_t *fault) {
  if (actor && actor->agent && !actor->system &&
      atr_uuid_valid(actor->agent_id))
    return 0;
  return atr_fault_set(fault, ATR_EPERM, "Forbidden.",
                       "Only a workspace agent may call this.");
}

int atr__agent_live(atr_db_t *db, const char *agent_id, char **err) {
  atr_value_t p[] = {atr_v_time(atr_db_now_us()), atr_v_text(agent_id)};
  int64_t changes = 0;
  int rc = atr_db_exec(db,
                       "UPDATE workspace_agents SET updated_at = ? WHERE id = "
                       "? AND revoked_at IS NULL",
                       p, 2, &changes, err);
  return rc == 0 && changes == 0 ? ATR_EACCES : rc;
}

char *atr__agent_cut(const char *s, size_t max) {
  if (!s)
    return strdup("");
  size_t n = strnlen(s, max + 1);
  if (n > max) {
    n = max;
    /* back off continuation bytes so no sequence is split */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  return strndup(s, n);
}

int atr_agent_authenticate(const atr_domain_t *dom, const char *token,
                           atr_actor_t *actor, atr_fault_t *fault) {
  memset(actor, 0, sizeof *actor);
  if (!token_shaped(token))
    return atr__agent_refused(fault);
  char digest[37];
  atr_dbcrypt_token_digest(token, digest);
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(digest)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  rc = atr_db_query(&db,
                    "SELECT a.id, a.workspace_id, a.build_id, a.name FROM "
                    "workspace_agents a JOIN workspaces w ON w.id = "
                    "a.workspace_id WHERE a.auth_token = ? AND a.revoked_at "
                    "IS NULL AND w.deleted = FALSE",
                    p, 1, &rows, &err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
    actor->agent = true;
    snprintf(actor->agent_id, sizeof actor->agent_id, "%s",
             atr_db_get_text(&db, rows, 0));
    snprintf(actor->workspace_id, sizeof actor->workspace_id, "%s",
             atr_db_get_text(&db, rows, 1));
    snprintf(actor->build_id, sizeof actor->build_id, "%s",
             atr_db_get_text(&db, rows, 2));
    snprintf(actor->username, sizeof actor->username, "agent:%s",
             atr_db_get_text(&db, rows, 3));
    rc = 0;
  } else if (rc == 0) {
    rc = atr__agent_refused(fault);
  } else {
    atr_fault_internal(fault, rc, err);
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  return rc;
}

/* ---- status ------------------------------------------------------------- */

#define AGENT_INACTIVE_US ((int64_t)180 * 1000000)

const char *atr_agent_status(const atr_agent_times_t *t, int64_t now_us) {
  if (t->first_connected_at_us == 0) {
    if (t->connection_timeout_s > 0 &&
        now_us - t->created_at_us > t->connection_timeout_s * 1000000)
      return "timeout";
    return "connecting";
  }
  if (t->disconnected_at_us > t->last_connected_at_us)
    return "disconnected";
  if (now_us - t->last_connected_at_us > AGENT_INACTIVE_US)
    return "disconnected";
  return "connected";
}

/* ---- the job runner's side ---------------------------------------------- */

int atr_agents_revoke(atr_db_t *db, const char *workspace_id,
                      const char *except_build_id, char **err) {
  int64_t now = atr_db_now_us();
  const char *except = except_build_id ? except_build_id : "";
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_text(workspace_id),
                     atr_v_text(except), atr_v_text(except)};
  return atr_db_exec(db,
                     "UPDATE workspace_agents SET revoked_at = ?, updated_at = "
                     "? WHERE workspace_id = ? AND revoked_at IS NULL AND (? "
                     "= '' OR CAST(build_id AS TEXT) <> ?)",
                     p, 5, NULL, err);
}

/* The live agents' ids of a workspace (at most max). */
static int live_ids(atr_db_t *db, const char *workspace_id, char ids[][37],
                    size_t max, size_t *n, char **err) {
  atr_value_t p[] = {atr_v_text(workspace_id)};
  atr_db_rows_t *rows = NULL;
  *n = 0;
  int rc = atr_db_query(db,
                        "SELECT id FROM workspace_agents WHERE workspace_id = "
                        "? AND revoked_at IS NULL ORDER BY id",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    if (*n < max)
      snprintf(ids[(*n)++], 37, "%s", atr_db_get_text(db, rows, 0));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

#define LIVE_MAX 8

int atr_agents_request_shutdown(const atr_domain_t *dom,
                                const char *workspace_id, char **err) {
  atr_db_t db;
  int rc = atr_db_open(dom->store, &db, err);
  if (rc != 0)
    return rc;
  char ids[LIVE_MAX][37];
  size_t n = 0;
  atr_value_t p[] = {atr_v_time(atr_db_now_us()), atr_v_text(workspace_id)};
  rc = atr_db_exec(&db,
                   "UPDATE workspace_agents SET shutdown_requested_at = "
                   "COALESCE(shutdown_requested_at, ?) WHERE workspace_id = ? "
                   "AND revoked_at IS NULL",
                   p, 2, NULL, err);
  if (rc == 0)
    rc = live_ids(&db, workspace_id, ids, LIVE_MAX, &n, err);
  atr_db_close(&db);
  for (size_t i = 0; rc == 0 && i < n; i++)
    atr_events_agent(dom->events, ids[i], "shutdown");
  return rc;
}

int atr_agents_announce_revoked(const atr_domain_t *dom, atr_db_t *db,
                                const char *workspace_id, int64_t since_us,
                                char **err) {
  atr_value_t p[] = {atr_v_text(workspace_id), atr_v_time(since_us)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id FROM workspace_agents WHERE workspace_id = "
                        "? AND revoked_at >= ?",
                        p, 2, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    atr_events_agent(dom->events, atr_db_get_text(db, rows, 0), "revoked");
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_agents_server_started(const atr_domain_t *dom, char **err) {
  atr_db_t db;
  int rc = atr_db_open(dom->store, &db, err);
  if (rc != 0)
    return rc;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now)};
  rc = atr_db_exec(&db,
                   "UPDATE workspace_agents SET disconnected_at = ?, "
                   "updated_at = ? WHERE last_connected_at IS NOT NULL AND "
                   "(disconnected_at IS NULL OR disconnected_at < "
                   "last_connected_at)",
                   p, 2, NULL, err);
  atr_db_close(&db);
  return rc;
}

static bool final_shutdown(const char *state) {
  return strcmp(state, "off") == 0 || strcmp(state, "shutdown_error") == 0 ||
         strcmp(state, "shutdown_timeout") == 0;
}

int atr_agents_shutdown_done(const atr_domain_t *dom, const char *workspace_id,
                             bool *done, int64_t *wait_ms, char **err) {
  *done = true;
  *wait_ms = 0;
  atr_db_t db;
  int rc = atr_db_open(dom->store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(workspace_id)};
  atr_db_rows_t *rows = NULL;
  rc = atr_db_query(
      &db,
      "SELECT a.lifecycle_state, a.created_at, a.first_connected_at, "
      "a.last_connected_at, a.disconnected_at, a.connection_timeout_seconds, "
      "(SELECT MAX(s.timeout_seconds) FROM workspace_agent_scripts s WHERE "
      "s.agent_id = a.id AND s.run_on_stop = TRUE) FROM workspace_agents a "
      "WHERE a.workspace_id = ? AND a.revoked_at IS NULL",
      p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    rc = 0;
    atr_agent_times_t t = {
        atr_db_get_time(&db, rows, 1), atr_db_get_time(&db, rows, 2),
        atr_db_get_time(&db, rows, 3), atr_db_get_time(&db, rows, 4),
        atr_db_get_int(&db, rows, 5)};
    int64_t ms = (atr_db_get_int(&db, rows, 6) + 10) * 1000;
    if (ms > *wait_ms)
      *wait_ms = ms;
    bool connected =
        strcmp(atr_agent_status(&t, atr_db_now_us()), "connected") == 0;
    if (connected && !final_shutdown(atr_row_text(&db, rows, 0)))
      *done = false;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc < 0 ? rc : 0;
}

/* ---- the deployment's tally (the gauges) --------------------------------- */

const char *const atr_agent_statuses[ATR_AGENT_NSTATUS] = {
    "connecting", "connected", "disconnected", "timeout"};

static void tally_row(atr_db_t *db, atr_db_rows_t *rows, int64_t now,
                      atr_agents_tally_t *out) {
  atr_agent_times_t t = {
      .created_at_us = atr_db_get_time(db, rows, 0),
      .first_connected_at_us =
          atr_db_is_null(db, rows, 1) ? 0 : atr_db_get_time(db, rows, 1),
      .last_connected_at_us =
          atr_db_is_null(db, rows, 2) ? 0 : atr_db_get_time(db, rows, 2),
      .disconnected_at_us =
          atr_db_is_null(db, rows, 3) ? 0 : atr_db_get_time(db, rows, 3),
      .connection_timeout_s = atr_db_get_int(db, rows, 4)};
  const char *st = atr_agent_status(&t, now);
  for (size_t i = 0; i < ATR_AGENT_NSTATUS; i++)
    if (st && strcmp(st, atr_agent_statuses[i]) == 0)
      out->by_status[i]++;
  int life = atr_agent_lifecycle_parse(atr_db_get_text(db, rows, 5));
  if (life >= 0 && life <= ATR_LIFECYCLE_OFF)
    out->by_state[life]++;
}

int atr_agents_tally(atr_store_t *store, atr_agents_tally_t *out, char **err) {
  *out = (atr_agents_tally_t){0};
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_db_rows_t *rows = NULL;
  int64_t now = atr_db_now_us();
  rc = atr_db_query(&db,
                    "SELECT created_at, first_connected_at, "
                    "last_connected_at, disconnected_at, "
                    "connection_timeout_seconds, lifecycle_state FROM "
                    "workspace_agents WHERE revoked_at IS NULL",
                    NULL, 0, &rows, err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    rc = 0;
    tally_row(&db, rows, now, out);
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc < 0 ? rc : 0;
}
