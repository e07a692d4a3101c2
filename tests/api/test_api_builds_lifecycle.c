/* tests/api/test_api_builds_lifecycle.c — a workspace through its
 * builds: created with checked values, stopped, started, deleted; a
 * sensitive value never shown; members building only their own
 * workspaces; twenty created at once. See builds.h. */
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builds.h"

/* ---- 3. the workspace lifecycle ------------------------------------------------- */

/* A refused create: each named field once, and no workspace made. */
static void refused_create(const srv_t *s, const tmpl_t *t, json_t *vals,
                           const char *const *fields,
                           const char *const *details, size_t n) {
  atr_tc_res_t r =
      create_workspace(s, s->owner_token, "me", "ws1", t->id, vals);
  assert_validations(&r, fields, details, n);
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 0);
  assert_int_equal(count_workspaces(s, s->owner_token, "?deleted=true"), 0);
}

/* A refused build: the one field, and no build made. */
static void refused_build(const srv_t *s, const char *ws, json_t *vals,
                          const char *name, const char *detail) {
  size_t before = count_builds(s, ws);
  atr_tc_res_t r = post_build(s, s->owner_token, ws, "start", vals);
  const char *fields[] = {name}, *details[] = {detail};
  assert_validations(&r, fields, details, 1);
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), before);
}

static void the_first_build_runs_with_the_values_given(const srv_t *s,
                                                       const tmpl_t *t,
                                                       char ws[37]) {
  atr_tc_res_t r =
      create_workspace(s, s->owner_token, "me", "ws1", t->id,
                       VALUES("cpus", "4", "region", "us", "flavor", "large"));
  ASSERT_ANSWER(r, 201);
  snprintf(ws, 37, "%s", field(&r, "id"));
  char b1[37];
  json_t *latest = json_object_get(r.json, "latest_build");
  snprintf(b1, sizeof b1, "%s", jstr(latest, "id"));
  assert_int_equal(json_integer_value(json_object_get(latest, "build_number")),
                   1);
  assert_string_equal(jstr(latest, "transition"), "start");
  assert_string_equal(field(&r, "name"), "ws1");
  assert_string_equal(field(&r, "owner_name"), "owner");
  assert_string_equal(field(&r, "template_id"), t->id);
  assert_string_equal(field(&r, "template_name"), "dev");
  assert_false(json_is_true(json_object_get(r.json, "deleted")));
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");

  char path[256];
  build_path(path, sizeof path, b1);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(lines_with(lines, "echo: start workspace ws1, build 1"), 1);
  assert_int_equal(lines_with(lines, "echo: prior state (none)"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter cpus = 4"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter region = us"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter flavor = large"), 1);
  assert_int_equal(lines_with(lines, "echo: start done"), 1);
  json_decref(lines);

  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/resources", b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  json_t *res = json_array_get(r.json, 0);
  assert_string_equal(jstr(res, "type"), "echo");
  assert_string_equal(jstr(res, "name"), "ws1");
  assert_string_equal(jstr(res, "transition"), "start");
  json_t *md = json_array_get(json_object_get(res, "metadata"), 0);
  assert_string_equal(jstr(md, "key"), "id");
  assert_string_equal(jstr(md, "value"), ws);
  atr_tc_res_free(&r);

  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 4);
  assert_string_equal(param(r.json, "cpus"), "4");
  assert_string_equal(param(r.json, "region"), "us");
  assert_string_equal(param(r.json, "flavor"), "large");
  assert_string_equal(param(r.json, "token"), MASKED);
  atr_tc_res_free(&r);
}

/* The template counts `n` workspaces; it can be deleted only without
 * any. */
static void template_in_use(const srv_t *s, const char *tid, json_int_t n) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "workspace_count")), n);
  atr_tc_res_free(&r);
  r = call(s, "DELETE", path, s->owner_token, NULL);
  if (n == 0) {
    ASSERT_ANSWER(r, 204);
    ASSERT_ERROR(404, "Template not found.", get(s, path, s->owner_token));
  } else {
    ASSERT_ANSWER(r, 400);
    assert_contains(field(&r, "detail"), "1 workspace still uses it");
  }
  atr_tc_res_free(&r);
}

static void a_workspace_is_built_stopped_started_and_deleted(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);

  static const char *const three[] = {"cpus", "gpus", "flavor"};
  static const char *const three_why[] = {
      "between 1 and 8", "is not a parameter", "must be one of: small, large"};
  refused_create(s, &t, VALUES("cpus", "99", "gpus", "1", "flavor", "medium"),
                 three, three_why, 3);
  static const char *const flavor[] = {"flavor"};
  static const char *const required[] = {"is required"};
  refused_create(s, &t, VALUES("cpus", "4"), flavor, required, 1);

  char ws[37], b2[37], b3[37], b4[37], path[256];
  the_first_build_runs_with_the_values_given(s, &t, ws);

  refused_build(s, ws, VALUES("region", "eu"), "region", "immutable");
  refused_build(s, ws, VALUES("cpus", "0"), "cpus", "between 1 and 8");

  /* The stop build is held running (not raced against a delay) while
   * the test asks for another one. */
  hold_builds();
  atr_tc_res_t r = post_build(s, s->owner_token, ws, "stop", NULL);
  ASSERT_ANSWER(r, 201);
  snprintf(b2, sizeof b2, "%s", field(&r, "id"));
  assert_int_equal(json_integer_value(json_object_get(r.json, "build_number")),
                   2);
  assert_string_equal(field(&r, "transition"), "stop");
  atr_tc_res_free(&r);
  build_path(path, sizeof path, b2);
  assert_true(wait_log(s, path, "echo: held until", BUILD_MS));
  /* one build at a time */
  ASSERT_STATUS(409, post_build(s, s->owner_token, ws, "start", NULL));
  assert_int_equal(count_builds(s, ws), 2);
  release_builds();
  wait_build(s, b2, "stopped");
  assert_log_lines(s, path, "echo: prior state echo:start:1", 1);

  /* the state of build 2 comes back to build 3; a mutable value changes */
  build(s, ws, "start", VALUES("cpus", "6"), b3);
  wait_build(s, b3, "running");
  build_path(path, sizeof path, b3);
  assert_log_lines(s, path, "echo: prior state echo:stop:2", 1);
  assert_log_lines(s, path, "echo: parameter cpus = 6", 1);
  assert_log_lines(s, path, "echo: parameter region = us", 1);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(jstr2(r.json, "latest_build", "id"), b3);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "running");
  atr_tc_res_free(&r);
  template_in_use(s, t.id, 1);

  build(s, ws, "delete", NULL, b4);
  wait_build(s, b4, "deleted");
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_true(json_is_true(json_object_get(r.json, "deleted")));
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 0);
  assert_int_equal(count_workspaces(s, s->owner_token, "?deleted=true"), 1);
  ASSERT_STATUS(400, post_build(s, s->owner_token, ws, "start", NULL));
  assert_int_equal(count_builds(s, ws), 4);
  template_in_use(s, t.id, 0);
}

/* ---- 4. sensitive values ------------------------------------------------------- */

/* GET path: 200, and no remembered secret in the answer. */
static void assert_clean(const srv_t *s, const char *path) {
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  int found = find_secret(r.body);
  if (found >= 0)
    print_error("secret %s in GET %s: %s\n", secret_at(found), path, r.body);
  assert_int_equal(found, -1);
  atr_tc_res_free(&r);
}

static void assert_build_clean(const srv_t *s, const char *id) {
  char path[256];
  build_path(path, sizeof path, id);
  assert_clean(s, path);
  static const char *const subs[] = {"logs", "parameters", "resources"};
  for (size_t i = 0; i < 3; i++) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
    assert_clean(s, sub);
  }
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  assert_string_equal(param(r.json, "token"), MASKED);
  atr_tc_res_free(&r);
}

static void a_sensitive_value_is_never_shown(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  remember(CANARY);
  remember(CANARY2);
  tmpl_t t;
  make_template(s, "dev", &t);
  /* refused with it: the answer does not echo it */
  atr_tc_res_t r = create_workspace(
      s, s->owner_token, "me", "secret", t.id,
      VALUES("token", CANARY, "cpus", "99", "flavor", "small"));
  ASSERT_ANSWER(r, 400);
  assert_int_equal(find_secret(r.body), -1);
  atr_tc_res_free(&r);

  char ws[37], b1[37], b2[37], b3[37], path[256];
  new_workspace(s, "secret", &t, VALUES("token", CANARY, "flavor", "small"), ws,
                b1);
  wait_build(s, b1, "running");
  build(s, ws, "stop", NULL, b2);
  wait_build(s, b2, "stopped");
  build(s, ws, "start", VALUES("token", CANARY2), b3);
  wait_build(s, b3, "running");
  const char *const builds[] = {b1, b2, b3};
  for (size_t i = 0; i < 3; i++) {
    build_path(path, sizeof path, builds[i]);
    assert_log_lines(s, path, "echo: parameter token = (sensitive)", 1);
    assert_build_clean(s, builds[i]);
  }
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  assert_clean(s, path);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  assert_clean(s, path);
  assert_clean(s, "/api/v2/workspaces");
  assert_clean(s, "/api/v2/users/me/workspace/secret");
  assert_clean(s, "/api/v2/audit?limit=1000");

  char *log = atr_harness_read_log(&s->h);
  int found = find_secret(log);
  free(log);
  assert_int_equal(found, -1); /* and again after shutdown */
}

/* ---- 9. concurrency ---------------------------------------------------------------- */

#define CONCURRENT 20

typedef struct creator {
  const srv_t *s;
  const char *template_id;
  char name[16];
  atr_tc_res_t res;
} creator_t;

static void *create_one(void *arg) {
  creator_t *c = arg;
  json_t *body =
      json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "name", c->name, "template_id",
                c->template_id, "rich_parameter_values", "name", "flavor",
                "value", "small");
  c->res = atr_tc_call(c->s->h.port,
                       &(atr_tc_req_t){.method = "POST",
                                       .path = "/api/v2/users/me/workspaces",
                                       .token = c->s->owner_token,
                                       .body = body});
  json_decref(body);
  return NULL;
}

/* Each workspace's build has a worker, ran once, and reached running. */
static void check_claimed_once(const srv_t *s, creator_t *cs) {
  char workers[CONCURRENT][37];
  size_t nworkers = 0;
  for (int i = 0; i < CONCURRENT; i++) {
    char b[37], path[256];
    snprintf(b, sizeof b, "%s", jstr2(cs[i].res.json, "latest_build", "id"));
    wait_build(s, b, "running");
    build_path(path, sizeof path, b);
    atr_tc_res_t r = get(s, path, s->owner_token);
    const char *w = jstr2(r.json, "job", "worker_id");
    assert_int_equal(strlen(w), 36);
    size_t k = 0;
    while (k < nworkers && strcmp(workers[k], w) != 0)
      k++;
    if (k == nworkers && nworkers < CONCURRENT)
      snprintf(workers[nworkers++], 37, "%s", w);
    atr_tc_res_free(&r);
    assert_log_lines(s, path, " taken by ", 1);
    assert_log_lines(s, path, "echo: start done", 1);
  }
  print_message("%d builds ran on %zu daemons\n", CONCURRENT, nworkers);
  assert_true(nworkers >= 1 && nworkers <= 3);
}

static void twenty_workspaces_created_at_once_all_run(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  creator_t cs[CONCURRENT];
  pthread_t th[CONCURRENT];
  for (int i = 0; i < CONCURRENT; i++) {
    cs[i] = (creator_t){.s = s, .template_id = t.id};
    snprintf(cs[i].name, sizeof cs[i].name, "ws-%02d", i);
    assert_int_equal(pthread_create(&th[i], NULL, create_one, &cs[i]), 0);
  }
  for (int i = 0; i < CONCURRENT; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < CONCURRENT; i++)
    ASSERT_ANSWER(cs[i].res, 201);
  check_claimed_once(s, cs);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), CONCURRENT);
  for (int i = 0; i < CONCURRENT; i++)
    atr_tc_res_free(&cs[i].res);
}

/* ---- 11. permissions --------------------------------------------------------------- */

static void member_checks_on_owner_workspace(const srv_t *s, const char *member,
                                             const char *ws, const char *b) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  atr_tc_res_t r = get(s, path, member);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/owner/workspace/ownerws", member);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  r = post_build(s, member, ws, "stop", NULL);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  static const char *const subs[] = {"", "/logs", "/parameters", "/resources"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s%s", b, subs[i]);
    r = get(s, path, member);
    if (r.status != 403 && r.status != 404)
      print_error("member GET %s: %ld %s\n", path, r.status, r.body);
    assert_true(r.status == 403 || r.status == 404);
    atr_tc_res_free(&r);
  }
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/cancel", b);
  r = call(s, "PATCH", path, member, NULL);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), 1);
}

static void members_build_only_their_own_workspaces(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b[37], file[64], path[256];
  new_workspace(s, "ownerws", &t, VALUES("flavor", "small"), ws, b);
  wait_build(s, b, "running");

  remember(MEMBER_PW);
  ASSERT_STATUS(201,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", MEMBER_EMAIL,
                               "username", "member", "password", MEMBER_PW)));
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  member_checks_on_owner_workspace(s, member, ws, b);
  assert_int_equal(count_workspaces(s, member, ""), 0);
  assert_int_equal(count_workspaces(s, member, "?owner=owner"), 0);

  /* not a template author */
  upload_yaml(s, TEMPLATE_YAML, file);
  ASSERT_STATUS(403,
                post_version(s, member, json_pack("{s:s}", "file_id", file)));
  ASSERT_STATUS(403, create_workspace(s, member, "owner", "forowner", t.id,
                                      VALUES("flavor", "small")));

  /* but a user of the template */
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  atr_tc_res_t r = get(s, path, member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  atr_tc_res_free(&r);
  r = create_workspace(s, member, "me", "mine", t.id,
                       VALUES("flavor", "large"));
  ASSERT_ANSWER(r, 201);
  assert_string_equal(field(&r, "owner_name"), "member");
  char mb[37];
  snprintf(mb, sizeof mb, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
  wait_build(s, mb, "running");
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs", mb);
  ASSERT_STATUS(200, get(s, path, member));
  snprintf(path, sizeof path, "/api/v2/organizations/%s/members/me/workspaces",
           s->org_id);
  r = call(s, "POST", path, member,
           json_pack("{s:s, s:s, s:o}", "name", "mine2", "template_id", t.id,
                     "rich_parameter_values", VALUES("flavor", "small")));
  ASSERT_ANSWER(r, 201);
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, member, ""), 2);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 3);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T(a_workspace_is_built_stopped_started_and_deleted),
      T(a_sensitive_value_is_never_shown),
      T(members_build_only_their_own_workspaces),
      T(twenty_workspaces_created_at_once_all_run),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  return BUILDS_MAIN("api_builds_lifecycle", tests);
}
