/* start.c — the start transition.
 *
 *   1. images: present, or pulled (pull_policy)
 *   2. volumes: each created when missing, kept when there
 *   3. containers of the workspace that the template no longer has: removed
 *   4. each container: the one with its name removed (an earlier build's,
 *      running or not), then created anew and started
 *   5. wait (up to start_timeout) until each runs: running for a second,
 *      or healthy when it has a health check. One that exits fails the
 *      build with its exit code and its last output lines.
 *
 * Every step is idempotent: a retry after a crash half-way converges.
 * Each engine step is one job log line; engine errors are logged and
 * returned with the engine's own message.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DK_CALL_TIMEOUT_MS 60000L
#define DK_WAIT_TICK_MS 200
/* A container without a health check counts as up once it has been
 * running this long: a command that fails at once is caught. */
#define DK_SETTLE_NS (1000ull * 1000 * 1000)
#define DK_LAST_LINES 20

static char *escaped_path(dk_engine_t *e, const char *fmt, const char *name) {
  char *q = dk_escape(e, name);
  char *path = NULL;
  if (q == NULL || asprintf(&path, fmt, q) < 0)
    path = NULL;
  free(q);
  return path;
}

/* ---- describing */

static void limits_text(const dk_container_t *c, char *buf, size_t size) {
  char mem[32] = "no memory limit";
  if (c->memory > 0) {
    char bytes[24];
    dk_format_bytes(c->memory, bytes, sizeof bytes);
    snprintf(mem, sizeof mem, "%s memory", bytes);
  }
  char cpus[32] = "no CPU limit";
  if (c->nano_cpus > 0)
    snprintf(cpus, sizeof cpus, "%g CPU%s", (double)c->nano_cpus / 1e9,
             c->nano_cpus == 1000000000 ? "" : "s");
  snprintf(buf, size, "%s, %s, network %s", cpus, mem, c->network_mode);
}

static void describe_container(dk_job_t *j, const dk_container_t *c) {
  char limits[128];
  limits_text(c, limits, sizeof limits);
  dk_logf(j, ATR_LOG_INFO, "Container %s: image %s; %s", c->name, c->image,
          limits);
  if (c->ncommand > 0) {
    json_t *cmd = json_array();
    for (size_t i = 0; i < c->ncommand; i++)
      json_array_append_new(cmd, json_string(c->command[i]));
    char *text = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    dk_logf(j, ATR_LOG_INFO, "  command: %s", text ? text : "?");
    free(text);
  }
  for (size_t i = 0; i < c->nmounts; i++)
    dk_logf(j, ATR_LOG_INFO, "  volume %s at %s", c->mounts[i].volume,
            c->mounts[i].path);
  if (c->nenv == 0)
    return;
  dk_buf_t b = {0};
  for (size_t i = 0; i < c->nenv; i++) {
    if (c->env_sensitive)
      dk_buf_printf(&b, "%s%s", i ? ", " : "", c->env[i].key);
    else
      dk_buf_printf(&b, "%s%s=%s", i ? ", " : "", c->env[i].key,
                    c->env[i].value);
  }
  dk_logf(j, ATR_LOG_INFO, "  env: %s%s", b.data ? b.data : "",
          c->env_sensitive ? " (values not shown: they use a sensitive "
                             "parameter)"
                           : "");
  dk_buf_free(&b);
}

void dk_describe(dk_job_t *j, const dk_plan_t *plan) {
  for (size_t i = 0; i < plan->ncontainers; i++)
    describe_container(j, &plan->containers[i]);
}

/* ---- images and volumes */

static int ensure_image(dk_engine_t *e, const char *image, char **err) {
  const char *policy = e->j->c->pull_policy;
  if (strcmp(policy, "always") == 0)
    return dk_pull(e, image, err);
  char *path = NULL;
  if (asprintf(&path, "/images/%s/json", image) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc == 0 && r.status == 200) {
    const char *id = json_string_value(json_object_get(r.json, "Id"));
    dk_logf(e->j, ATR_LOG_INFO, "Image %s is present (%.19s)", image,
            id ? id : "?");
  } else if (rc == 0 && r.status == 404 && strcmp(policy, "never") == 0) {
    rc = dk_fail_log(e->j, err, ATR_ENOENT,
                     "No such image: %s (pull_policy is never, so atrium "
                     "does not pull it; load it into the Docker engine at %s "
                     "or set %s.pull_policy to if-missing)",
                     image, e->j->c->socket, DK_SECTION);
  } else if (rc == 0 && r.status == 404) {
    rc = dk_pull(e, image, err);
  } else if (rc == 0) {
    rc = dk_engine_fail(e, &r, err, "inspecting image %s", image);
  }
  dk_resp_free(&r);
  return rc;
}

static int ensure_images(dk_engine_t *e, const dk_plan_t *plan, char **err) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < plan->ncontainers; i++) {
    bool seen = false;
    for (size_t k = 0; k < i && !seen; k++)
      seen = strcmp(plan->containers[k].image, plan->containers[i].image) == 0;
    if (!seen)
      rc = ensure_image(e, plan->containers[i].image, err);
  }
  return rc;
}

static json_t *labels_json(const dk_kv_t *v, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    json_object_set_new(o, v[i].key, json_string(v[i].value));
  return o;
}

static int ensure_volume(dk_engine_t *e, const dk_plan_t *plan,
                         const char *name, char **err) {
  char *path = escaped_path(e, "/volumes/%s", name);
  if (path == NULL)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc == 0 && r.status == 200) {
    dk_logf(e->j, ATR_LOG_INFO, "Volume %s exists; keeping it", name);
  } else if (rc == 0 && r.status == 404) {
    dk_resp_free(&r);
    json_t *body =
        json_pack("{s:s, s:o}", "Name", name, "Labels",
                  labels_json(plan->volume_labels, plan->nvolume_labels));
    dk_logf(e->j, ATR_LOG_INFO, "Creating volume %s", name);
    rc = dk_call(e, "POST", "/volumes/create", body, DK_CALL_TIMEOUT_MS, &r,
                 err);
    json_decref(body);
    if (rc == 0 && r.status != 201 && r.status != 200)
      rc = dk_engine_fail(e, &r, err, "creating volume %s", name);
  } else if (rc == 0) {
    rc = dk_engine_fail(e, &r, err, "inspecting volume %s", name);
  }
  dk_resp_free(&r);
  return rc;
}

/* ---- containers */

/* DELETE /containers/ID?force=1: gone afterwards (also when it was gone
 * already, or the engine was removing it). */
int dk_container_remove(dk_engine_t *e, const char *id, const char *name,
                        char **err) {
  char *path = NULL;
  if (asprintf(&path, "/containers/%s?force=1", id) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = 0;
  for (int tries = 0; rc == 0 && tries < 150; tries++) {
    rc = dk_call(e, "DELETE", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
    if (rc != 0 || r.status == 204 || r.status == 404)
      break;
    if (r.status != 409 || tries == 149) {
      rc = dk_engine_fail(e, &r, err, "removing container %s", name);
      break;
    }
    dk_resp_free(&r); /* 409: removal already in progress */
    usleep(DK_WAIT_TICK_MS * 1000);
  }
  dk_resp_free(&r);
  free(path);
  return rc;
}

static const char *label(const json_t *labels, const char *prefix,
                         const char *key) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, key);
  return json_string_value(json_object_get(labels, name));
}

static bool same(const char *a, const char *b) {
  return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Remove the container that has c's name, when it is this workspace's:
 * its workspace_id, or (left behind by a deleted workspace that had the
 * same owner and name) its owner_name and workspace_name. Anything else
 * with that name is not atrium's to remove. */
static int clear_name(dk_engine_t *e, const atr_prov_apply_request_t *req,
                      const dk_container_t *c, char **err) {
  char *path = escaped_path(e, "/containers/%s/json", c->name);
  if (path == NULL)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc != 0 || r.status == 404) {
    dk_resp_free(&r);
    return rc;
  }
  if (r.status != 200) {
    rc = dk_engine_fail(e, &r, err, "inspecting container %s", c->name);
    dk_resp_free(&r);
    return rc;
  }
  const char *prefix = e->j->c->label_prefix;
  const json_t *labels =
      json_object_get(json_object_get(r.json, "Config"), "Labels");
  const char *id = json_string_value(json_object_get(r.json, "Id"));
  const char *status = json_string_value(
      json_object_get(json_object_get(r.json, "State"), "Status"));
  const char *wid = label(labels, prefix, "workspace_id");
  if (same(wid, req->workspace_id)) {
    dk_logf(e->j, ATR_LOG_INFO,
            "Removing container %s (%.12s, %s) of an earlier build", c->name,
            id ? id : "?", status ? status : "?");
  } else if (wid != NULL &&
             same(label(labels, prefix, "owner_name"), req->owner_name) &&
             same(label(labels, prefix, "workspace_name"),
                  req->workspace_name)) {
    dk_logf(e->j, ATR_LOG_WARN,
            "Removing container %s (%.12s, %s) left by an earlier workspace "
            "%s of %s (id %s)",
            c->name, id ? id : "?", status ? status : "?", req->workspace_name,
            req->owner_name, wid);
  } else {
    rc = dk_fail_log(
        e->j, err, ATR_EEXIST,
        "a container named %s exists that is not this workspace's (%s); "
        "remove it (docker rm -f %s) or rename the workspace",
        c->name,
        wid ? "it belongs to another workspace"
            : "it has no " DK_SECTION " labels",
        c->name);
  }
  if (rc == 0 && id != NULL)
    rc = dk_container_remove(e, id, c->name, err);
  dk_resp_free(&r);
  return rc;
}

static json_t *create_body(const atr_prov_apply_request_t *req,
                           const dk_container_t *c) {
  (void)req;
  json_t *env = json_array(), *mounts = json_array();
  for (size_t i = 0; i < c->nenv; i++) {
    char *kv = NULL;
    if (asprintf(&kv, "%s=%s", c->env[i].key, c->env[i].value) >= 0)
      json_array_append_new(env, json_string(kv));
    free(kv);
  }
  for (size_t i = 0; i < c->nmounts; i++)
    json_array_append_new(mounts, json_pack("{s:s, s:s, s:s}", "Type", "volume",
                                            "Source", c->mounts[i].volume,
                                            "Target", c->mounts[i].path));
  json_t *host =
      json_pack("{s:o, s:s}", "Mounts", mounts, "NetworkMode", c->network_mode);
  if (c->nano_cpus > 0)
    json_object_set_new(host, "NanoCpus", json_integer(c->nano_cpus));
  if (c->memory > 0)
    json_object_set_new(host, "Memory", json_integer(c->memory));
  json_t *body =
      json_pack("{s:s, s:o, s:o, s:o, s:i}", "Image", c->image, "Env", env,
                "Labels", labels_json(c->labels, c->nlabels), "HostConfig",
                host, "StopTimeout", DK_STOP_TIMEOUT_S);
  if (c->ncommand > 0) {
    json_t *cmd = json_array();
    for (size_t i = 0; i < c->ncommand; i++)
      json_array_append_new(cmd, json_string(c->command[i]));
    json_object_set_new(body, "Entrypoint", cmd);
    json_object_set_new(body, "Cmd", json_array());
  }
  if (c->working_dir != NULL)
    json_object_set_new(body, "WorkingDir", json_string(c->working_dir));
  /* The engine refuses a hostname in the host's or another container's
   * network namespace. */
  if (c->hostname != NULL && strcmp(c->network_mode, "host") != 0 &&
      strncmp(c->network_mode, "container:", 10) != 0)
    json_object_set_new(body, "Hostname", json_string(c->hostname));
  return body;
}

/* agent: the agent this container runs, or NULL. */
static int create_container(dk_engine_t *e, const atr_prov_apply_request_t *req,
                            const dk_container_t *c,
                            const atr_prov_agent_t *agent, char **id,
                            char **err) {
  char *path = escaped_path(e, "/containers/create?name=%s", c->name);
  json_t *body = create_body(req, c);
  if (path == NULL || body == NULL) {
    free(path);
    json_decref(body);
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  }
  int arc = agent != NULL ? dk_agent_body(e, agent, c, body, err) : 0;
  if (arc != 0) {
    free(path);
    json_decref(body);
    return arc;
  }
  char limits[128];
  limits_text(c, limits, sizeof limits);
  dk_logf(e->j, ATR_LOG_INFO, "Creating container %s from %s (%s)", c->name,
          c->image, limits);
  dk_resp_t r;
  int rc = dk_call(e, "POST", path, body, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  json_decref(body);
  if (rc == 0 && r.status != 201)
    rc = dk_engine_fail(e, &r, err, "creating container %s", c->name);
  const char *cid = json_string_value(json_object_get(r.json, "Id"));
  if (rc == 0 && cid == NULL)
    rc = dk_fail_log(e->j, err, ATR_EPLUGIN,
                     "creating container %s: the engine returned no id",
                     c->name);
  if (rc == 0) {
    dk_logf(e->j, ATR_LOG_INFO, "Created container %s (%.12s)", c->name, cid);
    size_t i;
    const json_t *w;
    json_array_foreach(json_object_get(r.json, "Warnings"), i, w) {
      if (json_string_value(w) != NULL)
        dk_logf(e->j, ATR_LOG_WARN, "%s: %s", c->name, json_string_value(w));
    }
    *id = strdup(cid);
    if (*id == NULL)
      rc = dk_failf(err, ATR_ENOMEM, "out of memory");
  }
  dk_resp_free(&r);
  return rc;
}

static int start_container(dk_engine_t *e, const char *name, const char *id,
                           char **err) {
  char *path = NULL;
  if (asprintf(&path, "/containers/%s/start", id) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_logf(e->j, ATR_LOG_INFO, "Starting container %s", name);
  dk_resp_t r;
  int rc = dk_call(e, "POST", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc == 0 && r.status != 204 && r.status != 304)
    rc = dk_engine_fail(e, &r, err, "starting container %s", name);
  dk_resp_free(&r);
  return rc;
}

/* Containers of the workspace that the plan does not have (the template
 * dropped an extra container, or the workspace was renamed). */
static int remove_strays(dk_engine_t *e, const atr_prov_apply_request_t *req,
                         const dk_plan_t *plan, char **err) {
  dk_inv_t inv;
  int rc = dk_inv_load(e, req, NULL, 0, &inv, err);
  for (size_t i = 0; rc == 0 && i < inv.ncontainers; i++) {
    const dk_obj_t *o = &inv.containers[i];
    bool planned = false;
    for (size_t k = 0; k < plan->ncontainers && !planned; k++)
      planned = strcmp(plan->containers[k].name, o->name) == 0;
    if (planned)
      continue;
    dk_logf(e->j, ATR_LOG_INFO,
            "Removing container %s (%.12s): the workspace no longer has it",
            o->name, o->id);
    rc = dk_container_remove(e, o->id, o->name, err);
  }
  dk_inv_free(&inv);
  return rc;
}

/* ---- waiting */

typedef struct waiting {
  const char *name;
  const char *id;
  uint64_t running_since; /* monotonic ns; 0: not seen running */
  bool up, said;
} waiting_t;

static int exited(dk_engine_t *e, const waiting_t *w, const json_t *st,
                  char **err) {
  long long code =
      (long long)json_integer_value(json_object_get(st, "ExitCode"));
  bool oom = json_is_true(json_object_get(st, "OOMKilled"));
  const char *why = json_string_value(json_object_get(st, "Error"));
  dk_errs_t lines = {0};
  dk_container_logs(e, w->id, DK_LAST_LINES, &lines);
  dk_buf_t tail = {0};
  size_t from = lines.n > 5 ? lines.n - 5 : 0;
  for (size_t i = 0; i < lines.n; i++) {
    dk_logf(e->j, ATR_LOG_ERROR, "%s: %s", w->name, lines.v[i]);
    if (i >= from)
      dk_buf_printf(&tail, "%s%s", i > from ? " | " : "", lines.v[i]);
  }
  int rc = dk_fail_log(
      e->j, err, ATR_EPLUGIN,
      "container %s exited with code %lld before it was up%s%s%s; %s%s",
      w->name, code,
      oom ? " (killed: out of memory, see memory in workspace.yaml)" : "",
      why && *why ? ": " : "", why ? why : "",
      lines.n ? "its last output: " : "it wrote no output",
      tail.data ? tail.data : "");
  dk_buf_free(&tail);
  dk_errs_free(&lines);
  return rc;
}

static int unhealthy(dk_engine_t *e, const waiting_t *w, const json_t *health,
                     char **err) {
  const json_t *log = json_object_get(health, "Log");
  const json_t *last = json_array_get(log, json_array_size(log) - 1);
  const char *out = json_string_value(json_object_get(last, "Output"));
  return dk_fail_log(
      e->j, err, ATR_EPLUGIN,
      "container %s is unhealthy: its health check failed%s%.300s", w->name,
      out && *out ? ": " : "", out ? out : "");
}

/* One look at a container: w->up once it is up; an error when it exited or
 * is unhealthy. */
static int look(dk_engine_t *e, waiting_t *w, char **err) {
  char *path = NULL;
  if (asprintf(&path, "/containers/%s/json", w->id) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc == 0 && r.status != 200)
    rc = dk_engine_fail(e, &r, err, "inspecting container %s", w->name);
  const json_t *st = json_object_get(r.json, "State");
  const json_t *health = json_object_get(st, "Health");
  const char *hs = json_string_value(json_object_get(health, "Status"));
  uint64_t now = e->j->c->host->clock_monotonic_ns();
  if (rc != 0) {
    /* the call failed */
  } else if (!json_is_true(json_object_get(st, "Running"))) {
    const char *s = json_string_value(json_object_get(st, "Status"));
    if (s != NULL && (strcmp(s, "exited") == 0 || strcmp(s, "dead") == 0))
      rc = exited(e, w, st, err);
    w->running_since = 0;
  } else if (hs != NULL && strcmp(hs, "unhealthy") == 0) {
    rc = unhealthy(e, w, health, err);
  } else if (hs != NULL) {
    w->up = strcmp(hs, "healthy") == 0;
  } else if (w->running_since == 0) {
    w->running_since = now;
  } else {
    w->up = now - w->running_since >= DK_SETTLE_NS;
  }
  dk_resp_free(&r);
  return rc;
}

static int wait_up(dk_engine_t *e, waiting_t *ws, size_t n, char **err) {
  dk_ctx_t *c = e->j->c;
  uint64_t deadline =
      c->host->clock_monotonic_ns() + (uint64_t)c->start_timeout_ms * 1000000u;
  for (size_t i = 0; i < n; i++)
    dk_logf(e->j, ATR_LOG_INFO, "Waiting for container %s to be running",
            ws[i].name);
  for (;;) {
    size_t up = 0;
    for (size_t i = 0; i < n; i++) {
      int rc = ws[i].up ? 0 : look(e, &ws[i], err);
      if (rc == ATR_ECANCELED && err != NULL) {
        free(*err);
        *err = NULL;
      }
      if (rc == ATR_ECANCELED)
        break;
      if (rc != 0)
        return rc;
      up += ws[i].up;
      if (ws[i].up && !ws[i].said) {
        dk_logf(e->j, ATR_LOG_INFO, "Container %s is running", ws[i].name);
        ws[i].said = true;
      }
    }
    if (up == n)
      return 0;
    if (dk_job_canceled(e->j))
      return dk_failf(err, ATR_ECANCELED,
                      "the build was canceled while waiting for the "
                      "containers to be running");
    if (c->host->clock_monotonic_ns() >= deadline) {
      for (size_t i = 0; i < n; i++) {
        if (!ws[i].up)
          return dk_fail_log(
              e->j, err, ATR_ETIMEDOUT,
              "container %s is not up after %llds "
              "(start_timeout); see its log with docker logs "
              "%s",
              ws[i].name, (long long)(c->start_timeout_ms / 1000), ws[i].name);
      }
    }
    usleep(DK_WAIT_TICK_MS * 1000);
  }
}

/* ---- start */

static int make_containers(dk_engine_t *e, const atr_prov_apply_request_t *req,
                           const dk_plan_t *plan, char **ids, char **err) {
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < plan->ncontainers; i++) {
    rc = clear_name(e, req, &plan->containers[i], err);
    if (rc == 0)
      rc = create_container(e, req, &plan->containers[i],
                            i == 0 ? dk_agent(req) : NULL, &ids[i], err);
  }
  for (size_t i = 0; rc == 0 && i < plan->ncontainers; i++)
    rc = start_container(e, plan->containers[i].name, ids[i], err);
  return rc;
}

int dk_start(dk_engine_t *e, const atr_prov_apply_request_t *req,
             const dk_plan_t *plan, char **err) {
  int rc = ensure_images(e, plan, err);
  for (size_t i = 0; rc == 0 && i < plan->nvolumes; i++)
    rc = ensure_volume(e, plan, plan->volumes[i], err);
  if (rc == 0)
    rc = remove_strays(e, req, plan, err);
  char **ids = calloc(plan->ncontainers, sizeof *ids);
  if (rc == 0 && ids == NULL)
    rc = dk_failf(err, ATR_ENOMEM, "out of memory");
  if (rc == 0)
    rc = make_containers(e, req, plan, ids, err);
  waiting_t *ws = rc == 0 ? calloc(plan->ncontainers, sizeof *ws) : NULL;
  if (rc == 0 && ws == NULL)
    rc = dk_failf(err, ATR_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < plan->ncontainers; i++)
    ws[i] = (waiting_t){.name = plan->containers[i].name, .id = ids[i]};
  if (rc == 0)
    rc = wait_up(e, ws, plan->ncontainers, err);
  free(ws);
  for (size_t i = 0; ids != NULL && i < plan->ncontainers; i++)
    free(ids[i]);
  free(ids);
  return rc;
}
