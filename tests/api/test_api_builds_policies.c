/* tests/api/test_api_builds_policies.c — Lua policies on workspaces and
 * builds: a deployment policy and a template's own deny, warn and set,
 * each decision audited; SIGHUP reloads them. See builds.h. */
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "builds.h"

/* Deployment policies: caps.lua in a directory of the test's own. */
static char policy_dir[64];
static char policy_glob[128];

static const char CAPS_LUA[] =
    "function workspace_create(input)\n"
    "  if policy.number(input, 'cpus') > 4 then\n"
    "    policy.deny('at most 4 CPUs here', 'cpus')\n"
    "  end\n"
    "  policy.warn('workspaces stop at night')\n"
    "end\n"
    "function build(input)\n"
    "  if input.transition == 'start' and policy.number(input, 'cpus') > 4 "
    "then\n"
    "    policy.deny('at most 4 CPUs here', 'cpus')\n"
    "  end\n"
    "  if input.transition == 'stop' then policy.warn('stopping ' .. "
    "input.workspace.name) end\n"
    "end\n"
    "function schedule(input)\n"
    "  local n = input.schedule.new\n"
    "  if n.autostart and n.autostart:find('0,6', 1, true) then\n"
    "    policy.deny('no autostart at weekends', 'schedule')\n"
    "  end\n"
    "  if n.ttl_ms and n.ttl_ms > 28800000 then\n"
    "    policy.set('ttl_ms', '28800000')\n"
    "    policy.warn('autostop capped at 8 hours')\n"
    "  end\n"
    "end\n"
    "function template_push(input)\n"
    "  for _, p in ipairs(input.manifest.parameters) do\n"
    "    if p.name == 'forbidden' then policy.deny('no parameter may be "
    "called forbidden') end\n"
    "  end\n"
    "end\n";

static int server_up_policies(void **state) {
  snprintf(policy_dir, sizeof policy_dir, "/tmp/atrium-policies-XXXXXX");
  if (!mkdtemp(policy_dir))
    return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(CAPS_LUA, f);
  fclose(f);
  snprintf(policy_glob, sizeof policy_glob, "[%s/*.lua]", policy_dir);
  static srv_opts_t o = {.delay = "200ms"};
  o.policy_files = policy_glob;
  return builds_start(state, &o);
}

static int server_down_policies(void **state) {
  int rc = srv_stop(state);
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  unlink(path);
  rmdir(policy_dir);
  return rc;
}

/* The template's own policy: it asks for the large flavor in eu, and tries
 * to lift the deployment's CPU cap by setting cpus to 2 on a request for
 * 8 — which does not undo the deployment's deny. */
static const char TEMPLATE_POLICY_LUA[] =
    "function workspace_create(input)\n"
    "  if input.parameters.new.region == 'eu' then policy.set('flavor', "
    "'large') end\n"
    "  if policy.number(input, 'cpus') > 4 then policy.set('cpus', '2') end\n"
    "end\n";

static size_t policy_audits(const srv_t *s) {
  atr_tc_res_t r = get(s, "/api/v2/audit?limit=1000", s->owner_token);
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(json_object_get(r.json, "audit_logs"), i, e) {
    if (strcmp(jstr(e, "action"), "policy") == 0)
      n++;
  }
  atr_tc_res_free(&r);
  return n;
}

/* Template "pol": TEMPLATE_YAML with TEMPLATE_POLICY_LUA as its policy. */
static void make_policy_template(const srv_t *s, tmpl_t *t) {
  char yaml[2048];
  snprintf(yaml, sizeof yaml, "%spolicy: policy.lua\n", TEMPLATE_YAML);
  const char *files[] = {"template.yaml", yaml, "policy.lua",
                         TEMPLATE_POLICY_LUA, NULL};
  char file[64], version[37], path[128];
  upload(s, files, file);
  create_version(s, file, "v1", NULL, version);
  version_path(path, sizeof path, version);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(
      s, "POST", path, s->owner_token,
      json_pack("{s:s, s:s}", "name", "pol", "template_version_id", version));
  ASSERT_ANSWER(r, 201);
  snprintf(t->id, sizeof t->id, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

/* Create: denied with 8 CPUs although the template set 2; allowed with
 * 2, warned, and the template set the flavor. The workspace's id. */
static void policies_on_create(const srv_t *s, const tmpl_t *t, char ws[37]) {
  /* create with 8 CPUs: denied, although the template set 2 */
  atr_tc_res_t r = create_workspace(s, s->owner_token, "me", "big", t->id,
                                    VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  assert_string_equal(field(&r, "message"), "Denied by policy.");
  json_t *v = json_array_get(json_object_get(r.json, "validations"), 0);
  assert_string_equal(jstr(v, "field"), "cpus");
  assert_string_equal(jstr(v, "detail"), "at most 4 CPUs here");
  json_t *d = json_array_get(json_object_get(r.json, "denies"), 0);
  assert_string_equal(jstr(d, "policy"), "caps.lua");
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/me/workspace/big", s->owner_token);
  assert_int_equal(r.status, 404);
  atr_tc_res_free(&r);

  /* create with 2: allowed, warned, and the template set flavor */
  r = create_workspace(s, s->owner_token, "me", "ok", t->id,
                       VALUES("cpus", "2", "flavor", "small"));
  ASSERT_ANSWER(r, 201);
  json_t *w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "workspaces stop at night");
  assert_string_equal(jstr(w, "policy"), "caps.lua");
  char b1[37], path[128];
  snprintf(ws, 37, "%s", field(&r, "id"));
  snprintf(b1, sizeof b1, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", b1);
  r = get(s, path, s->owner_token);
  size_t i;
  json_t *p;
  bool large = false;
  json_array_foreach(r.json, i, p) {
    if (strcmp(jstr(p, "name"), "flavor") == 0)
      large = strcmp(jstr(p, "value"), "large") == 0;
  }
  assert_true(large);
  atr_tc_res_free(&r);
}

/* Build: 6 CPUs denied by the build hook, nothing queued; stop warned. */
static void policies_on_build(const srv_t *s, const char *ws) {
  /* a build asking for 6: denied by the build hook; nothing queued */
  size_t before = count_builds(s, ws);
  atr_tc_res_t r =
      post_build(s, s->owner_token, ws, "start", VALUES("cpus", "6"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "caps.lua: at most 4 CPUs here");
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), before);

  /* stop: warned by name */
  r = post_build(s, s->owner_token, ws, "stop", NULL);
  ASSERT_ANSWER(r, 201);
  json_t *w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "stopping ok");
  char b2[37];
  snprintf(b2, sizeof b2, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
  wait_build(s, b2, "stopped");
}

/* Schedule: a weekend autostart is denied, a long autostop capped. */
static void policies_on_schedule(const srv_t *s, const char *ws) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/autostart", ws);
  atr_tc_res_t r = call(s, "PUT", path, s->owner_token,
                        json_pack("{s:s}", "schedule", "30 8 * * 0,6"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "no autostart at weekends");
  atr_tc_res_free(&r);
  r = call(s, "PUT", path, s->owner_token,
           json_pack("{s:s}", "schedule", "CRON_TZ=Europe/Paris 30 8 * * 1-5"));
  ASSERT_ANSWER(r, 200);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/ttl", ws);
  r = call(s, "PUT", path, s->owner_token,
           json_pack("{s:I}", "ttl_ms", (json_int_t)36000000));
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "ttl_ms")),
                   28800000);
  json_t *w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "autostop capped at 8 hours");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_int_equal(json_integer_value(json_object_get(r.json, "ttl_ms")),
                   28800000);
  assert_string_equal(jstr(r.json, "autostart_schedule"),
                      "CRON_TZ=Europe/Paris 30 8 * * 1-5");
  atr_tc_res_free(&r);
}

/* A deployment policy and a template policy together deny, warn and set on
 * create and on build; the template cannot loosen the deployment's deny;
 * every such decision is audited; template_push denies an import. */
static void policies_deny_warn_and_set(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t = {0};
  char ws[37], yaml[2048], file[64], version[37], path[128];
  make_policy_template(s, &t);
  policies_on_create(s, &t, ws);
  policies_on_build(s, ws);
  policies_on_schedule(s, ws);

  /* deny (create), warn+set (create), deny (build), warn (stop), deny
   * (autostart), warn+set (ttl) */
  assert_int_equal(policy_audits(s), 6);

  /* template_push: the deployment refuses a parameter name */
  snprintf(yaml, sizeof yaml,
           "name: bad\nprovisioner: echo\nparameters:\n"
           "  - name: forbidden\n    type: string\n    default: x\n");
  upload_yaml(s, yaml, file);
  create_version(s, file, "v2", NULL, version);
  version_path(path, sizeof path, version);
  atr_tc_res_t r = wait_end(s, path, "failed", BUILD_MS);
  assert_contains(jstr(json_object_get(r.json, "job"), "error"),
                  "no parameter may be called forbidden");
  atr_tc_res_free(&r);
}

static void write_policy(const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* SIGHUP reloads the deployment policies; a file that does not compile
 * keeps the running ones and the log says why. */
static void policies_reload_on_sighup(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  atr_tc_res_t r = create_workspace(s, s->owner_token, "me", "a", t.id,
                                    VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  atr_tc_res_free(&r);

  write_policy("function workspace_create(input)\n  policy.deny('x' end\n");
  kill(s->h.pid, SIGHUP);
  assert_true(atr_harness_wait_log(
      &s->h, "reload failed, the previous policies stay in force", 5000));
  assert_true(atr_harness_wait_log(&s->h, "caps.lua:2:", 0));
  r = create_workspace(s, s->owner_token, "me", "a", t.id,
                       VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "at most 4 CPUs here");
  atr_tc_res_free(&r);

  write_policy("function workspace_create(input)\n"
               "  policy.deny('closed for maintenance')\nend\n");
  kill(s->h.pid, SIGHUP);
  /* the new policy answers within a few seconds */
  bool changed = false;
  for (int i = 0; i < 100 && !changed; i++) {
    char name[16]; /* a new name each time: an early try may succeed */
    snprintf(name, sizeof name, "b%d", i);
    r = create_workspace(s, s->owner_token, "me", name, t.id,
                         VALUES("cpus", "2", "flavor", "small"));
    changed = r.status == 403 &&
              strstr(field(&r, "detail"), "closed for maintenance") != NULL;
    atr_tc_res_free(&r);
    if (!changed)
      atr_harness_sleep_ms(50);
  }
  assert_true(changed);
  write_policy(CAPS_LUA);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T_WITH2(policies_deny_warn_and_set, server_up_policies,
              server_down_policies),
      T_WITH2(policies_reload_on_sighup, server_up_policies,
              server_down_policies),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  return BUILDS_MAIN("api_builds_policies", tests);
}
