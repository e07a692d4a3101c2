/* tests/unit/audit_fixture.c — the audit log test's store, requests and
 * row readers (audit_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "api_audit.h"
#include "atrium/error.h"
#include "audit.h"
#include "audit_fixture.h"
#include "audit_query.h"
#include "db.h"
#include "log.h"

atr_api_env_t env;
char alice_id[37], bob_id[37];

/* ---- set-up ------------------------------------------------------------- */

int setup(void **state) {
  (void)state;
  if (fixture_open("audit", NULL) != 0)
    return -1;
  env = (atr_api_env_t){.dom = dom};
  add_user(alice_id, "alice", 0);
  add_user(bob_id, "bob", 0);
  return 0;
}

int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* ---- helpers --------------------------------------------------------------- */

/* A request as the router hands it over, without an HTTP exchange. */
atr_api_req_t request(const char *query) {
  return (atr_api_req_t){.env = &env,
                         .method = "GET",
                         .path = "/api/v2/audit",
                         .query = query,
                         .request_id = REQUEST_ID,
                         .remote_ip = FIXTURE_IP,
                         .user_agent = FIXTURE_USER_AGENT};
}

/* Record as the domain does for the request's actor. */
void record(const atr_api_req_t *r, const atr_audit_entry_t *e) {
  atr_actor_t a = r->signed_in ? r->actor : (atr_actor_t){0};
  a.ip = r->remote_ip;
  a.user_agent = r->user_agent;
  a.request_id = r->request_id;
  a.org_id = r->org_id[0] ? r->org_id : NULL;
  atr_audit_record(env.dom.store, &a, e);
}

atr_api_req_t signed_in_as(const char *user_id, const char *username) {
  atr_api_req_t r = request(NULL);
  r.signed_in = true;
  snprintf(r.actor.user_id, sizeof r.actor.user_id, "%s", user_id);
  snprintf(r.actor.username, sizeof r.actor.username, "%s", username);
  return r;
}

void text_col(json_t *row, const char *name, atr_db_t *db, atr_db_rows_t *rows,
              size_t col) {
  const char *s = atr_db_get_text(db, rows, col);
  json_object_set_new(row, name, s ? json_string(s) : json_null());
}

/* The stored row whose resource_target is `target`, column by column. */
json_t *stored_row(const char *target) {
  static const char *const names[] = {
      "id",         "user_id",       "organization_id",   "ip",
      "user_agent", "resource_type", "resource_id",       "resource_target",
      "action",     "diff",          "additional_fields", "request_id"};
  atr_db_t db;
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  atr_value_t p[] = {atr_v_text(target)};
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_db_query(&db,
                    "SELECT id, user_id, organization_id, ip, user_agent, "
                    "resource_type, resource_id, resource_target, action, "
                    "diff, additional_fields, request_id, time, status_code "
                    "FROM audit_logs WHERE resource_target = ?",
                    p, 1, &rows, &err),
       &err);
  json_t *row = NULL;
  if (atr_db_next(&db, rows, &err) == 1) {
    row = json_object();
    for (size_t i = 0; i < 12; i++)
      text_col(row, names[i], &db, rows, i);
    json_object_set_new(row, "time",
                        json_integer(atr_db_get_time(&db, rows, 12)));
    json_object_set_new(row, "status_code",
                        json_integer(atr_db_get_int(&db, rows, 13)));
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  if (!row)
    fail_msg("no audit_logs row with resource_target %s", target);
  return row;
}

/* Every text the table holds, one line per row. */
char *table_text(void) {
  atr_db_t db;
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_db_query(&db,
                    "SELECT id, user_id, organization_id, ip, user_agent, "
                    "resource_type, resource_id, resource_target, "
                    "resource_icon, action, diff, additional_fields, "
                    "request_id FROM audit_logs",
                    NULL, 0, &rows, &err),
       &err);
  char *all = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&all, &len);
  while (atr_db_next(&db, rows, &err) == 1) {
    for (size_t i = 0; i < 13; i++) {
      const char *s = atr_db_get_text(&db, rows, i);
      fprintf(out, "%s|", s ? s : "NULL");
    }
    fputc('\n', out);
  }
  fclose(out);
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  return all;
}

void assert_json_equal(json_t *got, const char *want_text) {
  json_error_t jerr;
  json_t *want = json_loads(want_text, 0, &jerr);
  if (!want)
    fail_msg("bad expected JSON: %s", jerr.text);
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_SORT_KEYS);
    fail_msg("got  %s\nwant %s", g, w);
  }
  json_decref(want);
}

void assert_row(const char *target, const char *want) {
  json_t *row = stored_row(target);
  json_t *id = json_object_get(row, "id");
  assert_int_equal(strlen(json_string_value(id)), 36);
  assert_string_not_equal(json_string_value(id), NIL_UUID);
  json_object_del(row, "id");
  json_int_t age =
      atr_db_now_us() - json_integer_value(json_object_get(row, "time"));
  assert_true(age >= 0 && age < 60 * INT64_C(1000000));
  json_object_del(row, "time");
  assert_json_equal(row, want);
  json_decref(row);
}

/* Log lines written while fn runs. */
char *logged_during(void (*fn)(void)) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  atr_log_set_stream(f);
  fn();
  atr_log_set_stream(NULL);
  fclose(f);
  return text;
}
