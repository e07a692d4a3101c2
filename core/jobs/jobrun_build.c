/* core/jobrun_build.c — a workspace build: gather what the provisioner
 * needs (workspace, owner, template, parameter values, the last state),
 * plan and apply, and store the new state and resources with the build.
 *
 * The state is stored whatever the outcome: the provisioner's when it
 * returned one (also from a failed or canceled apply), else the previous
 * build's, so the next build always starts from what really exists. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "jobrun.h"
#include "jobrun_agent.h"
#include "observe.h"
#include "prov_result.h"
#include "stats.h"

#define FACTS 12

typedef struct build {
  char *build_id;
  bool orphan;
  /* facts: build_number, transition, workspace_id, workspace_name,
   * owner_id, owner_name, owner_email, organization_id, template_id,
   * template_name, template_version_id, template_version_name */
  int64_t number;
  char *fact[FACTS];
  atr_param_value_t *params;
  size_t nparams;
  char *prior;
  size_t prior_len;
  atr_prov_apply_result_t res;
  bool res_set;
  atr__build_agent_t agent;
} build_t;

enum {
  F_TRANSITION = 0,
  F_WORKSPACE_ID,
  F_WORKSPACE_NAME,
  F_OWNER_ID,
  F_OWNER_NAME,
  F_OWNER_EMAIL,
  F_ORG_ID,
  F_TEMPLATE_ID,
  F_TEMPLATE_NAME,
  F_VERSION_ID,
  F_VERSION_NAME,
};

static void build_free(build_t *b) {
  free(b->build_id);
  for (int i = 0; i < FACTS; i++)
    free(b->fact[i]);
  for (size_t i = 0; i < b->nparams; i++) {
    free((char *)b->params[i].name);
    free((char *)b->params[i].value);
    free((char *)b->params[i].type);
  }
  free(b->params);
  free(b->prior);
  atr_prov_result_release(&b->res);
  atr__jobrun_agent_free(&b->agent);
}

static char *dup0(const char *s) {
  return strdup(s ? s : "");
}

static int load_facts(atr_db_t *db, build_t *b, char **err) {
  atr_value_t k[] = {atr_v_text(b->build_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT b.build_number, b.transition, w.id, w.name, u.id, u.username, "
      "u.email, w.organization_id, t.id, t.name, v.id, v.name "
      "FROM workspace_builds b JOIN workspaces w ON w.id = b.workspace_id "
      "JOIN users u ON u.id = w.owner_id JOIN templates t ON t.id = "
      "w.template_id JOIN template_versions v ON v.id = "
      "b.template_version_id WHERE b.id = ?",
      k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    b->number = atr_db_get_int(db, rows, 0);
    for (int i = 0; i < FACTS - 1; i++)
      b->fact[i] = dup0(atr_db_get_text(db, rows, (size_t)i + 1));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
    if (err && asprintf(err, "build %s no longer exists", b->build_id) < 0)
      *err = NULL;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static int load_params(atr_db_t *db, build_t *b, struct atr_prov_job *job,
                       char **err) {
  atr_value_t k[] = {atr_v_text(b->fact[F_VERSION_ID]),
                     atr_v_text(b->build_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT p.name, p.value, tp.type, tp.sensitive, p.value_key_id FROM "
      "workspace_build_parameters p JOIN template_version_parameters tp ON "
      "tp.template_version_id = ? AND tp.name = p.name WHERE "
      "p.workspace_build_id = ? ORDER BY tp.display_order, p.name",
      k, 2, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *v = atr_db_get_text(db, rows, 1);
    char *value = NULL;
    size_t len = 0;
    rc = atr_dbcrypt_read(db->store, ATR_DBCRYPT_PARAM, v ? v : "",
                          v ? strlen(v) : 0, atr_db_get_text(db, rows, 4),
                          &value, &len, err);
    atr_param_value_t *p =
        rc == 0 ? realloc(b->params, (b->nparams + 1) * sizeof *b->params)
                : NULL;
    if (!p) {
      free(value);
      rc = rc ? rc : ATR_ENOMEM;
      break;
    }
    b->params = p;
    p[b->nparams] = (atr_param_value_t){
        sizeof(atr_param_value_t), dup0(atr_db_get_text(db, rows, 0)), value,
        dup0(atr_db_get_text(db, rows, 2)), atr_db_get_bool(db, rows, 3)};
    if (p[b->nparams].sensitive)
      atr__jobrun_secret_add(job, p[b->nparams].value);
    b->nparams++;
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int load_prior(atr_db_t *db, build_t *b, char **err) {
  atr_value_t k[] = {atr_v_text(b->fact[F_WORKSPACE_ID]), atr_v_int(b->number)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT provisioner_state, provisioner_state_key_id "
                        "FROM workspace_builds WHERE workspace_id = ? AND "
                        "build_number < ? AND provisioner_state IS NOT NULL "
                        "ORDER BY build_number DESC LIMIT 1",
                        k, 2, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t len = 0;
    const void *data = atr_db_get_blob(db, rows, 0, &len);
    rc = atr_dbcrypt_read(db->store, ATR_DBCRYPT_STATE, data ? data : "", len,
                          atr_db_get_text(db, rows, 1), &b->prior,
                          &b->prior_len, err);
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int load(struct atr_prov_job *job, build_t *b, char **err) {
  json_t *in = json_loads(job->row.input, 0, NULL);
  const char *id = json_string_value(json_object_get(in, "workspace_build_id"));
  b->build_id = id ? strdup(id) : NULL;
  b->orphan = json_is_true(json_object_get(in, "orphan"));
  json_decref(in);
  if (!b->build_id) {
    *err = strdup("the job names no workspace build");
    return ATR_EINVAL;
  }
  atr_db_t db;
  int rc = atr_db_open(job->cfg->store, &db, err);
  if (rc != 0)
    return rc;
  rc = load_facts(&db, b, err);
  if (rc == 0)
    rc = load_params(&db, b, job, err);
  if (rc == 0)
    rc = load_prior(&db, b, err);
  if (rc == 0 && !b->orphan && strcmp(b->fact[F_TRANSITION], "start") == 0)
    rc =
        atr__jobrun_agent_load(job, &db, b->fact[F_VERSION_ID], &b->agent, err);
  atr_db_close(&db);
  return rc;
}

/* ---- the outcome --------------------------------------------------------- */

typedef struct outcome {
  build_t *b;
  const char *job_id;
  bool succeeded;
} outcome_t;

static int insert_resource(atr_db_t *db, const build_t *b, const char *job_id,
                           const atr_prov_resource_t *r, char id[37],
                           char **err) {
  atr_db_new_uuid(id);
  atr_value_t v[] = {atr_v_text(id),
                     atr_v_time(atr_db_now_us()),
                     atr_v_text(job_id),
                     atr_v_text(b->fact[F_TRANSITION]),
                     atr_v_text(r->type ? r->type : "unknown"),
                     atr_v_text(r->name ? r->name : "")};
  int rc = atr_db_exec(db,
                       "INSERT INTO workspace_resources (id, created_at, "
                       "job_id, transition, type, name) VALUES "
                       "(?, ?, ?, ?, ?, ?)",
                       v, 6, NULL, err);
  if (rc == 0 && r->id) {
    atr_value_t m[] = {atr_v_text(id), atr_v_text("id"), atr_v_text(r->id),
                       atr_v_bool(false)};
    rc = atr_db_exec(db,
                     "INSERT INTO workspace_resource_metadata "
                     "(workspace_resource_id, key, value, sensitive) VALUES "
                     "(?, ?, ?, ?)",
                     m, 4, NULL, err);
  }
  for (size_t i = 0; rc == 0 && i < r->nmetadata; i++) {
    const atr_prov_metadata_t *md = atr_prov_metadata_at(r, i);
    if (!md->key || !*md->key || strcmp(md->key, "id") == 0)
      continue;
    atr_sealed_t sv;
    rc =
        atr_sealed_make(db->store, ATR_DBCRYPT_METADATA, md->sensitive,
                        md->value, md->value ? strlen(md->value) : 0, &sv, err);
    atr_value_t m[] = {atr_v_text(id), atr_v_text(md->key),
                       md->value ? atr_sealed_text(&sv) : atr_v_null(),
                       atr_v_bool(md->sensitive), atr_sealed_key(&sv)};
    if (rc == 0)
      rc = atr_db_exec(db,
                       "INSERT INTO workspace_resource_metadata "
                       "(workspace_resource_id, key, value, sensitive, "
                       "value_key_id) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO "
                       "NOTHING",
                       m, 5, NULL, err);
    atr_sealed_free(&sv);
  }
  return rc;
}

/* Read only from a plugin whose resources are 1.3 or newer. */
static bool hosts_agent(const atr_prov_resource_t *r) {
  return r->struct_size >= offsetof(atr_prov_resource_t, hosts_agent) +
                               sizeof r->hosts_agent &&
         r->hosts_agent;
}

static int write_outcome(atr_db_t *db, void *ud, char **err) {
  const outcome_t *o = ud;
  build_t *b = o->b;
  const char *state = b->res.state ? b->res.state : b->prior;
  size_t len = b->res.state ? b->res.state_len : b->prior_len;
  int64_t now = atr_db_now_us();
  atr_sealed_t sealed;
  int rc = atr_sealed_make(db->store, ATR_DBCRYPT_STATE, true, state, len,
                           &sealed, err);
  atr_value_t p[] = {atr_sealed_blob(&sealed), atr_sealed_key(&sealed),
                     atr_v_time(now), atr_v_text(b->build_id)};
  if (rc == 0)
    rc =
        atr_db_exec(db,
                    "UPDATE workspace_builds SET provisioner_state = ?, "
                    "provisioner_state_key_id = ?, updated_at = ? WHERE id = ?",
                    p, 4, NULL, err);
  atr_sealed_free(&sealed);
  char first[37] = "", host[37] = "";
  for (size_t i = 0; rc == 0 && i < b->res.nresources; i++) {
    const atr_prov_resource_t *r = atr_prov_resource_at(&b->res, i);
    char id[37];
    rc = insert_resource(db, b, o->job_id, r, id, err);
    if (i == 0)
      memcpy(first, id, sizeof first);
    if (!*host && hosts_agent(r))
      memcpy(host, id, sizeof host);
  }
  atr__agent_outcome_t ao = {b->fact[F_TRANSITION], b->fact[F_WORKSPACE_ID],
                             b->build_id,
                             *host    ? host
                             : *first ? first
                                      : NULL,
                             o->succeeded};
  if (rc == 0)
    rc = atr__jobrun_agent_write(db, &b->agent, &ao, err);
  if (rc == 0 && o->succeeded && strcmp(b->fact[F_TRANSITION], "delete") == 0) {
    atr_value_t w[] = {atr_v_time(now), atr_v_text(b->fact[F_WORKSPACE_ID])};
    rc = atr_db_exec(db,
                     "UPDATE workspaces SET deleted = TRUE, updated_at = ? "
                     "WHERE id = ?",
                     w, 2, NULL, err);
  }
  return rc;
}

/* ---- running it ---------------------------------------------------------- */

static atr_transition_t transition_of(const char *name) {
  if (strcmp(name, "stop") == 0)
    return ATR_TRANSITION_STOP;
  if (strcmp(name, "delete") == 0)
    return ATR_TRANSITION_DELETE;
  return ATR_TRANSITION_START;
}

static char *failure(const char *what, int rc, const char *err) {
  char *msg = NULL;
  if (asprintf(&msg, "%s failed: %s", what, err ? err : atr_strerror(rc)) < 0)
    msg = NULL;
  return msg ? msg : strdup(what);
}

/* A result the host cannot walk safely is dropped, state and all, and the
 * build fails saying why (an apply that failed already keeps its own
 * reason; this one goes to the log); the prior state stays the last known. */
static char *checked_result(struct atr_prov_job *job, build_t *b, char *msg) {
  char *err = NULL;
  if (atr_prov_result_check(job->ops->type, &b->res, &err) == 0)
    return msg;
  char *why = failure("reading the apply result", ATR_EABI, err);
  free(err);
  atr_prov_result_release(&b->res);
  if (msg == NULL)
    return why;
  atr_jobrun_log(job, ATR_LOG_ERROR, "Applying", "%s", why ? why : "");
  free(why);
  return msg;
}

/* Plan (when the plugin has it) and apply; NULL on success, else why. */
static char *provision(struct atr_prov_job *job, build_t *b, const char *dir) {
  job->plugin = atr_provisioner_find(job->cfg->loader, job->row.provisioner);
  if (!job->plugin) {
    char *msg = NULL;
    if (asprintf(&msg, "no running provisioner plugin has type %s",
                 job->row.provisioner) < 0)
      msg = NULL;
    return msg ? msg : strdup("no provisioner");
  }
  job->ops = job->plugin->desc->ops;
  atr_prov_apply_request_t req = {
      .struct_size = sizeof req,
      .job = job,
      .log = atr__jobrun_log_fn(),
      .canceled = atr__jobrun_canceled_fn(),
      .workdir = dir,
      .transition = transition_of(b->fact[F_TRANSITION]),
      .build_number = b->number,
      .workspace_id = b->fact[F_WORKSPACE_ID],
      .workspace_name = b->fact[F_WORKSPACE_NAME],
      .owner_id = b->fact[F_OWNER_ID],
      .owner_name = b->fact[F_OWNER_NAME],
      .owner_email = b->fact[F_OWNER_EMAIL],
      .organization_id = b->fact[F_ORG_ID],
      .template_id = b->fact[F_TEMPLATE_ID],
      .template_name = b->fact[F_TEMPLATE_NAME],
      .template_version_id = b->fact[F_VERSION_ID],
      .template_version_name = b->fact[F_VERSION_NAME],
      .params = b->params,
      .nparams = b->nparams,
      .prior_state = b->prior,
      .prior_state_len = b->prior_len,
      .agent = atr__jobrun_agent_req(&b->agent)};
  char *err = NULL;
  int rc = 0;
  if (ATR_PROVISIONER_HAS_PLAN(job->ops)) {
    atr_jobrun_log(job, ATR_LOG_INFO, "Planning", "Planning %s of %s",
                   b->fact[F_TRANSITION], b->fact[F_WORKSPACE_NAME]);
    rc = job->ops->plan(job->plugin->ctx, &req, &err);
    if (rc != 0) {
      char *msg = failure("plan", rc, err);
      free(err);
      return msg;
    }
  }
  if (req.transition != ATR_TRANSITION_START)
    atr__jobrun_agent_stop(job, b->fact[F_WORKSPACE_ID]);
  if (atomic_load(&job->canceled))
    return strdup("canceled");
  atr_jobrun_log(job, ATR_LOG_INFO, "Applying", "Applying %s of %s, build %lld",
                 b->fact[F_TRANSITION], b->fact[F_WORKSPACE_NAME],
                 (long long)b->number);
  rc = job->ops->apply(job->plugin->ctx, &req, &b->res, &err);
  char *msg = rc == 0 ? NULL : failure("apply", rc, err);
  free(err);
  return checked_result(job, b, msg);
}

void atr__jobrun_build(struct atr_prov_job *job, const char *dir) {
  build_t b = {0};
  char *err = NULL;
  atr_prov_result_init(&b.res);
  int rc = load(job, &b, &err);
  if (rc != 0) {
    char *msg = failure("loading the build", rc, err);
    atr__jobrun_finish(job, msg, NULL, NULL);
    free(msg);
    free(err);
    build_free(&b);
    return;
  }
  char *msg = NULL;
  if (b.orphan)
    atr_jobrun_log(job, ATR_LOG_WARN, "Applying",
                   "Orphan delete: the provisioner is not run; what it made "
                   "stays in place");
  else
    msg = provision(job, &b, dir);
  outcome_t o = {&b, job->row.id, msg == NULL};
  atr__jobrun_finish(job, msg, write_outcome, &o);
  atr__jobrun_agent_announce(job, b.fact[F_WORKSPACE_ID]);
  const char *status = atomic_load(&job->stopping)   ? "failed"
                       : atomic_load(&job->canceled) ? "canceled"
                       : msg                         ? "failed"
                                                     : "succeeded";
  atr_stats_build_ended(b.fact[F_TRANSITION], status);
  atr_observe_emit("build",
                   json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "build_id",
                             b.build_id, "workspace_id", b.fact[F_WORKSPACE_ID],
                             "workspace_name", b.fact[F_WORKSPACE_NAME],
                             "build_number", (json_int_t)b.number, "transition",
                             b.fact[F_TRANSITION], "status", status));
  free(msg);
  build_free(&b);
}
