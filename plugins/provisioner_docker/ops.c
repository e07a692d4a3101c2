/* ops.c — parse(), plan() and apply(), and the stop and delete
 * transitions.
 *
 *   parse   workspace.yaml: syntax, keys, types, references against the
 *           template's parameters, and every value that uses no reference
 *           (images against allowed_images, CPUs, memory, names, paths)
 *   plan    start: the spec with this build's values, every value checked,
 *           and what will be made logged; stop and delete: what they do
 *   apply   the transition on the engine; returns the state and the
 *           resources, also after a failure or a cancel once the engine
 *           answered (then from a fresh look at what exists)
 *
 * stop and delete need no valid spec: a workspace whose template became
 * unusable (an image no longer allowed) can still be stopped and deleted.
 * They find the workspace's objects by label and by the prior state.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define DK_PARSE_REQ_MIN                                                       \
  (offsetof(atr_prov_parse_request_t, nparams) + sizeof(size_t))
#define DK_APPLY_REQ_MIN                                                       \
  (offsetof(atr_prov_apply_request_t, prior_state_len) + sizeof(size_t))

static void job_begin(dk_ctx_t *c, dk_job_t *j, atr_prov_job_t *job,
                      atr_prov_log_fn log, atr_prov_canceled_fn canceled,
                      const char *stage) {
  memset(j, 0, sizeof *j);
  j->c = c;
  j->job = job;
  j->log = log;
  j->canceled = canceled;
  j->stage = stage;
  atomic_init(&j->cancel_flag, false);
  dk_jobs_add(c, j);
}

static void job_end(dk_job_t *j) {
  dk_jobs_remove(j->c, j);
}

/* Every problem as an error line; all of them, redacted, as *err. */
static int spec_failed(dk_job_t *j, int rc, dk_errs_t *errs, char **err) {
  if (rc == ATR_ENOMEM)
    return dk_failf(err, rc, "out of memory");
  for (size_t i = 0; i < errs->n; i++)
    dk_log(j, ATR_LOG_ERROR, errs->v[i]);
  char *all = dk_errs_join(errs);
  if (err != NULL)
    *err = all ? dk_redact(j, all) : NULL;
  free(all);
  return rc;
}

static const char *transition_name(atr_transition_t t) {
  return t == ATR_TRANSITION_START    ? "start"
         : t == ATR_TRANSITION_STOP   ? "stop"
         : t == ATR_TRANSITION_DELETE ? "delete"
                                      : NULL;
}

/* ---- parse */

static void summarize(dk_job_t *j, const dk_spec_t *spec) {
  dk_buf_t b = {0};
  const dk_csrc_t *m = &spec->containers[0];
  dk_buf_printf(&b, DK_SPEC_FILE " is valid: image %s", m->image.raw);
  if (spec->ncontainers > 1) {
    dk_buf_printf(&b, "; extra containers:");
    for (size_t i = 1; i < spec->ncontainers; i++)
      dk_buf_printf(&b, "%s %s", i > 1 ? "," : "",
                    spec->containers[i].name.raw);
  }
  size_t nvol = 0;
  for (size_t i = 0; i < spec->ncontainers; i++)
    nvol += spec->containers[i].nvolumes;
  if (nvol > 0) {
    dk_buf_printf(&b, "; volumes:");
    size_t k = 0;
    for (size_t i = 0; i < spec->ncontainers; i++) {
      for (size_t v = 0; v < spec->containers[i].nvolumes; v++)
        dk_buf_printf(&b, "%s %s at %s", k++ ? "," : "",
                      spec->containers[i].volumes[v].name.raw,
                      spec->containers[i].volumes[v].path.raw);
    }
  }
  dk_log(j, ATR_LOG_INFO, b.data ? b.data : DK_SPEC_FILE " is valid");
  dk_buf_free(&b);
}

int dk_parse(void *ctx, const atr_prov_parse_request_t *req, char **err) {
  if (req->struct_size < DK_PARSE_REQ_MIN || req->workdir == NULL)
    return dk_failf(err, ATR_EINVAL,
                    "parse request of %u bytes without a workdir or "
                    "parameters; upgrade atrium",
                    (unsigned)req->struct_size);
  dk_job_t j;
  job_begin(ctx, &j, req->job, req->log, req->canceled, "Validating");
  dk_errs_t errs = {0};
  dk_spec_t spec;
  dk_plan_t plan;
  int rc =
      dk_spec_load(req->workdir, req->param_names, req->nparams, &spec, &errs);
  if (rc == 0 || rc == ATR_EINVAL) {
    int prc = dk_plan_make(ctx, &spec, NULL, &plan, &errs);
    rc = rc != 0 ? rc : prc;
    if (rc == 0)
      summarize(&j, &spec);
  }
  dk_spec_free(&spec);
  if (rc != 0)
    rc = spec_failed(&j, rc, &errs, err);
  dk_errs_free(&errs);
  job_end(&j);
  return rc;
}

/* ---- the spec of a build */

/* The spec with the build's values. quiet: problems are not logged or
 * returned (stop and delete only use it to find more of what exists). */
static int load_plan(dk_job_t *j, const atr_prov_apply_request_t *req,
                     dk_plan_t *plan, bool quiet, char **err) {
  memset(plan, 0, sizeof *plan);
  const char **names = calloc(req->nparams ? req->nparams : 1, sizeof *names);
  if (names == NULL)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  for (size_t i = 0; i < req->nparams; i++)
    names[i] = atr_param_at(req->params, i)->name;
  dk_errs_t errs = {0};
  dk_spec_t spec;
  int rc = dk_spec_load(req->workdir, names, req->nparams, &spec, &errs);
  free(names);
  if (rc == 0 || rc == ATR_EINVAL) {
    int prc = dk_plan_make(j->c, &spec, req, plan, &errs);
    if (rc != 0)
      dk_plan_free(plan);
    rc = rc != 0 ? rc : prc;
  }
  dk_spec_free(&spec);
  if (rc != 0 && !quiet)
    rc = spec_failed(j, rc, &errs, err);
  dk_errs_free(&errs);
  return rc;
}

static int check_apply_request(const atr_prov_apply_request_t *req,
                               char **err) {
  if (req->struct_size < DK_APPLY_REQ_MIN || req->workdir == NULL)
    return dk_failf(err, ATR_EINVAL,
                    "build request of %u bytes without a workdir or prior "
                    "state; upgrade atrium",
                    (unsigned)req->struct_size);
  if (transition_name(req->transition) == NULL)
    return dk_failf(err, ATR_EINVAL,
                    "unknown transition %d; expected start, stop or delete",
                    (int)req->transition);
  if (req->workspace_id == NULL || *req->workspace_id == '\0')
    return dk_failf(err, ATR_EINVAL, "a build without a workspace id");
  return 0;
}

static void build_job(dk_ctx_t *c, dk_job_t *j,
                      const atr_prov_apply_request_t *req, const char *stage) {
  job_begin(c, j, req->job, req->log, req->canceled, stage);
  j->params = req->params;
  j->nparams = req->nparams;
  const atr_prov_agent_t *a = dk_agent(req);
  j->secret = a != NULL ? a->token : NULL;
}

/* ---- plan */

int dk_plan(void *ctx, const atr_prov_apply_request_t *req, char **err) {
  int rc = check_apply_request(req, err);
  if (rc != 0)
    return rc;
  dk_job_t j;
  build_job(ctx, &j, req, "Planning");
  if (dk_job_canceled(&j)) {
    job_end(&j);
    return dk_failf(err, ATR_ECANCELED,
                    "the build was canceled before it "
                    "started");
  }
  if (req->transition == ATR_TRANSITION_START) {
    dk_plan_t plan;
    rc = load_plan(&j, req, &plan, false, err);
    int arc = rc == 0 ? dk_agent_check(&j, req, &plan, true, err) : rc;
    if (arc == 0) {
      dk_logf(&j, ATR_LOG_INFO,
              "Start: %zu volume%s (made when missing, then kept), %zu "
              "container%s (made anew)",
              plan.nvolumes, plan.nvolumes == 1 ? "" : "s", plan.ncontainers,
              plan.ncontainers == 1 ? "" : "s");
      dk_describe(&j, &plan);
    }
    if (rc == 0)
      dk_plan_free(&plan);
    rc = arc;
  } else if (req->transition == ATR_TRANSITION_STOP) {
    dk_logf(&j, ATR_LOG_INFO,
            "Stop: the workspace's containers get %ds to stop (the one that "
            "runs the agent %llds) and are removed; its volumes are kept",
            DK_STOP_TIMEOUT_S, (long long)(j.c->agent_stop_timeout_ms / 1000));
  } else {
    dk_log(&j, ATR_LOG_INFO,
           "Delete: the workspace's containers and volumes are removed");
  }
  job_end(&j);
  return rc;
}

/* ---- stop and delete */

static int stop_container(dk_engine_t *e, const dk_obj_t *o, char **err) {
  /* No ?t=: each container stops within its own StopTimeout (longer for
   * the agent's; the engine's 10 s for containers made before it was
   * set). */
  char *path = NULL;
  if (asprintf(&path, "/containers/%s/stop", o->id) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  long call_ms =
      (long)(e->j->c->agent_stop_timeout_ms + (DK_STOP_TIMEOUT_S + 60) * 1000L);
  dk_logf(e->j, ATR_LOG_INFO, "Stopping container %s (%.12s, %s)", o->name,
          o->id, o->status ? o->status : "?");
  dk_resp_t r;
  int rc = dk_call(e, "POST", path, NULL, call_ms, &r, err);
  free(path);
  if (rc == 0 && r.status != 204 && r.status != 304 && r.status != 404)
    rc = dk_engine_fail(e, &r, err, "stopping container %s", o->name);
  dk_resp_free(&r);
  if (rc == 0) {
    dk_logf(e->j, ATR_LOG_INFO, "Removing container %s", o->name);
    rc = dk_container_remove(e, o->id, o->name, err);
  }
  return rc;
}

static int remove_volume(dk_engine_t *e, const char *name, char **err) {
  char *q = dk_escape(e, name);
  char *path = NULL;
  if (q == NULL || asprintf(&path, "/volumes/%s", q) < 0) {
    free(q);
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  }
  free(q);
  dk_logf(e->j, ATR_LOG_INFO, "Removing volume %s", name);
  dk_resp_t r;
  int rc = dk_call(e, "DELETE", path, NULL, 60000, &r, err);
  free(path);
  if (rc == 0 && r.status != 204 && r.status != 404)
    rc = dk_engine_fail(e, &r, err, "removing volume %s", name);
  dk_resp_free(&r);
  return rc;
}

static int stop_or_delete(dk_engine_t *e, const atr_prov_apply_request_t *req,
                          const dk_plan_t *plan, char **err) {
  bool del = req->transition == ATR_TRANSITION_DELETE;
  dk_inv_t inv;
  int rc = dk_inv_load(e, req, plan->volumes, plan->nvolumes, &inv, err);
  if (rc != 0)
    return rc;
  if (inv.ncontainers == 0)
    dk_log(e->j, ATR_LOG_INFO, "The workspace has no containers");
  for (size_t i = 0; rc == 0 && i < inv.ncontainers; i++) {
    if (del) {
      dk_logf(e->j, ATR_LOG_INFO, "Removing container %s (%.12s, %s)",
              inv.containers[i].name, inv.containers[i].id,
              inv.containers[i].status ? inv.containers[i].status : "?");
      rc = dk_container_remove(e, inv.containers[i].id, inv.containers[i].name,
                               err);
    } else {
      rc = stop_container(e, &inv.containers[i], err);
    }
  }
  for (size_t i = 0; rc == 0 && i < inv.nvolumes; i++) {
    if (del)
      rc = remove_volume(e, inv.volumes[i].name, err);
    else
      dk_logf(e->j, ATR_LOG_INFO, "Keeping volume %s", inv.volumes[i].name);
  }
  if (rc == 0 && del && inv.nvolumes == 0)
    dk_log(e->j, ATR_LOG_INFO, "The workspace has no volumes");
  dk_inv_free(&inv);
  return rc;
}

/* ---- apply */

static int run(dk_job_t *j, const atr_prov_apply_request_t *req,
               const dk_plan_t *plan, atr_prov_apply_result_t *res,
               char **err) {
  dk_engine_t e;
  int rc = dk_engine_open(&e, j, err);
  if (rc != 0) {
    char *why = err ? *err : NULL;
    if (err != NULL)
      *err = NULL;
    rc = dk_fail_log(j, err, rc, "%s", why ? why : atr_strerror(rc));
    free(why);
    return rc;
  }
  dk_logf(j, ATR_LOG_INFO, "Docker Engine %s (API %s) at %s; %s of %s",
          e.version, e.api, j->c->socket, transition_name(req->transition),
          req->workspace_name ? req->workspace_name : req->workspace_id);
  if (req->transition == ATR_TRANSITION_START)
    rc = dk_start(&e, req, plan, err);
  else
    rc = stop_or_delete(&e, req, plan, err);
  if (rc == ATR_ECANCELED) {
    dk_log(j, ATR_LOG_WARN, "Canceled; the state lists what exists now");
    if (err != NULL && *err != NULL && strcmp(*err, "canceled") == 0) {
      free(*err);
      *err = strdup("the build was canceled while it was talking to the "
                    "Docker engine");
    }
  }
  dk_result_from_engine(&e, req, plan->ncontainers ? plan : NULL, res);
  size_t nc = 0, nv = 0;
  for (size_t i = 0; i < res->nresources; i++) {
    if (strcmp(res->resources[i].type, "docker_container") == 0)
      nc++;
    else
      nv++;
  }
  if (rc == 0)
    dk_logf(j, ATR_LOG_INFO,
            "Done: the workspace has %zu container%s and %zu volume%s", nc,
            nc == 1 ? "" : "s", nv, nv == 1 ? "" : "s");
  dk_engine_close(&e);
  return rc;
}

int dk_apply(void *ctx, const atr_prov_apply_request_t *req,
             atr_prov_apply_result_t *res, char **err) {
  int rc = check_apply_request(req, err);
  if (rc != 0)
    return rc;
  dk_job_t j;
  build_job(ctx, &j, req, "Applying");
  dk_plan_t plan = {0};
  if (dk_job_canceled(&j))
    rc = dk_failf(err, ATR_ECANCELED,
                  "the build was canceled before "
                  "anything was done");
  else if (req->transition == ATR_TRANSITION_START)
    rc = load_plan(&j, req, &plan, false, err);
  else if (load_plan(&j, req, &plan, true, NULL) != 0)
    memset(&plan, 0, sizeof plan);
  /* plan() checked it too, but a host may call apply() alone. */
  if (rc == 0 && req->transition == ATR_TRANSITION_START)
    rc = dk_agent_check(&j, req, &plan, false, err);
  if (rc == 0)
    rc = run(&j, req, &plan, res, err);
  dk_plan_free(&plan);
  job_end(&j);
  return rc;
}
