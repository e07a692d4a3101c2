/* core/jobs/jobrun_agent.c — the workspace agent's part of a build
 * (docs/design/agent.md §3.4): a start build of a version with an agent
 * makes the agent's token (kept in the job's memory and masked in its log;
 * only the digest reaches the database, with the agent rows, in the
 * completion transaction); a stop or delete build asks the live agent to
 * shut down, waits for it (bounded, cancelable) and revokes its token
 * before it applies. */
#include "jobrun_agent.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "atrium/error.h"
#include "dbcrypt.h"
#include "events.h"
#include "log.h"

#define BUNDLE_LAUNCHER "atrium-agent"
/* What the docker provisioner runs as the container's entrypoint (the
 * bundle is mounted at /opt/atrium): the agent in PID-1 mode, with the
 * template's command as its arguments. */
static const char init_script[] =
    "#!/bin/sh\n"
    "# Starts the atrium agent from the bundle mounted at /opt/atrium; it\n"
    "# reads ATRIUM_AGENT_URL and ATRIUM_AGENT_TOKEN from the environment.\n"
    "exec /opt/atrium/atrium-agent agent --init -- \"$@\"\n";

/* ---- the bundle ---------------------------------------------------------- */

static char *bundle_at(const char *dir, const char *rel) {
  char *path = NULL, *launcher = NULL;
  if (asprintf(&path, "%s/%s", dir, rel) < 0)
    return NULL;
  if (asprintf(&launcher, "%s/" BUNDLE_LAUNCHER, path) >= 0 &&
      access(launcher, X_OK) == 0) {
    free(launcher);
    char *real = realpath(path, NULL);
    free(path);
    return real;
  }
  free(launcher);
  free(path);
  return NULL;
}

char *atr__jobrun_agent_bundle(const char *opt) {
  if (!opt || !*opt)
    return NULL;
  if (strcmp(opt, "auto") != 0)
    return strdup(opt);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return NULL;
  *slash = '\0'; /* the binary's directory: <build>/bin or <prefix>/bin */
  char *found = bundle_at(exe, "../agent-bundle");
  if (!found)
    found = bundle_at(exe, "../libexec/atrium/agent-bundle");
  return found;
}

/* ---- a start build ------------------------------------------------------- */

int atr__jobrun_agent_load(struct atr_prov_job *job, atr_db_t *db,
                           const char *version_id, atr__build_agent_t *a,
                           char **err) {
  atr_value_t p[] = {atr_v_text(version_id)};
  char *spec = NULL;
  int rc = atr_db_query_text(
      db, "SELECT agent_spec FROM template_versions WHERE id = ?", p, 1, &spec,
      err);
  if (rc == ATR_ENOENT || (rc == 0 && !spec)) {
    free(spec);
    return 0;
  }
  if (rc != 0)
    return rc;
  json_t *s = json_loads(spec, 0, NULL);
  const char *name = json_string_value(json_object_get(s, "name"));
  a->name = strdup(name ? name : "main");
  json_decref(s);
  a->spec = spec;
  atr_agent_token_new(a->token);
  atr_dbcrypt_token_digest(a->token, a->digest);
  atr__jobrun_secret_add(job, a->token);
  a->prov = (atr_prov_agent_t){.struct_size = sizeof a->prov,
                               .name = a->name,
                               .token = a->token,
                               .access_url = job->cfg->access_url,
                               .bundle_dir = job->cfg->agent_bundle_dir,
                               .init_script = init_script};
  a->on = a->name != NULL;
  return a->name ? 0 : ATR_ENOMEM;
}

void atr__jobrun_agent_free(atr__build_agent_t *a) {
  explicit_bzero(a->token, sizeof a->token);
  free(a->spec);
  free(a->name);
  memset(a, 0, sizeof *a);
}

const atr_prov_agent_t *atr__jobrun_agent_req(const atr__build_agent_t *a) {
  return a->on ? &a->prov : NULL;
}

int atr__jobrun_agent_write(atr_db_t *db, const atr__build_agent_t *a,
                            const atr__agent_outcome_t *o, char **err) {
  if (!o->succeeded)
    return 0;
  if (strcmp(o->transition, "delete") == 0)
    return atr_agents_revoke(db, o->workspace_id, NULL, err);
  if (strcmp(o->transition, "start") != 0)
    return 0;
  if (!a->on || !o->resource_id)
    /* A start without an agent still ends the last one's. */
    return atr_agents_revoke(db, o->workspace_id, o->build_id, err);
  return atr_agents_make_for_build(db, o->workspace_id, o->build_id,
                                   o->resource_id, a->spec, a->digest, err);
}

/* ---- a stop or delete build ------------------------------------------------ */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "5m10s", "40s". */
static void duration_text(int64_t ms, char out[32]) {
  int64_t s = (ms + 999) / 1000;
  if (s >= 60 && s % 60)
    snprintf(out, 32, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
  else if (s >= 60)
    snprintf(out, 32, "%lldm", (long long)(s / 60));
  else
    snprintf(out, 32, "%llds", (long long)s);
}

static int live_name(atr_store_t *store, const char *workspace_id,
                     char name[65], char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(workspace_id)};
  char *n = NULL;
  rc = atr_db_query_text(&db,
                         "SELECT name FROM workspace_agents WHERE "
                         "workspace_id = ? AND revoked_at IS NULL ORDER BY "
                         "created_at DESC LIMIT 1",
                         p, 1, &n, err);
  atr_db_close(&db);
  snprintf(name, 65, "%s", rc == 0 && n ? n : "");
  free(n);
  return rc == ATR_ENOENT ? 0 : rc;
}

/* Until the agent is done, the wait is over or the job is canceled. */
static bool wait_done(struct atr_prov_job *job, const atr_domain_t *dom,
                      const char *workspace_id, int64_t wait_ms) {
  int64_t until = mono_ms() + wait_ms;
  bool done = false;
  char *err = NULL;
  while (!done && !atomic_load(&job->canceled)) {
    int64_t left = until - mono_ms();
    if (left <= 0)
      break;
    int64_t step = left < 1000 ? left : 1000;
    if (dom->events) {
      uint64_t gen = atr_events_gen(dom->events, ATR_EVENT_AGENT);
      atr_events_wait(dom->events, ATR_EVENT_AGENT, gen, step);
    } else {
      struct timespec ts = {0, 200 * 1000000L};
      nanosleep(&ts, NULL);
    }
    int64_t ignored = 0;
    if (atr_agents_shutdown_done(dom, workspace_id, &done, &ignored, &err) != 0)
      done = true; /* the database is away: do not hold the build */
    free(err);
    err = NULL;
  }
  return done;
}

static int revoke_tx(atr_db_t *db, void *ud, char **err) {
  return atr_agents_revoke(db, ud, NULL, err);
}

void atr__jobrun_agent_stop(struct atr_prov_job *job,
                            const char *workspace_id) {
  atr_domain_t dom = {.store = job->cfg->store, .events = job->cfg->events};
  char name[65] = "";
  char *err = NULL;
  bool done = true;
  int64_t wait_ms = 0;
  int rc = live_name(dom.store, workspace_id, name, &err);
  if (rc == 0 && *name)
    rc = atr_agents_request_shutdown(&dom, workspace_id, &err);
  if (rc == 0 && *name)
    rc = atr_agents_shutdown_done(&dom, workspace_id, &done, &wait_ms, &err);
  if (rc == 0 && !done) {
    char d[32];
    duration_text(wait_ms, d);
    atr_jobrun_log(job, ATR_LOG_INFO, "Stopping agent",
                   "Waiting for agent %s to shut down (up to %s)", name, d);
    done = wait_done(job, &dom, workspace_id, wait_ms);
    const char *how = done ? "shut down"
                      : atomic_load(&job->canceled)
                          ? "was not waited for: the build was canceled"
                          : "did not shut down in time; going on";
    atr_jobrun_log(job, done ? ATR_LOG_INFO : ATR_LOG_WARN, "Stopping agent",
                   "Agent %s %s", name, how);
  }
  if (rc != 0)
    atr_jobrun_log(job, ATR_LOG_WARN, "Stopping agent",
                   "Cannot ask the agent to shut down: %s",
                   err ? err : atr_strerror(rc));
  free(err);
  err = NULL;
  if (atomic_load(&job->canceled))
    return; /* nothing is applied: the agent keeps its token */
  rc =
      atr_db_tx(dom.store, ATR_TX_WRITE, revoke_tx, (void *)workspace_id, &err);
  if (rc != 0)
    atr_jobrun_log(job, ATR_LOG_WARN, "Stopping agent",
                   "Cannot revoke the agent's token: %s",
                   err ? err : atr_strerror(rc));
  else if (*name)
    atr__jobrun_agent_announce(job, workspace_id); /* sessions close now */
  free(err);
}

void atr__jobrun_agent_announce(struct atr_prov_job *job,
                                const char *workspace_id) {
  atr_domain_t dom = {.store = job->cfg->store, .events = job->cfg->events};
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(dom.store, &db, &err) == 0) {
    atr_agents_announce_revoked(&dom, &db, workspace_id, job->claimed_us, &err);
    atr_db_close(&db);
  }
  free(err);
}
