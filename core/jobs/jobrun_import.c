/* core/jobrun_import.c — a template version import: read template.yaml,
 * check its parameter schema, have the provisioner check its own files,
 * and store the schema with the version. Every problem reaches the author
 * as a log line of the job and its error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atrium/error.h"
#include "jobrun.h"
#include "manifest.h"
#include "policy_hooks.h"

#define MANIFEST_MAX ((size_t)1024 * 1024)
#define README_MAX ((size_t)256 * 1024)
#define STAGE "Parsing template"
#define POLICY_MAX ((size_t)256 * 1024)

/* A file of the workdir into a malloc'd string; NULL when absent. */
static char *slurp(const char *dir, const char *name, size_t max, size_t *len) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(max + 1);
  size_t n = buf ? fread(buf, 1, max, f) : 0;
  fclose(f);
  if (buf)
    buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static char *version_id_of(const struct atr_prov_job *job) {
  json_t *in = json_loads(job->row.input, 0, NULL);
  const char *id =
      json_string_value(json_object_get(in, "template_version_id"));
  char *out = id ? strdup(id) : NULL;
  json_decref(in);
  return out;
}

typedef struct store_schema {
  const char *version_id;
  const atr_manifest_t *m;
  const char *readme;
  const char *policy_source; /* the template's policy, or NULL */
} store_schema_t;

static json_t *options_json(const atr_param_t *p) {
  json_t *a = json_array();
  for (size_t i = 0; i < p->noptions; i++)
    json_array_append_new(
        a,
        json_pack("{s:s, s:s, s:s}", "name", p->options[i].name, "value",
                  p->options[i].value, "description",
                  p->options[i].description ? p->options[i].description : ""));
  return a;
}

static int insert_param(atr_db_t *db, const char *version_id,
                        const atr_param_t *p, char **err) {
  json_t *opts = options_json(p);
  char *opts_text = json_dumps(opts, JSON_COMPACT);
  json_decref(opts);
  atr_value_t v[] = {atr_v_text(version_id),
                     atr_v_text(p->name),
                     atr_v_text(p->display_name ? p->display_name : ""),
                     atr_v_text(p->description ? p->description : ""),
                     atr_v_text(atr_param_type_name(p->type)),
                     atr_v_bool(p->mutable_),
                     atr_v_text(p->default_value ? p->default_value : ""),
                     atr_v_text(opts_text ? opts_text : "[]"),
                     atr_v_text(p->regex ? p->regex : ""),
                     p->has_min ? atr_v_double(p->min) : atr_v_null(),
                     p->has_max ? atr_v_double(p->max) : atr_v_null(),
                     atr_v_text(p->error ? p->error : ""),
                     atr_v_text(p->monotonic ? p->monotonic : ""),
                     atr_v_bool(p->required),
                     atr_v_int(p->display_order),
                     atr_v_bool(p->ephemeral),
                     atr_v_bool(p->sensitive)};
  int rc = atr_db_exec(
      db,
      "INSERT INTO template_version_parameters (template_version_id, name, "
      "display_name, description, type, mutable, default_value, options, "
      "validation_regex, validation_min, validation_max, validation_error, "
      "validation_monotonic, required, display_order, ephemeral, sensitive) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      v, 17, NULL, err);
  free(opts_text);
  return rc;
}

static int store_schema(atr_db_t *db, void *ud, char **err) {
  const store_schema_t *s = ud;
  atr_value_t k[] = {atr_v_text(s->version_id)};
  int rc = atr_db_exec(db,
                       "DELETE FROM template_version_parameters WHERE "
                       "template_version_id = ?",
                       k, 1, NULL, err);
  for (size_t i = 0; rc == 0 && i < s->m->nparams; i++)
    rc = insert_param(db, s->version_id, &s->m->params[i], err);
  if (rc == 0) {
    atr_value_t p[] = {atr_v_text(s->m->policy), atr_v_text(s->policy_source),
                       atr_v_text(s->version_id)};
    rc = atr_db_exec(db,
                     "UPDATE template_versions SET policy_name = ?, "
                     "policy_source = ? WHERE id = ?",
                     p, 3, NULL, err);
  }
  if (rc == 0 && s->readme) {
    atr_value_t r[] = {atr_v_text(s->readme), atr_v_time(atr_db_now_us()),
                       atr_v_text(s->version_id)};
    rc = atr_db_exec(db,
                     "UPDATE template_versions SET readme = ?, updated_at = ? "
                     "WHERE id = ?",
                     r, 3, NULL, err);
  }
  return rc;
}

static void log_errors(struct atr_prov_job *job, json_t *errors) {
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) {
    atr_jobrun_log(job, ATR_LOG_ERROR, STAGE, "template.yaml: %s: %s",
                   json_string_value(json_object_get(e, "field")),
                   json_string_value(json_object_get(e, "detail")));
  }
}

/* The manifest, checked; NULL after logging why not. */
static char *read_manifest(struct atr_prov_job *job, const char *dir,
                           atr_manifest_t *m) {
  size_t len = 0;
  char *text = slurp(dir, "template.yaml", MANIFEST_MAX, &len);
  if (!text)
    return strdup("the archive has no template.yaml at its root");
  json_t *errors = NULL;
  int rc = atr_manifest_parse("template.yaml", text, len, m, &errors);
  free(text);
  char *msg = NULL;
  if (rc != 0) {
    log_errors(job, errors);
    size_t n = json_array_size(errors);
    if (asprintf(&msg, "template.yaml has %zu problem%s; the first: %s: %s", n,
                 n == 1 ? "" : "s",
                 json_string_value(
                     json_object_get(json_array_get(errors, 0), "field")),
                 json_string_value(
                     json_object_get(json_array_get(errors, 0), "detail"))) < 0)
      msg = NULL;
    json_decref(errors);
    return msg ? msg : strdup("template.yaml is not valid");
  }
  if (strcmp(m->provisioner, job->row.provisioner) != 0) {
    if (asprintf(&msg,
                 "template.yaml says provisioner: %s, but the version was "
                 "created for %s",
                 m->provisioner, job->row.provisioner) < 0)
      msg = NULL;
    return msg ? msg : strdup("provisioner mismatch");
  }
  struct stat st;
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", dir, m->policy ? m->policy : "");
  if (m->policy && (stat(path, &st) != 0 || !S_ISREG(st.st_mode))) {
    if (asprintf(&msg,
                 "template.yaml names policy: %s, which is not a file "
                 "in the archive",
                 m->policy) < 0)
      msg = NULL;
    return msg ? msg : strdup("policy file missing");
  }
  return NULL;
}

static char *call_parse(struct atr_prov_job *job, const char *dir,
                        const atr_manifest_t *m) {
  job->plugin = atr_provisioner_find(job->cfg->loader, job->row.provisioner);
  if (!job->plugin) {
    char *msg = NULL;
    if (asprintf(&msg, "no running provisioner plugin has type %s",
                 job->row.provisioner) < 0)
      msg = NULL;
    return msg;
  }
  job->ops = job->plugin->desc->ops;
  const char **names = calloc(m->nparams + 1, sizeof *names);
  for (size_t i = 0; names && i < m->nparams; i++)
    names[i] = m->params[i].name;
  atr_prov_parse_request_t req = {.struct_size = sizeof req,
                                  .job = job,
                                  .log = atr__jobrun_log_fn(),
                                  .canceled = atr__jobrun_canceled_fn(),
                                  .workdir = dir,
                                  .param_names = names,
                                  .nparams = names ? m->nparams : 0};
  char *err = NULL;
  atr_jobrun_log(job, ATR_LOG_INFO, STAGE, "%s provisioner: checking files",
                 job->row.provisioner);
  int rc = job->ops->parse(job->plugin->ctx, &req, &err);
  free(names);
  if (rc == 0) {
    free(err);
    return NULL;
  }
  char *msg = NULL;
  if (asprintf(&msg, "the %s provisioner refused the template: %s",
               job->row.provisioner, err ? err : atr_strerror(rc)) < 0)
    msg = NULL;
  free(err);
  return msg;
}

/* template_push input: who pushes, where, and the schema as declared. */
static json_t *push_input(struct atr_prov_job *job, const char *version_id,
                          const atr_manifest_t *m) {
  json_t *input = json_object();
  json_t *params = json_array();
  for (size_t i = 0; i < m->nparams; i++) {
    const atr_param_t *p = &m->params[i];
    json_t *opts = json_array();
    for (size_t j = 0; j < p->noptions; j++)
      json_array_append_new(opts,
                            json_pack("{s:s, s:s}", "name", p->options[j].name,
                                      "value", p->options[j].value));
    json_t *v = json_object();
    if (p->has_min)
      json_object_set_new(v, "min", json_real(p->min));
    if (p->has_max)
      json_object_set_new(v, "max", json_real(p->max));
    if (p->regex)
      json_object_set_new(v, "regex", json_string(p->regex));
    if (p->monotonic)
      json_object_set_new(v, "monotonic", json_string(p->monotonic));
    json_array_append_new(
        params,
        json_pack("{s:s, s:s, s:o, s:b, s:b, s:b, s:o, s:o}", "name", p->name,
                  "type", atr_param_type_name(p->type), "default",
                  p->default_value ? json_string(p->default_value)
                                   : json_null(),
                  "mutable", p->mutable_, "sensitive", p->sensitive,
                  "ephemeral", p->ephemeral, "options", opts, "validation", v));
  }
  json_object_set_new(input, "manifest",
                      json_pack("{s:s, s:s, s:o}", "name",
                                m->name ? m->name : "", "provisioner",
                                m->provisioner, "parameters", params));
  json_object_set_new(input, "version", json_pack("{s:s}", "id", version_id));
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(job->cfg->store, &db, &err) == 0) {
    atr_policy_input_people(&db, job->row.initiator_id,
                            job->row.organization_id, input, &err);
    atr_db_close(&db);
  }
  free(err);
  return input;
}

/* The deployment's policies on the push (a version does not approve
 * itself: its own policy is not run here). NULL when allowed. */
static char *check_push(struct atr_prov_job *job, const char *version_id,
                        const atr_manifest_t *m) {
  json_t *input = push_input(job, version_id, m);
  atr_decision_t d;
  int rc = atr_policy_hooks_eval("template_push", input, NULL, NULL, &d);
  json_decref(input);
  for (size_t i = 0; i < d.nwarnings; i++)
    atr_jobrun_log(job, ATR_LOG_WARN, STAGE, "policy %s: %s",
                   d.warnings[i].policy, d.warnings[i].message);
  for (size_t i = 0; i < d.ndenies; i++)
    atr_jobrun_log(job, ATR_LOG_ERROR, STAGE, "policy %s: %s",
                   d.denies[i].policy, d.denies[i].message);
  char *msg = NULL;
  if (rc != 0) {
    msg = strdup("the policies could not be evaluated");
  } else if (d.ndenies > 0 &&
             asprintf(&msg, "denied by policy %s: %s%s", d.denies[0].policy,
                      d.denies[0].message,
                      d.ndenies > 1 ? " (and more, see the log)" : "") < 0) {
    msg = strdup("denied by policy");
  }
  atr_decision_clear(&d);
  return msg;
}

/* The template's own policy must load; its text is kept with the
 * version for the builds. NULL when fine (or absent). */
static char *check_template_policy(struct atr_prov_job *job, const char *dir,
                                   const atr_manifest_t *m, char **source) {
  *source = NULL;
  if (!m->policy)
    return NULL;
  size_t len = 0;
  *source = slurp(dir, m->policy, POLICY_MAX, &len);
  if (!*source)
    return strdup("the template's policy file cannot be read");
  atr_policy_t *p = NULL;
  char *err = NULL;
  char *msg = NULL;
  if (atr_policy_load(m->policy, *source, len, NULL, &p, &err) != 0 &&
      asprintf(&msg, "the template's policy does not load: %s",
               err ? err : "unknown error") < 0)
    msg = strdup("the template's policy does not load");
  if (msg)
    atr_jobrun_log(job, ATR_LOG_ERROR, STAGE, "%s", msg);
  else
    atr_jobrun_log(job, ATR_LOG_INFO, STAGE, "policy %s loads", m->policy);
  atr_policy_unref(p);
  free(err);
  return msg;
}

void atr__jobrun_import(struct atr_prov_job *job, const char *dir) {
  atr_manifest_t m = {0};
  char *policy_source = NULL;
  char *version_id = version_id_of(job);
  char *msg = version_id ? read_manifest(job, dir, &m)
                         : strdup("the job names no template version");
  if (!msg) {
    atr_jobrun_log(job, ATR_LOG_INFO, STAGE,
                   "template.yaml: %s, provisioner %s, %zu parameter%s",
                   m.name ? m.name : "(no name)", m.provisioner, m.nparams,
                   m.nparams == 1 ? "" : "s");
    msg = check_template_policy(job, dir, &m, &policy_source);
  }
  if (!msg)
    msg = check_push(job, version_id, &m);
  if (!msg)
    msg = call_parse(job, dir, &m);
  if (msg) {
    atr__jobrun_finish(job, msg, NULL, NULL);
  } else {
    char *readme = slurp(dir, "README.md", README_MAX, NULL);
    store_schema_t s = {version_id, &m, readme, policy_source};
    atr__jobrun_finish(job, NULL, store_schema, &s);
    free(readme);
  }
  free(msg);
  free(version_id);
  free(policy_source);
  atr_manifest_free(&m);
}
