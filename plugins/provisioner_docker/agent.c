/* agent.c — the workspace agent in the main container (SDK ABI 1.3).
 *
 * The server's agent bundle (a directory: the launcher atrium-agent, bin/,
 * lib/ with its loader) is bind-mounted read-only at /opt/atrium, and the
 * launcher becomes the entrypoint: `atrium-agent agent --init -- <command>`
 * starts the agent, which runs the workspace's own command (the spec's,
 * else the image's Entrypoint and Cmd) as its child. The agent reads its
 * URL and token from ATRIUM_AGENT_URL and ATRIUM_AGENT_TOKEN. The token is
 * in the container's environment, where `docker inspect` shows it to
 * whoever can reach the engine (as in Coder's docker template); it is
 * redacted from every line this plugin logs (dk_job_t.secret).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DK_AGENT_CALL_TIMEOUT_MS 60000L

const atr_prov_agent_t *dk_agent(const atr_prov_apply_request_t *req) {
  if (!ATR_PROV_REQUEST_HAS_AGENT(req) ||
      req->transition != ATR_TRANSITION_START)
    return NULL;
  return req->agent;
}

int dk_agent_check(dk_job_t *j, const atr_prov_apply_request_t *req,
                   const dk_plan_t *plan, bool describe, char **err) {
  const atr_prov_agent_t *a = dk_agent(req);
  if (a == NULL || plan->ncontainers == 0)
    return 0;
  const dk_container_t *c = &plan->containers[0];
  const char *url = a->access_url ? a->access_url : "(no access URL)";
  if (a->bundle_dir == NULL || a->bundle_dir[0] != '/')
    return dk_fail_log(j, err, ATR_EINVAL,
                       "the template has an agent, but the server has no "
                       "agent bundle to mount (set agent.bundle_dir in its "
                       "configuration to the bundle's absolute path)");
  if (strcmp(c->network_mode, "none") == 0)
    return dk_fail_log(j, err, ATR_EINVAL,
                       "the agent cannot reach %s with network_mode none; "
                       "use host or a network that reaches the server",
                       url);
  if (describe)
    dk_logf(j, ATR_LOG_INFO,
            "Agent %s: runs in %s from %s (mounted read-only at " DK_AGENT_DIR
            "), dials %s; token (set) in its environment",
            a->name ? a->name : "main", c->name, a->bundle_dir, url);
  return 0;
}

/* The image's Entrypoint then Cmd, appended to argv. */
static int image_command(dk_engine_t *e, const char *image, json_t *argv,
                         char **err) {
  char *path = NULL;
  if (asprintf(&path, "/images/%s/json", image) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, DK_AGENT_CALL_TIMEOUT_MS, &r, err);
  free(path);
  if (rc == 0 && r.status != 200)
    rc = dk_engine_fail(e, &r, err, "inspecting image %s", image);
  const json_t *cfg = json_object_get(r.json, "Config");
  const char *parts[] = {"Entrypoint", "Cmd"};
  for (size_t k = 0; rc == 0 && k < 2; k++) {
    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(cfg, parts[k]), i, v) {
      if (json_is_string(v))
        json_array_append(argv, (json_t *)v);
    }
  }
  dk_resp_free(&r);
  return rc;
}

static void add_env(json_t *body, const char *key, const char *value) {
  json_t *env = json_object_get(body, "Env");
  char *kv = NULL;
  if (env != NULL && asprintf(&kv, "%s=%s", key, value ? value : "") >= 0)
    json_array_append_new(env, json_string(kv));
  free(kv);
}

int dk_agent_body(dk_engine_t *e, const atr_prov_agent_t *a,
                  const dk_container_t *c, json_t *body, char **err) {
  json_t *argv = json_pack("[s, s, s, s]", DK_AGENT_DIR "/atrium-agent",
                           "agent", "--init", "--");
  int rc = argv == NULL ? dk_failf(err, ATR_ENOMEM, "out of memory") : 0;
  for (size_t i = 0; rc == 0 && i < c->ncommand; i++)
    json_array_append_new(argv, json_string(c->command[i]));
  if (rc == 0 && c->ncommand == 0)
    rc = image_command(e, c->image, argv, err);
  if (rc != 0) {
    json_decref(argv);
    return rc;
  }
  char *shown = json_dumps(argv, JSON_COMPACT);
  dk_logf(e->j, ATR_LOG_INFO, "Agent %s: entrypoint %s",
          a->name ? a->name : "main", shown ? shown : "?");
  free(shown);
  json_object_set_new(body, "Entrypoint", argv);
  json_object_set_new(body, "Cmd", json_array());
  add_env(body, "ATRIUM_AGENT_URL", a->access_url);
  add_env(body, "ATRIUM_AGENT_TOKEN", a->token);
  json_t *host = json_object_get(body, "HostConfig");
  json_array_append_new(json_object_get(host, "Mounts"),
                        json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind",
                                  "Source", a->bundle_dir, "Target",
                                  DK_AGENT_DIR, "ReadOnly", 1));
  json_object_set_new(body, "StopTimeout",
                      json_integer(e->j->c->agent_stop_timeout_ms / 1000));
  return 0;
}
