/* core/domain/agents_logs.c — see agents.h: an agent's startup logs,
 * each line stored once whatever the agent resends (docs/design/agent.md
 * §2.3), with the build's sensitive values and anything shaped like an
 * agent token masked before it is stored. */
#include "agents.h"
#include "agents_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "rows.h"

#define BATCH_MAX 1000
#define LINE_MAX ((size_t)64 * 1024)
#define MASK "********"
/* As in the job logs: masking "1" would garble every line. */
#define MASK_MIN_LEN 4
#define SECRETS_MAX 64
/* "atragt_" and at least this many base64url characters is masked: a
 * token cut by a line break still gives nothing away. */
#define TOKEN_TAIL_MIN 16

typedef struct secrets {
  char *v[SECRETS_MAX];
  size_t n;
} secrets_t;

static void secrets_free(secrets_t *s) {
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  s->n = 0;
}

/* The sensitive parameter values of the agent's build, in clear. */
static int load_secrets(atr_db_t *db, const char *build_id, secrets_t *s,
                        char **err) {
  atr_value_t p[] = {atr_v_text(build_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT p.value, p.value_key_id FROM workspace_build_parameters p "
      "JOIN workspace_builds b ON b.id = p.workspace_build_id JOIN "
      "template_version_parameters tp ON tp.template_version_id = "
      "b.template_version_id AND tp.name = p.name WHERE "
      "p.workspace_build_id = ? AND tp.sensitive = TRUE",
      p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *v = atr_db_get_text(db, rows, 0);
    char *value = NULL;
    size_t len = 0;
    rc = atr_dbcrypt_read(db->store, ATR_DBCRYPT_PARAM, v ? v : "",
                          v ? strlen(v) : 0, atr_db_get_text(db, rows, 1),
                          &value, &len, err);
    if (rc != 0)
      break;
    if (value && strlen(value) >= MASK_MIN_LEN && s->n < SECRETS_MAX)
      s->v[s->n++] = value;
    else
      free(value);
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static bool b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* text with every secret and every token-shaped run replaced (malloc'd). */
static char *mask(const secrets_t *s, const char *text) {
  char *out = atr__agent_cut(text, LINE_MAX);
  for (size_t i = 0; out && i < s->n; i++) {
    size_t slen = strlen(s->v[i]);
    char *hit;
    while (out && (hit = strstr(out, s->v[i])) != NULL) {
      char *next = NULL;
      if (asprintf(&next, "%.*s%s%s", (int)(hit - out), out, MASK, hit + slen) <
          0)
        next = NULL;
      free(out);
      out = next;
    }
  }
  size_t plen = strlen(ATR_AGENT_TOKEN_PREFIX);
  char *from = out;
  char *hit;
  while (out && (hit = strstr(from, ATR_AGENT_TOKEN_PREFIX)) != NULL) {
    size_t tail = 0;
    while (b64url_char(hit[plen + tail]))
      tail++;
    if (tail < TOKEN_TAIL_MIN) {
      from = hit + plen;
      continue;
    }
    memset(hit + plen, '*', tail); /* the length stays; no secret does */
    from = hit + plen + tail;
  }
  return out;
}

/* ---- append ------------------------------------------------------------- */

typedef struct append {
  const atr_actor_t *actor;
  const char *source_id;
  const atr_agent_log_line_t *lines;
  size_t n;
  secrets_t secrets;
  int64_t acked;
  bool bad_source;
} append_t;

static int source_known(atr_db_t *db, append_t *a, char **err) {
  atr_value_t p[] = {atr_v_text(a->actor->agent_id), atr_v_text(a->source_id)};
  int64_t n = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM workspace_agent_log_sources "
                            "WHERE agent_id = ? AND id = ?",
                            p, 2, &n, err);
  if (rc == 0 && n == 0) {
    a->bad_source = true;
    return ATR_EINVAL;
  }
  return rc;
}

typedef struct totals {
  int64_t lines, length;
  bool overflowed;
} totals_t;

static int read_totals(atr_db_t *db, const char *agent_id, totals_t *t,
                       char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT log_lines, logs_length, logs_overflowed FROM "
                        "workspace_agents WHERE id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    t->lines = atr_db_get_int(db, rows, 0);
    t->length = atr_db_get_int(db, rows, 1);
    t->overflowed = atr_db_get_bool(db, rows, 2);
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_EACCES;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static const char *level_of(const char *level) {
  static const char *const ok[] = {"trace", "debug", "info", "warn", "error"};
  for (size_t i = 0; level && i < 5; i++)
    if (strcmp(level, ok[i]) == 0)
      return ok[i];
  return "info";
}

/* One line, once: a seq already stored changes nothing. */
static int insert_line(atr_db_t *db, append_t *a, const atr_agent_log_line_t *l,
                       totals_t *t, char **err) {
  char *out = mask(&a->secrets, l->output ? l->output : "");
  if (!out)
    return ATR_ENOMEM;
  int64_t len = (int64_t)strlen(out);
  if (t->overflowed || t->length + len > ATR__AGENT_LOGS_MAX) {
    t->overflowed = true; /* dropped, and acked: resending cannot help */
    free(out);
    return 0;
  }
  int64_t at = l->created_at_us > 0 ? l->created_at_us : atr_db_now_us();
  atr_value_t p[] = {atr_v_text(a->actor->agent_id),
                     atr_v_text(a->source_id),
                     atr_v_int(l->seq),
                     atr_v_int(t->lines + 1),
                     atr_v_time(at),
                     atr_v_text(level_of(l->level)),
                     atr_v_text(out)};
  int64_t changes = 0;
  int rc = atr_db_exec(db,
                       "INSERT INTO workspace_agent_logs (agent_id, "
                       "source_id, seq, id, created_at, level, output) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, "
                       "source_id, seq) DO NOTHING",
                       p, 7, &changes, err);
  free(out);
  if (rc == 0 && changes > 0) {
    t->lines++;
    t->length += len;
  }
  return rc;
}

static int append_tx(atr_db_t *db, void *ud, char **err) {
  append_t *a = ud;
  /* Locks the row: appends of one agent are serialized, so line ids
   * (log_lines + 1) never collide. */
  int rc = atr__agent_live(db, a->actor->agent_id, err);
  if (rc == 0)
    rc = source_known(db, a, err);
  totals_t t = {0};
  if (rc == 0)
    rc = read_totals(db, a->actor->agent_id, &t, err);
  int64_t top = 0;
  for (size_t i = 0; rc == 0 && i < a->n; i++) {
    rc = insert_line(db, a, &a->lines[i], &t, err);
    if (a->lines[i].seq > top)
      top = a->lines[i].seq;
  }
  atr_value_t p[] = {atr_v_int(t.lines), atr_v_int(t.length),
                     atr_v_bool(t.overflowed), atr_v_text(a->actor->agent_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "UPDATE workspace_agents SET log_lines = ?, logs_length "
                     "= ?, logs_overflowed = ? WHERE id = ?",
                     p, 4, NULL, err);
  atr_value_t q[] = {atr_v_text(a->actor->agent_id), atr_v_text(a->source_id)};
  int64_t stored = 0;
  if (rc == 0)
    rc = atr_db_query_int(db,
                          "SELECT COALESCE(MAX(seq), 0) FROM "
                          "workspace_agent_logs WHERE agent_id = ? AND "
                          "source_id = ?",
                          q, 2, &stored, err);
  /* Past the cap the batch is dropped yet acked. */
  a->acked = t.overflowed && top > stored ? top : stored;
  return rc;
}

static int check_batch(const atr_agent_log_line_t *lines, size_t n,
                       atr_fault_t *fault) {
  if (n > BATCH_MAX)
    return atr_fault_set(fault, ATR_EINVAL, "Invalid logs.",
                         "A batch holds at most %d lines; this one has %zu.",
                         BATCH_MAX, n);
  for (size_t i = 0; i < n; i++)
    if (lines[i].seq <= 0)
      return atr_fault_set(fault, ATR_EINVAL, "Invalid logs.",
                           "Line %zu has seq %lld; seq counts from 1.", i,
                           (long long)lines[i].seq);
  return 0;
}

int atr_agent_logs_append(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *source_id,
                          const atr_agent_log_line_t *lines, size_t n,
                          int64_t *acked_seq, atr_fault_t *fault) {
  *acked_seq = 0;
  int rc = atr__agent_only(actor, fault);
  if (rc == 0 && !atr_uuid_valid(source_id))
    rc = atr_fault_set(fault, ATR_EINVAL, "Invalid logs.",
                       "log_source_id must be the UUID of one of the "
                       "manifest's log_sources.");
  if (rc == 0)
    rc = check_batch(lines, n, fault);
  if (rc != 0)
    return rc;
  append_t a = {.actor = actor, .source_id = source_id, .lines = lines, .n = n};
  char *err = NULL;
  atr_db_t db;
  rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = load_secrets(&db, actor->build_id, &a.secrets, &err);
  atr_db_close(&db);
  if (rc == 0)
    rc = atr_db_tx(dom->store, ATR_TX_WRITE, append_tx, &a, &err);
  if (rc == 0)
    *acked_seq = a.acked;
  else if (rc == ATR_EACCES)
    atr__agent_refused(fault);
  else if (a.bad_source)
    atr_fault_set(fault, ATR_EINVAL, "Invalid logs.",
                  "%s is not one of the agent's log sources.", source_id);
  else
    atr_fault_internal(fault, rc, err);
  free(err);
  secrets_free(&a.secrets);
  return rc;
}

/* Each source's highest stored seq into list. */
static int read_state(atr_db_t *db, const char *agent_id, json_t *list,
                      char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT s.id, (SELECT COALESCE(MAX(l.seq), 0) FROM "
                        "workspace_agent_logs l WHERE l.agent_id = s.agent_id "
                        "AND l.source_id = s.id) FROM "
                        "workspace_agent_log_sources s WHERE s.agent_id = ? "
                        "ORDER BY s.id",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(list,
                          json_pack("{s:s, s:I}", "log_source_id",
                                    atr_row_text(db, rows, 0), "last_seq",
                                    (json_int_t)atr_db_get_int(db, rows, 1)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_agent_logs_state(const atr_domain_t *dom, const atr_actor_t *actor,
                         json_t **out, atr_fault_t *fault) {
  *out = NULL;
  int rc = atr__agent_only(actor, fault);
  atr_db_t db;
  if (rc == 0)
    rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(actor->agent_id)};
  char *err = NULL;
  int64_t live = 0;
  json_t *list = json_array();
  rc = atr_db_query_int(&db,
                        "SELECT COUNT(*) FROM workspace_agents WHERE id = ? "
                        "AND revoked_at IS NULL",
                        p, 1, &live, &err);
  if (rc == 0 && live == 0)
    rc = ATR_EACCES;
  if (rc == 0)
    rc = read_state(&db, actor->agent_id, list, &err);
  atr_db_close(&db);
  if (rc == 0)
    *out = json_pack("{s:o}", "sources", list);
  else {
    json_decref(list);
    if (rc == ATR_EACCES)
      atr__agent_refused(fault);
    else
      atr_fault_internal(fault, rc, err);
  }
  free(err);
  return rc;
}
