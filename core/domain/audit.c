/* core/audit.c — writes audit_logs rows; see audit.h.
 *
 * Two rules shape this file. The row must fit the schema whatever the
 * caller passes (ids that are not UUIDs, a missing request id), because a
 * refused insert would lose the entry. And no secret may reach the row:
 * diff entries marked secret, or named like a secret, keep only the fact
 * that the field changed. */
#include "audit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"
#include "log.h"
#include "observe.h"

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

/* ---- values ------------------------------------------------------------ */

/* A UUID (any case) copied lower-case into out, as the core writes them;
 * false when s is not one. */
static bool uuid_lower(const char *s, char out[37]) {
  if (!s || !atr_uuid_valid(s))
    return false;
  for (size_t i = 0; i <= 36; i++)
    out[i] = (char)tolower((unsigned char)s[i]);
  return true;
}

/* An id column: the UUID when `value` is one; otherwise the fallback
 * (NULL or the nil UUID), and the original in `extra` under `name` so the
 * entry still says what it was about. */
static const char *id_column(const char *value, const char *name,
                             const char *fallback, json_t *extra,
                             char out[37]) {
  if (uuid_lower(value, out))
    return out;
  if (value && *value)
    json_object_set_new(extra, name, json_string(value));
  return fallback;
}

static const char *text_or_null(const char *s) {
  return s && *s ? s : NULL;
}

/* ---- secrets ------------------------------------------------------------ */

/* Field names whose values are secrets, exactly or as a suffix
 * ("client_secret", "oauth_access_token", "private_key"). */
static bool secret_name(const char *field) {
  static const char *const exact[] = {"password", "hashed_password", "token",
                                      "secret",   "session_token",   "key"};
  static const char *const suffix[] = {"_password", "_secret", "_token", "_key",
                                       "_passcode"};
  size_t n = strlen(field);
  for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
    if (strcasecmp(field, exact[i]) == 0)
      return true;
  for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
    size_t len = strlen(suffix[i]);
    if (n > len && strcasecmp(field + n - len, suffix[i]) == 0)
      return true;
  }
  return false;
}

static json_t *secret_entry(void) {
  return json_pack("{s:n, s:n, s:b}", "old", "new", "secret", 1);
}

/* A copy of a diff value in which every member named like a secret, at
 * any depth, is null. */
static json_t *scrub_value(json_t *v) {
  if (json_is_array(v)) {
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
      json_array_append_new(out, scrub_value(item));
    }
    return out;
  }
  if (!json_is_object(v))
    return v ? json_deep_copy(v) : json_null();
  json_t *out = json_object();
  const char *name;
  json_t *member;
  json_object_foreach(v, name, member) {
    json_object_set_new(out, name,
                        secret_name(name) ? json_null() : scrub_value(member));
  }
  return out;
}

/* The diff as it may be stored: {"field": {"old", "new", "secret"}} with
 * secret entries emptied, whoever built it. */
static json_t *scrub_diff(json_t *diff) {
  json_t *out = json_object();
  const char *field;
  json_t *entry;
  json_object_foreach(diff, field, entry) {
    json_t *clean;
    if (secret_name(field) || json_is_true(json_object_get(entry, "secret")))
      clean = secret_entry();
    else if (json_is_object(entry))
      clean = json_pack(
          "{s:o, s:o, s:b}", "old", scrub_value(json_object_get(entry, "old")),
          "new", scrub_value(json_object_get(entry, "new")), "secret", 0);
    else /* not the documented shape: keep it as the new value */
      clean = json_pack("{s:n, s:o, s:b}", "old", "new", scrub_value(entry),
                        "secret", 0);
    json_object_set_new(out, field, clean);
  }
  return out;
}

void atr_audit_diff_add(json_t **diff, const char *field, const char *old_value,
                        const char *new_value, bool secret) {
  if (!diff || !field || !*field)
    return;
  if (!*diff)
    *diff = json_object();
  json_t *entry;
  if (secret || secret_name(field))
    entry = secret_entry();
  else
    entry = json_pack("{s:o, s:o, s:b}", "old",
                      old_value ? json_string(old_value) : json_null(), "new",
                      new_value ? json_string(new_value) : json_null(),
                      "secret", 0);
  json_object_set_new(*diff, field, entry);
}

/* ---- the row ------------------------------------------------------------ */

typedef struct row {
  atr_value_t v[14];
} row_t;

static int insert_row(atr_db_t *db, void *user_data, char **err) {
  const row_t *row = user_data;
  return atr_db_exec(
      db,
      "INSERT INTO audit_logs (id, time, user_id, organization_id, ip, "
      "user_agent, resource_type, resource_id, resource_target, action, "
      "diff, status_code, additional_fields, request_id) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      row->v, 14, NULL, err);
}

static void log_lost(const atr_actor_t *a, const atr_audit_entry_t *e,
                     const char *why) {
  atr_log(ATR_LOG_ERROR, "audit",
          "entry not recorded (action %s, resource_type %s, request %s): %s",
          e && e->action ? e->action : "(none)",
          e && e->resource_type ? e->resource_type : "(none)",
          a && a->request_id ? a->request_id : "(none)", why);
}

/* Who acted: the entry's user (a login), else the signed-in actor. */
static const char *actor_id(const atr_actor_t *a, const atr_audit_entry_t *e) {
  if (e->user_id)
    return e->user_id;
  return atr_actor_is_user(a) ? a->user_id : NULL;
}

/* The entry's organization, else the one the caller named. */
static const char *org_id(const atr_actor_t *a, const atr_audit_entry_t *e) {
  if (e->organization_id)
    return e->organization_id;
  return a && a->org_id && *a->org_id ? a->org_id : NULL;
}

void atr_audit_record(atr_store_t *store, const atr_actor_t *a,
                      const atr_audit_entry_t *e) {
  if (!e || !e->action || !*e->action || !e->resource_type ||
      !*e->resource_type || !store) {
    log_lost(a, e,
             store ? "an entry needs an action and a resource_type"
                   : "no store");
    return;
  }
  char id[37], user[37], org[37], resource[37], request[37];
  json_t *extra = json_object();
  if (json_is_object(e->additional))
    json_object_update(extra, e->additional);
  json_t *diff = scrub_diff(e->diff);
  atr_db_new_uuid(id);
  if (a && a->system)
    json_object_set_new(extra, "actor", json_string(a->username));
  const char *user_id = id_column(actor_id(a, e), "user_id", NULL, extra, user);
  const char *org_col =
      id_column(org_id(a, e), "organization_id", NULL, extra, org);
  const char *resource_id =
      id_column(e->resource_id, "resource_id", NIL_UUID, extra, resource);
  const char *request_id = id_column(a ? a->request_id : NULL, "request_id",
                                     NIL_UUID, extra, request);
  char *diff_text = json_dumps(diff, JSON_COMPACT | JSON_SORT_KEYS);
  char *extra_text = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(diff);
  json_decref(extra);
  if (!diff_text || !extra_text) {
    log_lost(a, e, "out of memory");
    free(diff_text);
    free(extra_text);
    return;
  }
  row_t row = {
      {atr_v_text(id), atr_v_time(atr_db_now_us()), atr_v_text(user_id),
       atr_v_text(org_col), atr_v_text(text_or_null(a ? a->ip : NULL)),
       atr_v_text(text_or_null(a ? a->user_agent : NULL)),
       atr_v_text(e->resource_type), atr_v_text(resource_id),
       atr_v_text(e->resource_target ? e->resource_target : ""),
       atr_v_text(e->action), atr_v_text(diff_text), atr_v_int(e->status_code),
       atr_v_text(extra_text), atr_v_text(request_id)}};
  char *err = NULL;
  int rc = atr_db_tx(store, ATR_TX_WRITE, insert_row, &row, &err);
  if (rc != 0)
    log_lost(a, e, err ? err : atr_strerror(rc));
  free(err);
  free(diff_text);
  free(extra_text);
  atr_observe_emit("audit",
                   json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:i, s:b}",
                             "action", e->action, "resource_type",
                             e->resource_type, "resource_id", e->resource_id,
                             "resource_target", e->resource_target, "user_id",
                             user_id, "username", a ? a->username : NULL,
                             "status_code", e->status_code, "stored", rc == 0));
}
