/* tests/api/test_api_builds_imports.c — template versions through the
 * API: an archive imported, made a template, renamed and promoted; what a
 * new job is answered with; a bad manifest failing its import naming each
 * problem; what a version needs; a failed version built from. See
 * builds.h. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builds.h"

/* ---- 1. imports ------------------------------------------------------------------ */

static void assert_param(const json_t *p, const char *name, const char *type,
                         bool mutable_, bool sensitive, bool required,
                         const char *def) {
  assert_string_equal(jstr(p, "name"), name);
  assert_string_equal(jstr(p, "type"), type);
  assert_int_equal(json_is_true(json_object_get(p, "mutable")), mutable_);
  assert_int_equal(json_is_true(json_object_get(p, "sensitive")), sensitive);
  assert_int_equal(json_is_true(json_object_get(p, "required")), required);
  assert_false(json_is_true(json_object_get(p, "ephemeral")));
  assert_string_equal(jstr(p, "default_value"), def);
}

static void check_schema(const srv_t *s, const char *version) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/rich-parameters",
           version);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 4);
  json_t *cpus = json_array_get(r.json, 0);
  assert_param(cpus, "cpus", "number", true, false, false, "2");
  assert_string_equal(jstr(cpus, "display_name"), "CPUs");
  assert_true(json_number_value(json_object_get(cpus, "validation_min")) == 1);
  assert_true(json_number_value(json_object_get(cpus, "validation_max")) == 8);
  assert_int_equal(json_integer_value(json_object_get(cpus, "display_order")),
                   1);
  json_t *region = json_array_get(r.json, 1);
  assert_param(region, "region", "string", false, false, false, "eu");
  assert_true(json_is_null(json_object_get(region, "validation_min")));
  assert_true(json_is_null(json_object_get(region, "validation_max")));
  assert_param(json_array_get(r.json, 2), "token", "string", true, true, false,
               "");
  json_t *flavor = json_array_get(r.json, 3);
  assert_param(flavor, "flavor", "string", false, false, true, "");
  assert_string_equal(jstr(flavor, "description"), "Machine size");
  json_t *opts = json_object_get(flavor, "options");
  assert_int_equal(json_array_size(opts), 2);
  assert_string_equal(jstr(json_array_get(opts, 0), "name"), "Small");
  assert_string_equal(jstr(json_array_get(opts, 0), "value"), "small");
  assert_string_equal(jstr(json_array_get(opts, 0), "description"), "2 GB RAM");
  assert_string_equal(jstr(json_array_get(opts, 1), "value"), "large");
  atr_tc_res_free(&r);
}

/* The import's job as the version shows it once it succeeded. */
static void check_import_job(const atr_tc_res_t *r, const char *file) {
  json_t *job = json_object_get(r->json, "job");
  assert_string_equal(jstr(job, "type"), "template_version_import");
  assert_string_equal(jstr(job, "provisioner"), "echo");
  assert_string_equal(jstr(job, "file_id"), file);
  assert_string_equal(jstr(job, "error"), "");
  assert_int_equal(strlen(jstr(job, "worker_id")), 36);
  int64_t created = time_us(json_object_get(job, "created_at"));
  int64_t started = time_us(json_object_get(job, "started_at"));
  int64_t completed = time_us(json_object_get(job, "completed_at"));
  assert_true(created > 0 && started >= created && completed >= started);
  assert_true(json_is_null(json_object_get(job, "canceled_at")));
}

/* Log lines are numbered from 1 without gaps and name their source. */
static void check_log_shape(const json_t *lines) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    assert_int_equal(json_integer_value(json_object_get(l, "id")),
                     (json_int_t)i + 1);
    const char *src = jstr(l, "log_source");
    assert_true(strcmp(src, "provisioner_daemon") == 0 ||
                strcmp(src, "provisioner") == 0);
    assert_true(time_us(json_object_get(l, "created_at")) > 0);
  }
}

/* The template update's audit entry; polled, as entries land after the
 * answer. */
static void check_update_audit(const srv_t *s, const char *template_id) {
  json_t *found = NULL;
  atr_tc_res_t r = {0};
  for (double until = atr_harness_now_ms() + 5000;
       !found && atr_harness_now_ms() < until;) {
    atr_tc_res_free(&r);
    r = get(s, "/api/v2/audit?limit=1000", s->owner_token);
    ASSERT_ANSWER(r, 200);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "audit_logs"), i, e) {
      if (strcmp(jstr(e, "action"), "write") == 0 &&
          strcmp(jstr(e, "resource_type"), "template") == 0 &&
          json_object_get(json_object_get(e, "diff"), "name"))
        found = e;
    }
    if (!found)
      atr_harness_sleep_ms(20);
  }
  if (!found)
    print_error("no template write entry with a name diff: %s\n", r.body);
  assert_non_null(found);
  assert_string_equal(jstr(found, "resource_id"), template_id);
  assert_string_equal(jstr2(found, "user", "username"), "owner");
  assert_int_equal(json_integer_value(json_object_get(found, "status_code")),
                   200);
  json_t *diff = json_object_get(found, "diff");
  assert_string_equal(jstr2(diff, "name", "old"), "docker-dev");
  assert_string_equal(jstr2(diff, "name", "new"), "dev-box");
  assert_string_equal(jstr2(diff, "description", "new"), "Updated.");
  assert_string_equal(jstr2(diff, "default_ttl_ms", "old"), "3600000");
  assert_string_equal(jstr2(diff, "default_ttl_ms", "new"), "7200000");
  atr_tc_res_free(&r);
}

/* Version v1 of file: answered, imported, logged, its schema learnt. */
static void import_v1(const srv_t *s, const char *file, char v1[37]) {
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s, s:s}", "file_id", file, "name", "v1",
                             "message", "First cut"));
  ASSERT_ANSWER(r, 201);
  snprintf(v1, 37, "%s", field(&r, "id"));
  assert_string_equal(field(&r, "name"), "v1");
  assert_string_equal(field(&r, "message"), "First cut");
  assert_string_equal(field(&r, "provisioner"), "echo");
  assert_string_equal(field(&r, "organization_id"), s->org_id);
  assert_true(json_is_null(json_object_get(r.json, "template_id")));
  assert_string_equal(jstr2(r.json, "created_by", "username"), "owner");
  atr_tc_res_free(&r);

  char path[128];
  version_path(path, sizeof path, v1);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  check_import_job(&r, file);
  atr_tc_res_free(&r);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_true(json_array_size(lines) >= 3);
  check_log_shape(lines);
  assert_int_equal(lines_with(lines, " taken by "), 1);
  assert_int_equal(lines_with(lines, "provisioner echo, 4 parameters"), 1);
  assert_int_equal(lines_with(lines, "Job succeeded."), 1);
  json_decref(lines);
  check_schema(s, v1);
}

/* Template docker-dev from v1: created, listed, found by name. */
static void create_template(const srv_t *s, const char *v1, char tid[37]) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  atr_tc_res_t r =
      call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "docker-dev",
                     "display_name", "Docker dev", "description", "For work.",
                     "template_version_id", v1, "default_ttl_ms", 3600000));
  ASSERT_ANSWER(r, 201);
  snprintf(tid, 37, "%s", field(&r, "id"));
  assert_string_equal(field(&r, "active_version_id"), v1);
  assert_string_equal(field(&r, "provisioner"), "echo");
  assert_string_equal(field(&r, "display_name"), "Docker dev");
  assert_string_equal(field(&r, "created_by_name"), "owner");
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "default_ttl_ms")), 3600000);
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "workspace_count")), 0);
  atr_tc_res_free(&r);
  /* a version belongs to one template */
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "name", "again", "template_version_id", v1));
  static const char *const version_field[] = {"template_version_id"};
  assert_validations(&r, version_field, NULL, 1);
  atr_tc_res_free(&r);

  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  assert_string_equal(jstr(json_array_get(r.json, 0), "id"), tid);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/docker-dev",
           s->org_id);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), tid);
  assert_string_equal(field(&r, "description"), "For work.");
  atr_tc_res_free(&r);
}

/* docker-dev becomes dev-box, with an audit entry saying so. */
static void update_template(const srv_t *s, const char *tid) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  atr_tc_res_t r =
      call(s, "PATCH", path, s->owner_token,
           json_pack("{s:s, s:s, s:i}", "name", "dev-box", "description",
                     "Updated.", "default_ttl_ms", 7200000));
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "name"), "dev-box");
  assert_string_equal(field(&r, "description"), "Updated.");
  assert_string_equal(field(&r, "display_name"), "Docker dev");
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "default_ttl_ms")), 7200000);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/docker-dev",
           s->org_id);
  ASSERT_ERROR(404, "Template not found.", get(s, path, s->owner_token));
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/dev-box",
           s->org_id);
  ASSERT_STATUS(200, get(s, path, s->owner_token));
  check_update_audit(s, tid);
}

/* A second version of the template, listed first and made active. */
static void promote_v2(const srv_t *s, const char *file, const char *tid) {
  char v2[37], path[256];
  create_version(s, file, "v2", tid, v2);
  version_path(path, sizeof path, v2);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  assert_string_equal(field(&r, "template_id"), tid);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/templates/%s/versions", tid);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 2);
  assert_string_equal(jstr(json_array_get(r.json, 0), "name"), "v2");
  assert_string_equal(jstr(json_array_get(r.json, 1), "name"), "v1");
  assert_string_equal(jstr(json_array_get(r.json, 1), "template_id"), tid);
  atr_tc_res_free(&r);
  r = call(s, "PATCH", path, s->owner_token,
           json_pack("{s:s}", "id", "00000000-0000-4000-8000-000000000000"));
  static const char *const id_field[] = {"id"};
  assert_validations(&r, id_field, NULL, 1);
  atr_tc_res_free(&r);
  r = call(s, "PATCH", path, s->owner_token, json_pack("{s:s}", "id", v2));
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Updated the active version.");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "active_version_id"), v2);
  atr_tc_res_free(&r);
}

static void a_template_is_imported_created_updated_and_promoted(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], v1[37], tid[37];
  upload_yaml(s, TEMPLATE_YAML, file);
  import_v1(s, file, v1);
  create_template(s, v1, tid);
  update_template(s, tid);
  promote_v2(s, file, tid);
}

/* The create answers show the job as it was queued: pending. */
static void new_jobs_are_answered_as_pending(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char file[64], version_job[16], build_job[16], build_status[16];
  upload_yaml(s, TEMPLATE_YAML, file);
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s}", "file_id", file, "name", "v2"));
  ASSERT_ANSWER(r, 201);
  snprintf(version_job, sizeof version_job, "%s", job_status(&r));
  atr_tc_res_free(&r);
  r = create_workspace(s, s->owner_token, "me", "ws1", t.id,
                       VALUES("flavor", "small"));
  ASSERT_ANSWER(r, 201);
  json_t *latest = json_object_get(r.json, "latest_build");
  assert_int_equal(json_integer_value(json_object_get(latest, "build_number")),
                   1);
  assert_string_equal(jstr(latest, "transition"), "start");
  snprintf(build_status, sizeof build_status, "%s", jstr(latest, "status"));
  snprintf(build_job, sizeof build_job, "%s", jstr2(latest, "job", "status"));
  atr_tc_res_free(&r);
  print_message("answered: version job %s; build %s, its job %s\n", version_job,
                build_status, build_job);
  assert_string_equal(version_job, "pending");
  assert_string_equal(build_status, "pending");
  assert_string_equal(build_job, "pending");
}

/* ---- 2. import errors ----------------------------------------------------------- */

/* Two problems: a default outside the bounds and an unknown type. */
static const char BAD_YAML[] = "name: bad\n"
                               "provisioner: echo\n"
                               "parameters:\n"
                               "  - name: cpus\n"
                               "    type: number\n"
                               "    default: 12\n"
                               "    validation: {min: 1, max: 8}\n"
                               "  - name: gpu\n"
                               "    type: float\n";

/* Lines of the log that report a template.yaml problem with field_name
 * and (when not NULL) saying what. */
static size_t problem_lines(const json_t *lines, const char *field_name,
                            const char *what) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "template.yaml: %s", field_name);
  size_t n = 0, i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *out = jstr(l, "output");
    if (strncmp(out, prefix, strlen(prefix)) == 0 &&
        (!what || strstr(out, what))) {
      assert_string_equal(jstr(l, "log_level"), "error");
      n++;
    }
  }
  return n;
}

static void a_bad_manifest_fails_its_import_naming_each_problem(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], bad[37], path[256];
  upload_yaml(s, BAD_YAML, file);
  create_version(s, file, "broken", NULL, bad);
  version_path(path, sizeof path, bad);
  atr_tc_res_t r = wait_end(s, path, "failed", BUILD_MS);
  const char *error = jstr2(r.json, "job", "error");
  assert_contains(error, "parameters[0].default");
  assert_contains(error, "2 problems");
  atr_tc_res_free(&r);
  json_t *lines = job_log(s, path, s->owner_token);
  /* one line per problem, each naming its field and what is wrong */
  size_t all = problem_lines(lines, "", NULL),
         dflt =
             problem_lines(lines, "parameters[0].default: ",
                           "default \"12\" must be a number between 1 and 8"),
         type = problem_lines(lines,
                              "parameters[1].type: ", "unknown type \"float\"");
  if (all != 2 || dflt != 1 || type != 1)
    dump_log(lines);
  assert_int_equal(all, 2);
  assert_int_equal(dflt, 1);
  assert_int_equal(type, 1);
  json_decref(lines);
  /* nothing was learnt from it */
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/rich-parameters",
           bad);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 0);
  atr_tc_res_free(&r);

  /* a failed version cannot become a template */
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(
      s, "POST", path, s->owner_token,
      json_pack("{s:s, s:s}", "name", "broken", "template_version_id", bad));
  static const char *const version_field[] = {"template_version_id"};
  static const char *const not_succeeded[] = {"did not succeed"};
  assert_validations(&r, version_field, not_succeeded, 1);
  atr_tc_res_free(&r);
}

static void
a_version_needs_an_enabled_provisioner_and_a_manifest(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64];
  upload_yaml(s, TEMPLATE_YAML, file);
  /* a provisioner no plugin has, named by the body or by template.yaml:
   * refused, naming the enabled ones */
  atr_tc_res_t r = post_version(
      s, s->owner_token,
      json_pack("{s:s, s:s}", "file_id", file, "provisioner", "docker"));
  static const char *const prov_field[] = {"provisioner"};
  static const char *const enabled_echo[] = {"enabled: echo"};
  assert_validations(&r, prov_field, enabled_echo, 1);
  assert_contains(
      jstr(json_array_get(json_object_get(r.json, "validations"), 0), "detail"),
      "\"docker\"");
  atr_tc_res_free(&r);
  char nomad[64];
  upload_yaml(s, "name: n\nprovisioner: nomad\n", nomad);
  r = post_version(s, s->owner_token, json_pack("{s:s}", "file_id", nomad));
  assert_validations(&r, prov_field, enabled_echo, 1);
  atr_tc_res_free(&r);

  /* no such file, and an archive without template.yaml */
  static const char *const file_field[] = {"file_id"};
  r = post_version(
      s, s->owner_token,
      json_pack("{s:s}", "file_id", "00000000-0000-4000-8000-000000000000"));
  assert_validations(&r, file_field, NULL, 1);
  atr_tc_res_free(&r);
  char bare[64];
  const char *no_yaml[] = {"main.txt", "no manifest\n", NULL};
  upload(s, no_yaml, bare);
  r = post_version(s, s->owner_token, json_pack("{s:s}", "file_id", bare));
  assert_validations(&r, file_field, NULL, 1);
  atr_tc_res_free(&r);
}

/* A version whose import failed has no schema: nothing is built from it. */
static void a_failed_version_cannot_be_built(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char file[64], bad[37], path[128], ws[37], b1[37];
  upload_yaml(s, BAD_YAML, file);
  create_version(s, file, "broken", t.id, bad);
  version_path(path, sizeof path, bad);
  atr_tc_res_t r = wait_end(s, path, "failed", BUILD_MS);
  atr_tc_res_free(&r);
  new_workspace(s, "ws1", &t, VALUES("flavor", "small"), ws, b1);
  wait_build(s, b1, "running");
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "transition", "start", "template_version_id",
                     bad));
  ASSERT_ANSWER(r, 400);
  json_t *v = json_array_get(json_object_get(r.json, "validations"), 0);
  assert_string_equal(jstr(v, "field"), "template_version_id");
  assert_contains(jstr(v, "detail"), "has not succeeded");
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), 1);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T(a_template_is_imported_created_updated_and_promoted),
      T(new_jobs_are_answered_as_pending),
      T(a_bad_manifest_fails_its_import_naming_each_problem),
      T(a_version_needs_an_enabled_provisioner_and_a_manifest),
      T(a_failed_version_cannot_be_built),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  return BUILDS_MAIN("api_builds_imports", tests);
}
