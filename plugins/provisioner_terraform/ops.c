/* ops.c — parse(), plan() and apply(): which terraform commands run, in
 * which order, and what they return.
 *
 *   parse   init, validate -json; warns about parameters that are not
 *           variables of the configuration
 *   plan    writes terraform.tfstate (the prior state) and
 *           atrium.auto.tfvars.json; init; plan -json -out=atrium.tfplan
 *           (-destroy for a delete)
 *   apply   apply -json atrium.tfplan (plans first when the host did not
 *           call plan()); returns terraform.tfstate, also after a failure,
 *           and, after a success, the resources of `terraform show -json`
 *
 * Every op runs terraform init itself: nothing is kept between jobs but
 * the state the host gives back (each job has a fresh workdir).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TF_PARSE_HINT                                                          \
  "fix the template's Terraform files and upload a new version"
#define TF_BUILD_HINT "see the build log for Terraform's output"

#define TF_PARSE_REQ_MIN                                                       \
  (offsetof(atr_prov_parse_request_t, nparams) + sizeof(size_t))
#define TF_APPLY_REQ_MIN                                                       \
  (offsetof(atr_prov_apply_request_t, prior_state_len) + sizeof(size_t))

static int job_begin(tf_ctx_t *c, tf_job_t *j, atr_prov_job_t *job,
                     atr_prov_log_fn log, atr_prov_canceled_fn canceled,
                     const char *workdir, const atr_prov_apply_request_t *req) {
  memset(j, 0, sizeof *j);
  j->c = c;
  j->job = job;
  j->log = log;
  j->canceled = canceled;
  j->workdir = workdir;
  if (req != NULL) {
    j->params = req->params;
    j->nparams = req->nparams;
    const atr_prov_agent_t *a = tf_agent(req);
    j->secret = a != NULL ? a->token : NULL;
  }
  atomic_init(&j->cancel_flag, false);
  j->envp = tf_env_new(req);
  if (j->envp == NULL)
    return ATR_ENOMEM;
  tf_jobs_add(c, j);
  return 0;
}

static void job_end(tf_job_t *j) {
  tf_jobs_remove(j->c, j);
  free(j->first_error);
  free(j->first_stderr);
  tf_env_free(j->envp);
}

static int cmd_failed(const tf_job_t *j, const tf_cmd_t *cmd, int status,
                      const char *hint, char **err) {
  const char *why = j->first_error    ? j->first_error
                    : j->first_stderr ? j->first_stderr
                                      : "it printed no error";
  return tf_failf(err, ATR_EPLUGIN,
                  "terraform %s failed (exit status %d): %s; %s", cmd->args[0],
                  status, why, hint);
}

/* Run cmd; a failure or cancel becomes the op's error. */
static int step(tf_job_t *j, const tf_cmd_t *cmd, const char *hint,
                char **err) {
  int status = 0;
  int rc = tf_run(j, cmd, &status, err);
  if (rc == ATR_ECANCELED)
    return tf_failf(err, rc, "terraform %s was canceled", cmd->args[0]);
  if (rc == 0 && status != 0)
    return cmd_failed(j, cmd, status, hint, err);
  return rc;
}

static int run_init(tf_job_t *j, const char *hint, char **err) {
  static const char *const json_args[] = {"init", "-input=false", "-no-color",
                                          "-json", NULL};
  static const char *const text_args[] = {"init", "-input=false", "-no-color",
                                          NULL};
  tf_cmd_t cmd = {.args = j->c->init_json ? json_args : text_args,
                  .stage = "Initializing",
                  .out = j->c->init_json ? TF_OUT_JSON : TF_OUT_TEXT};
  return step(j, &cmd, hint, err);
}

static int validate(tf_job_t *j, char **err) {
  static const char *const args[] = {"validate", "-json", "-no-color", NULL};
  tf_buf_t out = {0};
  tf_cmd_t cmd = {.args = args,
                  .stage = "Validating",
                  .out = TF_OUT_CAPTURE,
                  .capture = &out};
  int status = 0;
  int rc = tf_run(j, &cmd, &status, err);
  if (rc == ATR_ECANCELED)
    rc = tf_failf(err, rc, "terraform validate was canceled");
  if (rc == 0) {
    json_t *doc = json_loadb(out.data ? out.data : "", out.len, 0, NULL);
    const json_t *diags = json_object_get(doc, "diagnostics");
    for (size_t i = 0; i < json_array_size(diags); i++)
      tf_out_diagnostic(j, cmd.stage, json_array_get(diags, i));
    json_decref(doc);
    if (status != 0)
      rc = cmd_failed(j, &cmd, status, TF_PARSE_HINT, err);
    else
      tf_log(j, ATR_LOG_INFO, cmd.stage, "The configuration is valid.");
  }
  tf_buf_free(&out);
  return rc;
}

static void warn_undeclared(tf_job_t *j, const atr_prov_parse_request_t *req,
                            const tf_names_t *declared) {
  for (size_t i = 0; i < req->nparams; i++) {
    const char *name = req->param_names[i];
    if (name == NULL || tf_names_has(declared, name))
      continue;
    char *env = tf_env_param_name(name);
    tf_logf(j, ATR_LOG_WARN, "Validating",
            "parameter \"%s\" is not a variable of the Terraform "
            "configuration, so var.%s does not exist; declare variable "
            "\"%s\" {} to use it (it is in the environment as %s either way)",
            name, name, name, env ? env : "ATRIUM_PARAM_...");
    free(env);
  }
}

int tf_parse(void *ctx, const atr_prov_parse_request_t *req, char **err) {
  if (req->struct_size < TF_PARSE_REQ_MIN || req->workdir == NULL)
    return tf_failf(err, ATR_EINVAL,
                    "parse request of %u bytes without a workdir or "
                    "parameters; upgrade atrium",
                    (unsigned)req->struct_size);
  tf_job_t j;
  if (job_begin(ctx, &j, req->job, req->log, req->canceled, req->workdir,
                NULL) != 0)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  tf_names_t declared = {0};
  size_t ntf = 0;
  int rc = tf_vars_declared(req->workdir, &declared, &ntf, err);
  if (rc == 0 && ntf == 0)
    rc = tf_failf(err, ATR_EINVAL,
                  "the template has no .tf or .tf.json file next to "
                  "template.yaml; put the Terraform configuration (main.tf) "
                  "at the root of the archive");
  if (rc == 0)
    rc = run_init(&j, TF_PARSE_HINT, err);
  if (rc == 0)
    rc = validate(&j, err);
  if (rc == 0)
    warn_undeclared(&j, req, &declared);
  tf_names_free(&declared);
  job_end(&j);
  return rc;
}

/* terraform.tfstate from the prior state, atrium.auto.tfvars.json. */
static int prepare(tf_job_t *j, const atr_prov_apply_request_t *req,
                   char **err) {
  if (req->prior_state != NULL && req->prior_state_len > 0) {
    char *path = tf_path(req->workdir, TF_STATE_FILE);
    int e = path ? tf_file_write(path, req->prior_state, req->prior_state_len)
                 : -ENOMEM;
    free(path);
    if (e != 0)
      return tf_failf(err, ATR_EIO, "cannot write %s in %s: %s", TF_STATE_FILE,
                      req->workdir, strerror(-e));
  }
  tf_names_t declared = {0};
  size_t ntf = 0;
  int rc = tf_vars_declared(req->workdir, &declared, &ntf, err);
  if (rc == 0)
    rc = tf_tfvars_write(req, &declared, err);
  if (rc == 0)
    tf_logf(j, ATR_LOG_DEBUG, "Planning",
            "%s holds the %zu declared variables of %zu .tf files",
            TF_TFVARS_FILE, declared.n, ntf);
  tf_names_free(&declared);
  return rc;
}

static int do_plan(tf_job_t *j, const atr_prov_apply_request_t *req,
                   char **err) {
  static const char *const args[] = {"plan", "-input=false", "-json",
                                     "-out=atrium.tfplan", NULL};
  static const char *const destroy_args[] = {
      "plan", "-input=false", "-json", "-out=atrium.tfplan", "-destroy", NULL};
  if (tf_job_canceled(j)) /* before any file is written */
    return tf_failf(err, ATR_ECANCELED,
                    "the build was canceled before terraform ran");
  int rc = prepare(j, req, err);
  if (rc == 0)
    rc = run_init(j, TF_BUILD_HINT, err);
  if (rc != 0)
    return rc;
  tf_cmd_t cmd = {
      .args = req->transition == ATR_TRANSITION_DELETE ? destroy_args : args,
      .stage = "Planning",
      .out = TF_OUT_JSON};
  return step(j, &cmd, TF_BUILD_HINT, err);
}

static int check_apply_request(const atr_prov_apply_request_t *req,
                               char **err) {
  if (req->struct_size < TF_APPLY_REQ_MIN || req->workdir == NULL)
    return tf_failf(err, ATR_EINVAL,
                    "build request of %u bytes without a workdir or "
                    "prior state; upgrade atrium",
                    (unsigned)req->struct_size);
  if (tf_transition_name(req->transition) == NULL)
    return tf_failf(err, ATR_EINVAL,
                    "unknown transition %d; expected start, stop or delete",
                    (int)req->transition);
  return 0;
}

int tf_plan(void *ctx, const atr_prov_apply_request_t *req, char **err) {
  int rc = check_apply_request(req, err);
  if (rc != 0)
    return rc;
  tf_job_t j;
  if (job_begin(ctx, &j, req->job, req->log, req->canceled, req->workdir,
                req) != 0)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  rc = do_plan(&j, req, err);
  job_end(&j);
  return rc;
}

/* The state terraform left: errored.tfstate when it could not write
 * terraform.tfstate, else terraform.tfstate; none before a first apply. */
static void read_state(tf_job_t *j, const char *stage,
                       atr_prov_apply_result_t *res) {
  static const char *const names[] = {TF_ERRORED_STATE_FILE, TF_STATE_FILE};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char *path = tf_path(j->workdir, names[i]);
    char *data = NULL;
    size_t len = 0;
    int e = path != NULL ? tf_file_read(path, &data, &len) : -ENOMEM;
    free(path);
    if (e == 0 &&
        (res->state = (char *)atr_mem_alloc(tf_host, len + 1)) == NULL)
      e = -ENOMEM;
    if (e == 0) { /* the host releases the state: its allocator, then */
      memcpy(res->state, data, len);
      res->state[len] = '\0';
      res->state_len = len;
    }
    free(data);
    if (e == 0 && i == 0)
      tf_log(
          j, ATR_LOG_WARN, stage,
          "terraform could not save its state and wrote " TF_ERRORED_STATE_FILE
          "; that state is the one kept");
    if (e == 0)
      return;
    if (e != -ENOENT)
      tf_logf(j, ATR_LOG_ERROR, stage, "cannot read %s: %s", names[i],
              strerror(-e));
  }
}

static int show(tf_job_t *j, const char *stage, atr_prov_apply_result_t *res,
                char **err) {
  static const char *const args[] = {"show", "-json", "-no-color", NULL};
  tf_buf_t out = {0};
  tf_cmd_t cmd = {
      .args = args, .stage = stage, .out = TF_OUT_CAPTURE, .capture = &out};
  int rc = step(j, &cmd, TF_BUILD_HINT, err);
  if (rc == 0)
    rc = tf_show_resources(out.data ? out.data : "", out.len, res, err);
  tf_buf_free(&out);
  return rc;
}

static int do_apply(tf_job_t *j, const atr_prov_apply_request_t *req,
                    atr_prov_apply_result_t *res, char **err) {
  static const char *const args[] = {"apply", "-input=false", "-json",
                                     TF_PLAN_FILE, NULL};
  const char *stage =
      req->transition == ATR_TRANSITION_DELETE ? "Destroying" : "Applying";
  char *plan = tf_path(req->workdir, TF_PLAN_FILE);
  if (plan == NULL)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  int rc = 0;
  if (!tf_file_exists(plan)) {
    tf_log(j, ATR_LOG_INFO, "Planning",
           "No plan yet (this host does not call plan()): planning first.");
    rc = do_plan(j, req, err);
  }
  free(plan);
  if (rc == 0) {
    tf_cmd_t cmd = {.args = args, .stage = stage, .out = TF_OUT_JSON};
    rc = step(j, &cmd, TF_BUILD_HINT, err);
  }
  read_state(j, stage, res);
  if (rc == 0)
    rc = show(j, stage, res, err);
  return rc;
}

int tf_apply(void *ctx, const atr_prov_apply_request_t *req,
             atr_prov_apply_result_t *res, char **err) {
  int rc = check_apply_request(req, err);
  if (rc != 0)
    return rc;
  tf_job_t j;
  if (job_begin(ctx, &j, req->job, req->log, req->canceled, req->workdir,
                req) != 0)
    return tf_failf(err, ATR_ENOMEM, "out of memory");
  rc = do_apply(&j, req, res, err);
  job_end(&j);
  return rc;
}
