/* provisioner_echo — a provisioner that only says what it was asked to do.
 *
 * It is the SDK's worked example: a third-party plugin built against the
 * installed headers alone (pkg-config atrium-sdk). It shows an option table
 * with several types, context fields filled by offset, host logging and a
 * labelled counter, the provisioner ops, and per-job cancelation that stays
 * correct when the daemon runs several jobs at once. With a workspace agent
 * (ABI 1.3) it says so without showing the token, marks its resource as
 * the agent's host and, with agent_env_dir, leaves the agent's URL and
 * token in a private file so a test can start the agent by hand.
 *
 * Threads: init(), fini() and reload() run on the main thread; parse(),
 * apply() and cancel() on provisioner worker threads, several at once. The
 * option fields in the context are written by the host before init() and
 * only read afterwards. The one reloadable option (log_parameters) has no
 * field: it is read through host->option_get_bool(), which is safe from any
 * thread and always sees the current value. The list of running jobs is
 * owned by jobs_lock.
 *
 * Memory: requests are borrowed for the call; the apply result is made
 * with the host's allocator (atr_mem_*), since the host releases it.
 *
 * Languages: this file is both C11 and C++20 (tests/sdk builds it as C++
 * too), which is why void pointers are cast and the cancel flag uses the
 * GCC/Clang __atomic builtins rather than <stdatomic.h>.
 */
#include <atrium/atrium.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ECHO_SLEEP_STEP_MS 20

/* One apply() in progress. Lives on the apply() caller's stack and is on
 * the context's list only while apply() runs. */
typedef struct echo_job {
  atr_prov_job_t *job;
  bool canceled; /* read and written with __atomic builtins only */
  struct echo_job *next;
} echo_job_t;

typedef struct echo_ctx {
  /* Filled by the host from the option table, before init(). */
  const char *greeting;
  int64_t delay_ms;
  const char *mode;
  const char *token;
  const char *hold_file;
  int64_t hold_timeout_ms;
  const char *agent_env_dir;
  /* Set by init(). */
  atr_handle_t *h;
  const atr_host_t *host;
  atr_metric_t *requests;
  pthread_mutex_t jobs_lock; /* protects jobs */
  echo_job_t *jobs;
} echo_ctx_t;

static const char *const echo_modes[] = {"plain", "verbose", NULL};

static const atr_option_t echo_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "greeting",
     .default_value = "hello",
     .offset = offsetof(echo_ctx_t, greeting),
     .description = "Word logged when the plugin starts."},
    {.type = ATR_OPT_DURATION,
     .name = "delay",
     .default_value = "0s",
     .offset = offsetof(echo_ctx_t, delay_ms),
     .description = "How long each apply pretends to work; cancel cuts it "
                    "short.",
     .min = 0,
     .max = 60 * 1000},
    {.type = ATR_OPT_BOOL,
     .name = "log_parameters",
     .default_value = "true",
     .flags = ATR_OPT_RELOADABLE,
     .offset = ATR_OPT_NO_OFFSET,
     .description = "Log each workspace parameter on apply (sensitive values "
                    "are never shown)."},
    {.type = ATR_OPT_ENUM,
     .name = "mode",
     .default_value = "plain",
     .offset = offsetof(echo_ctx_t, mode),
     .description = "plain logs the transition and parameters; verbose adds "
                    "the owner, template and prior state.",
     .choices = echo_modes},
    {.type = ATR_OPT_SECRET,
     .name = "token",
     .offset = offsetof(echo_ctx_t, token),
     .description = "A credential the plugin pretends to use; only whether "
                    "it is set is ever logged."},
    {.type = ATR_OPT_STRING,
     .name = "hold_file",
     .offset = offsetof(echo_ctx_t, hold_file),
     .description = "While this file exists, each apply waits after its "
                    "delay; cancel cuts it short. Lets a test hold a build "
                    "running until it removes the file."},
    {.type = ATR_OPT_DURATION,
     .name = "hold_timeout",
     .default_value = "60s",
     .offset = offsetof(echo_ctx_t, hold_timeout_ms),
     .description = "How long an apply waits for hold_file to go before it "
                    "fails.",
     .min = 0,
     .max = 10 * 60 * 1000},
    {.type = ATR_OPT_STRING,
     .name = "agent_env_dir",
     .offset = offsetof(echo_ctx_t, agent_env_dir),
     .description = "A directory where a start build with an agent writes "
                    "<workspace id>.env (mode 0600: ATRIUM_AGENT_URL and "
                    "ATRIUM_AGENT_TOKEN) and a stop or delete build removes "
                    "it, so tests can run the agent with --env-file."},
    ATR_OPTIONS_END,
};

static const char *or_none(const char *s) {
  return s != NULL ? s : "(none)";
}

static const char *transition_name(atr_transition_t t) {
  switch (t) {
  case ATR_TRANSITION_START:
    return "start";
  case ATR_TRANSITION_STOP:
    return "stop";
  case ATR_TRANSITION_DELETE:
    return "delete";
  }
  return NULL;
}

/* *err = a malloc'd message, when the caller asked for one. */
static void set_err(char **err, const char *fmt, ...) ATR_PRINTF(2, 3);
static void set_err(char **err, const char *fmt, ...) {
  char buf[512]; /* messages are one line; longer ones are cut */
  va_list ap;
  va_start(ap, fmt);
  /* clang-analyzer 14 reports ap as uninitialized here after va_start. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (err != NULL)
    *err = strdup(buf);
}

static void jobs_add(echo_ctx_t *c, echo_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  j->next = c->jobs;
  c->jobs = j;
  pthread_mutex_unlock(&c->jobs_lock);
}

static void jobs_remove(echo_ctx_t *c, echo_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  for (echo_job_t **p = &c->jobs; *p != NULL; p = &(*p)->next) {
    if (*p == j) {
      *p = j->next;
      break;
    }
  }
  pthread_mutex_unlock(&c->jobs_lock);
}

static bool is_canceled(echo_job_t *j) {
  return __atomic_load_n(&j->canceled, __ATOMIC_SEQ_CST);
}

static void set_canceled(echo_job_t *j) {
  __atomic_store_n(&j->canceled, true, __ATOMIC_SEQ_CST);
}

/* One sleep of at most ECHO_SLEEP_STEP_MS, never past deadline. */
static void nap(uint64_t now, uint64_t deadline) {
  uint64_t left = deadline - now;
  uint64_t step = (uint64_t)ECHO_SLEEP_STEP_MS * 1000000u;
  if (left > step)
    left = step;
  struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                        .tv_nsec = (long)(left % 1000000000u)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Sleep delay_ms in small steps; false as soon as the job is canceled. */
static bool pretend_to_work(echo_ctx_t *c, echo_job_t *j) {
  if (c->delay_ms <= 0)
    return !is_canceled(j);
  uint64_t deadline =
      c->host->clock_monotonic_ns() + (uint64_t)c->delay_ms * 1000000u;
  while (!is_canceled(j)) {
    uint64_t now = c->host->clock_monotonic_ns();
    if (now >= deadline)
      return true;
    nap(now, deadline);
  }
  return false;
}

static bool held(const echo_ctx_t *c) {
  return c->hold_file != NULL && c->hold_file[0] != '\0' &&
         access(c->hold_file, F_OK) == 0;
}

/* Wait while hold_file exists: 0 once it is gone, ATR_ECANCELED on cancel,
 * ATR_ETIMEDOUT after hold_timeout (a test that never released). */
static int wait_for_release(echo_ctx_t *c, echo_job_t *j) {
  uint64_t deadline =
      c->host->clock_monotonic_ns() + (uint64_t)c->hold_timeout_ms * 1000000u;
  while (held(c)) {
    uint64_t now = c->host->clock_monotonic_ns();
    if (is_canceled(j))
      return ATR_ECANCELED;
    if (now >= deadline)
      return ATR_ETIMEDOUT;
    nap(now, deadline);
  }
  return is_canceled(j) ? ATR_ECANCELED : 0;
}

/* A line for the job's log: what the developer sees in the build log. */
static void job_log(const atr_prov_apply_request_t *req, const char *fmt, ...)
    ATR_PRINTF(2, 3);
static void job_log(const atr_prov_apply_request_t *req, const char *fmt, ...) {
  if (req->log == NULL)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  req->log(req->job, ATR_LOG_INFO, "Applying", line);
}

static void log_request(echo_ctx_t *c, const atr_prov_apply_request_t *req,
                        const char *transition) {
  job_log(req, "echo: %s workspace %s, build %" PRId64, transition,
          or_none(req->workspace_name), req->build_number);
  /* The state is this plugin's own text, so showing it hides nothing. */
  job_log(req, "echo: prior state %.*s",
          req->prior_state ? (int)req->prior_state_len : 6,
          req->prior_state ? req->prior_state : "(none)");
  c->host->log(c->h, ATR_LOG_INFO,
               "apply %s: workspace %s (%s), build %" PRId64, transition,
               or_none(req->workspace_name), or_none(req->workspace_id),
               req->build_number);
  if (c->mode != NULL && strcmp(c->mode, "verbose") == 0) {
    c->host->log(c->h, ATR_LOG_INFO,
                 "apply %s: owner %s, template %s, workdir %s, prior state "
                 "%zu bytes",
                 transition, or_none(req->owner_name),
                 or_none(req->template_id), or_none(req->workdir),
                 req->prior_state_len);
  }

  int log_params = 1;
  if (c->host->option_get_bool(c->h, "log_parameters", &log_params) != 0)
    log_params = 1;
  if (!log_params)
    return;
  for (size_t i = 0; i < req->nparams; i++) {
    /* By the host's stride: a newer host may have grown the element. */
    const atr_param_value_t *p = atr_param_at(req->params, i);
    const char *shown =
        p->sensitive ? "(sensitive)" : (p->value ? p->value : "");
    c->host->log(c->h, ATR_LOG_INFO, "apply %s: parameter %s = %s", transition,
                 or_none(p->name), shown);
    job_log(req, "echo: parameter %s = %s", or_none(p->name), shown);
  }
}

/* The request's agent: only on start builds from a 1.3 host. */
static const atr_prov_agent_t *agent_of(const atr_prov_apply_request_t *req) {
  if (!ATR_PROV_REQUEST_HAS_AGENT(req) ||
      req->transition != ATR_TRANSITION_START)
    return NULL;
  return req->agent;
}

/* <agent_env_dir>/<workspace id>.env into path; false when there is no
 * such file to keep (no directory set, or an id that is no file name). */
static bool env_path(const echo_ctx_t *c, const atr_prov_apply_request_t *req,
                     char *path, size_t size) {
  const char *id = req->workspace_id;
  if (c->agent_env_dir == NULL || c->agent_env_dir[0] == '\0' || id == NULL ||
      id[0] == '\0' || id[0] == '.' || strchr(id, '/') != NULL)
    return false;
  int n = snprintf(path, size, "%s/%s.env", c->agent_env_dir, id);
  return n > 0 && (size_t)n < size;
}

/* Write the env file through a private temporary and a rename, so an
 * agent never reads half of it and the token is never world-readable.
 * 0, or the errno of the step that failed. */
static int write_env(const char *path, const atr_prov_agent_t *a) {
  const char *url = a->access_url ? a->access_url : "";
  const char *token = a->token ? a->token : "";
  if (strpbrk(url, "\r\n") != NULL || strpbrk(token, "\r\n") != NULL)
    return EINVAL; /* one line each, or the file says something else */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  unlink(tmp);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return errno;
  FILE *f = fdopen(fd, "w");
  if (f == NULL) {
    int e = errno;
    close(fd);
    unlink(tmp);
    return e;
  }
  int w =
      fprintf(f, "ATRIUM_AGENT_URL=%s\nATRIUM_AGENT_TOKEN=%s\n", url, token);
  int e = w < 0 ? EIO : 0;
  if (fclose(f) != 0 && e == 0)
    e = errno;
  if (e == 0 && rename(tmp, path) != 0)
    e = errno;
  if (e != 0)
    unlink(tmp);
  return e;
}

/* Start: log the agent (never its token) and write its env file; stop and
 * delete: remove the file. */
static int agent_apply(echo_ctx_t *c, const atr_prov_apply_request_t *req,
                       char **err) {
  const atr_prov_agent_t *a = agent_of(req);
  char path[4096];
  bool keep = env_path(c, req, path, sizeof path);
  if (a == NULL) {
    if (keep && req->transition != ATR_TRANSITION_START)
      unlink(path);
    return 0;
  }
  job_log(req, "agent %s: url %s, token %s, init script %zu bytes",
          or_none(a->name), or_none(a->access_url),
          a->token && a->token[0] ? "(set)" : "(none)",
          a->init_script ? strlen(a->init_script) : 0);
  if (!keep)
    return 0;
  int e = write_env(path, a);
  if (e != 0) {
    set_err(err, "cannot write the agent's env file %s: %s", path, strerror(e));
    return ATR_EIO;
  }
  job_log(req, "agent %s: env file %s", or_none(a->name), path);
  return 0;
}

/* The host releases the result, so it comes from the host's allocator. */
static int make_result(const atr_host_t *host,
                       const atr_prov_apply_request_t *req,
                       const char *transition, atr_prov_apply_result_t *res) {
  bool hosts_agent = agent_of(req) != NULL;
  int n = snprintf(NULL, 0, "echo:%s:%" PRId64, transition, req->build_number);
  char *state = (char *)atr_mem_alloc(host, (size_t)n + 1);
  atr_prov_resource_t *r =
      (atr_prov_resource_t *)atr_mem_calloc(host, 1, sizeof(*r));
  if (state == NULL || r == NULL)
    goto nomem;
  snprintf(state, (size_t)n + 1, "echo:%s:%" PRId64, transition,
           req->build_number);
  r->struct_size = sizeof(*r);
  r->hosts_agent = hosts_agent;
  r->type = atr_mem_strdup(host, "echo");
  r->name =
      atr_mem_strdup(host, req->workspace_name ? req->workspace_name : "");
  r->id = atr_mem_strdup(host, req->workspace_id ? req->workspace_id : "");
  if (r->type == NULL || r->name == NULL || r->id == NULL)
    goto nomem;
  res->state = state;
  res->state_len = (size_t)n;
  res->resources = r;
  res->nresources = 1;
  return 0;

nomem:
  if (r != NULL) {
    atr_mem_free(host, r->type);
    atr_mem_free(host, r->name);
    atr_mem_free(host, r->id);
  }
  atr_mem_free(host, r);
  atr_mem_free(host, state);
  return ATR_ENOMEM;
}

static int echo_parse(void *ctx, const atr_prov_parse_request_t *req,
                      char **err) {
  (void)err; /* parsing nothing cannot fail */
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  c->host->log(c->h, ATR_LOG_INFO, "parse: template files in %s",
               or_none(req->workdir));
  return 0;
}

static int echo_apply(void *ctx, const atr_prov_apply_request_t *req,
                      atr_prov_apply_result_t *res, char **err) {
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  const char *transition = transition_name(req->transition);
  if (transition == NULL) {
    set_err(err, "unknown transition %d; expected start, stop or delete",
            (int)req->transition);
    return ATR_EINVAL;
  }

  /* On the list first, so a cancel() that arrives while we log is seen. */
  echo_job_t job = {.job = req->job, .canceled = false, .next = NULL};
  jobs_add(c, &job);
  /* A cancel that came before we were on the list found nothing to flag. */
  if (req->canceled != NULL && req->canceled(req->job))
    set_canceled(&job);

  const char *const label_values[] = {transition};
  c->host->metric_add(c->requests, label_values, 1);
  log_request(c, req, transition);
  int rc = pretend_to_work(c, &job) ? 0 : ATR_ECANCELED;
  if (rc == 0 && held(c)) {
    job_log(req, "echo: held until %s is removed", c->hold_file);
    rc = wait_for_release(c, &job);
  }
  jobs_remove(c, &job);
  if (rc == ATR_ETIMEDOUT) {
    set_err(err, "%s still held by %s after %" PRId64 " ms", transition,
            c->hold_file, c->hold_timeout_ms);
    return rc;
  }
  if (rc != 0) {
    c->host->log(c->h, ATR_LOG_INFO, "apply %s: workspace %s: canceled",
                 transition, or_none(req->workspace_name));
    set_err(err, "%s canceled before the delay ended", transition);
    return ATR_ECANCELED;
  }

  rc = agent_apply(c, req, err);
  if (rc != 0)
    return rc;
  rc = make_result(c->host, req, transition, res);
  if (rc != 0) {
    set_err(err, "cannot build the result: %s", atr_strerror(rc));
    return rc;
  }
  c->host->log(c->h, ATR_LOG_INFO, "apply %s: done, state %s", transition,
               res->state);
  job_log(req, "echo: %s done", transition);
  return 0;
}

/* The signature is the ABI's, so job stays non-const. */
// cppcheck-suppress constParameter
static void echo_cancel(void *ctx, atr_prov_job_t *job) {
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  bool found = false;
  pthread_mutex_lock(&c->jobs_lock);
  for (echo_job_t *j = c->jobs; j != NULL; j = j->next) {
    if (j->job == job) {
      set_canceled(j);
      found = true;
    }
  }
  pthread_mutex_unlock(&c->jobs_lock);
  c->host->log(c->h, ATR_LOG_DEBUG, "cancel: %s",
               found ? "job flagged" : "no such job running");
}

static int echo_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                     char **err) {
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  c->h = h;
  c->host = host;

  /* Everything used here is in ABI 1.0; the check is how a plugin built
   * against a newer SDK guards a function an older host may lack. */
  if (!ATR_HOST_HAS(host, metric_register)) {
    set_err(err, "%s", "the host has no metric_register; upgrade atrium");
    return ATR_ENOTSUP;
  }
  static const char *const labels[] = {"transition", NULL};
  int rc =
      host->metric_register(h, ATR_METRIC_COUNTER, "atrium_echo_requests_total",
                            "Apply requests the echo provisioner received.",
                            labels, NULL, 0, &c->requests);
  if (rc != 0) {
    set_err(err, "cannot register atrium_echo_requests_total: %s",
            atr_strerror(rc));
    return rc;
  }
  rc = pthread_mutex_init(&c->jobs_lock, NULL);
  if (rc != 0) {
    set_err(err, "%s", "cannot create the job list lock");
    return ATR_ENOMEM;
  }

  host->log(h, ATR_LOG_INFO,
            "ready: greeting \"%s\", mode %s, delay %" PRId64 "ms, token %s",
            c->greeting ? c->greeting : "hello", c->mode ? c->mode : "plain",
            c->delay_ms, c->token ? "set" : "not set");
  return 0;
}

static void echo_fini(void *ctx) {
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  pthread_mutex_destroy(&c->jobs_lock);
}

static int echo_reload(void *ctx, char **err) {
  (void)err;
  echo_ctx_t *c = (echo_ctx_t *)ctx;
  int log_params = 1;
  c->host->option_get_bool(c->h, "log_parameters", &log_params);
  c->host->log(c->h, ATR_LOG_INFO, "reloaded: log_parameters %s",
               log_params ? "true" : "false");
  return 0;
}

static const atr_provisioner_ops_t echo_ops = {
    .struct_size = sizeof(atr_provisioner_ops_t),
    .type = "echo",
    .parse = echo_parse,
    .apply = echo_apply,
    .cancel = echo_cancel,
    .plan = NULL,
};

static const atr_plugin_t echo_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_PROVISIONER,
    .name = "provisioner_echo",
    .version = "1.0.0",
    .description = "Logs what it is asked to provision and creates nothing.",
    .options = echo_options,
    .ctx_size = sizeof(echo_ctx_t),
    .init = echo_init,
    .fini = echo_fini,
    .reload = echo_reload,
    .ops = &echo_ops,
    .health = NULL,
    .option_size = sizeof(atr_option_t),
};

ATR_PLUGIN_DEFINE(echo_plugin)
