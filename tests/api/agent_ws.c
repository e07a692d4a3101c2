/* tests/api/agent_ws.c — a workspace with an agent for the API tests
 * (agent_ws.h). The server's database is opened in this process through
 * the same configuration and storage plugin the server runs with. */
#include "agent_ws.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "dbcrypt.h"
#include "domain.h"

/* The agent spec a version with `agent:` stores (HELPERS.md). */
static const char SPEC[] =
    "{\"name\":\"main\",\"arch\":\"amd64\",\"directory\":\"\",\"env\":{},"
    "\"connection_timeout_s\":120,\"startup_script\":\"echo started\","
    "\"startup_script_behavior\":\"non-blocking\","
    "\"startup_script_timeout_s\":300,\"shutdown_script\":\"\","
    "\"shutdown_script_timeout_s\":300,\"motd_file\":\"\","
    "\"troubleshooting_url\":\"\",\"metadata\":[{\"key\":\"load\","
    "\"display_name\":\"Load\",\"script\":\"cat /proc/loadavg\","
    "\"interval_s\":10,\"timeout_s\":1}],\"apps\":[{\"slug\":\"code-server\","
    "\"display_name\":\"code-server\",\"url\":\"http://localhost:13337/\","
    "\"icon\":\"\",\"share\":\"owner\",\"subdomain\":false}]}";

static const char *env_get(const char *name) {
  return getenv(name);
}

/* fn(store, ud) on the server's store, opened here (its relative
 * data_dir resolved from the server's directory). */

static void with_store(const srv_t *s, void (*fn)(atr_store_t *, void *),
                       void *ud) {
  char cwd[PATH_MAX];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(s->h.dir), 0);
  atr_app_t app;
  atr_overrides_t flags = {0};
  char *err = NULL;
  int rc = atr_app_load(&app, s->h.config, &flags, env_get, &err);
  if (rc == 0)
    rc = atr_app_load_storage(&app, &err);
  if (rc == 0)
    rc = atr_app_open_store(&app, false, &err);
  if (rc != 0)
    fail_msg("opening the server's database: %s", err ? err : "?");
  fn(&app.store, ud);
  atr_app_free(&app);
  assert_int_equal(chdir(cwd), 0);
}

typedef struct make_call {
  const agent_ws_t *a;
  const char *spec;
  char digest[37];
} make_call_t;

static int make_tx(atr_db_t *db, void *ud, char **err) {
  make_call_t *m = ud;
  return atr_agents_make_for_build(db, m->a->ws, m->a->build, m->a->resource,
                                   m->spec, m->digest, err);
}

static void make_agent(atr_store_t *store, void *ud) {
  char *err = NULL;
  int rc = atr_db_tx(store, ATR_TX_WRITE, make_tx, ud, &err);
  if (rc != 0)
    fail_msg("atr_agents_make_for_build: %s", err ? err : "?");
}

/* The first resource of the build, and the agent on it. */
static void read_build(const srv_t *s, agent_ws_t *a) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/resources", a->build);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  json_t *res = json_array_get(r.json, 0);
  snprintf(a->resource, sizeof a->resource, "%s", jstr(res, "id"));
  json_t *agent = json_array_get(json_object_get(res, "agents"), 0);
  snprintf(a->agent_id, sizeof a->agent_id, "%s",
           agent ? jstr(agent, "id") : "");
  atr_tc_res_free(&r);
}

void agent_workspace(const srv_t *s, const char *name, agent_ws_t *a) {
  agent_workspace_spec(s, name, SPEC, a);
}

void agent_workspace_spec(const srv_t *s, const char *name, const char *spec,
                          agent_ws_t *a) {
  memset(a, 0, sizeof *a);
  tmpl_t t;
  make_template(s, name, &t);
  new_workspace(s, name, &t, VALUES("flavor", "large"), a->ws, a->build);
  wait_build(s, a->build, "running");
  read_build(s, a);
  assert_string_equal(a->agent_id, ""); /* the echo made none */
  atr_agent_token_new(a->token);
  remember(a->token);
  make_call_t m = {.a = a, .spec = spec};
  atr_dbcrypt_token_digest(a->token, m.digest);
  with_store(s, make_agent, &m);
  read_build(s, a);
  assert_int_equal(strlen(a->agent_id), 36);
  atr_tc_res_t r = agent_call(s, a, "GET", me("manifest"), NULL);
  ASSERT_ANSWER(r, 200);
  json_t *src = json_array_get(json_object_get(r.json, "log_sources"), 0);
  assert_non_null(src);
  const char *id = jstr(src, "id");
  if (strcmp(id, "(missing)") == 0)
    id = jstr(src, "log_source_id");
  snprintf(a->source_id, sizeof a->source_id, "%s", id);
  atr_tc_res_free(&r);
}

atr_tc_res_t agent_call(const srv_t *s, const agent_ws_t *a, const char *method,
                        const char *path, json_t *body) {
  atr_tc_res_t r = atr_tc_call(s->h.port, &(atr_tc_req_t){.method = method,
                                                          .path = path,
                                                          .token = a->token,
                                                          .body = body});
  json_decref(body);
  return r;
}

const char *me(const char *what) {
  static char buf[4][128];
  static int next;
  char *b = buf[next++ % 4];
  snprintf(b, sizeof buf[0], "/api/v2/workspaceagents/me/%s", what);
  return b;
}

typedef struct conn_call {
  const agent_ws_t *a;
  bool revoke;
} conn_call_t;

static int revoke_tx(atr_db_t *db, void *ud, char **err) {
  const conn_call_t *c = ud;
  return atr_agents_revoke(db, c->a->ws, NULL, err);
}

static void on_store(atr_store_t *store, void *ud) {
  conn_call_t *c = ud;
  char *err = NULL;
  if (c->revoke) {
    if (atr_db_tx(store, ATR_TX_WRITE, revoke_tx, c, &err) != 0)
      fail_msg("atr_agents_revoke: %s", err ? err : "?");
    return;
  }
  atr_domain_t dom = {.store = store};
  atr_actor_t actor;
  atr_fault_t f = {0};
  assert_int_equal(atr_agent_authenticate(&dom, c->a->token, &actor, &f), 0);
  assert_int_equal(atr_agent_connected(&dom, &actor, NULL, &f), 0);
  atr_fault_clear(&f);
}

void agent_connects(const srv_t *s, const agent_ws_t *a) {
  conn_call_t c = {.a = a};
  with_store(s, on_store, &c);
}

void agent_revoke(const srv_t *s, const agent_ws_t *a) {
  conn_call_t c = {.a = a, .revoke = true};
  with_store(s, on_store, &c);
}
