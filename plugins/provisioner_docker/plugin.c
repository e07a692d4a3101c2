/* provisioner_docker — workspaces as containers of a Docker Engine.
 *
 * A template's workspace.yaml says which image, command, limits,
 * environment and volumes a workspace's container has (and any extra
 * containers). start makes the volumes that are missing and the
 * containers anew, stop removes the containers and keeps the volumes,
 * delete removes both. The plugin talks to the engine's HTTP API over its
 * unix socket. See README.md.
 *
 * This file holds the option table, the descriptor, init() (checks the
 * options and says whether the engine answers), fini(), the list of
 * running jobs, cancel() and the job log with its redaction.
 *
 * Threads: init() and fini() run on the main thread; the ops on provisioner
 * worker threads, several at once; cancel() on any thread (internal.h).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const pull_policies[] = {"never", "if-missing", "always",
                                            NULL};

static const atr_option_t dk_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "socket",
     .default_value = "/var/run/docker.sock",
     .offset = offsetof(dk_ctx_t, socket),
     .description = "The Docker Engine's unix socket. The server needs read "
                    "and write access to it (root or the docker group). The "
                    "engine may start after the server: builds fail until "
                    "it answers."},
    {.type = ATR_OPT_LIST,
     .name = "allowed_images",
     .default_value = "",
     .offset = offsetof(dk_ctx_t, allowed_images),
     .description = "Image reference prefixes a template may use, e.g. "
                    "[docker.io/library/, registry.example.com/dev/]; "
                    "checked at import and at every start (images chosen by "
                    "a parameter). Empty: any image."},
    {.type = ATR_OPT_STRING,
     .name = "network_mode",
     .default_value = "none",
     .offset = offsetof(dk_ctx_t, network_mode),
     .description = "Network mode of workspace containers whose "
                    "workspace.yaml does not set network_mode: none, host, "
                    "or the name of a Docker network."},
    {.type = ATR_OPT_ENUM,
     .name = "pull_policy",
     .default_value = "if-missing",
     .offset = offsetof(dk_ctx_t, pull_policy),
     .description = "When start pulls an image from its registry: never (it "
                    "must be on the engine already), if-missing, or always.",
     .choices = pull_policies},
    {.type = ATR_OPT_STRING,
     .name = "label_prefix",
     .default_value = "dev.atrium",
     .offset = offsetof(dk_ctx_t, label_prefix),
     .description = "Prefix of the labels atrium puts on containers and "
                    "volumes (<prefix>.workspace_id, …); stop and delete "
                    "find a workspace's objects by them."},
    {.type = ATR_OPT_DURATION,
     .name = "start_timeout",
     .default_value = "60s",
     .offset = offsetof(dk_ctx_t, start_timeout_ms),
     .description = "How long start waits for the containers to be running "
                    "(and healthy, when they have a health check).",
     .min = 1000,
     .max = 60 * 60 * 1000},
    {.type = ATR_OPT_DURATION,
     .name = "agent_stop_timeout",
     .default_value = "5m",
     .offset = offsetof(dk_ctx_t, agent_stop_timeout_ms),
     .description = "How long stop gives the container that runs the "
                    "workspace agent after SIGTERM, so the agent can finish "
                    "the template's shutdown script (its StopTimeout; other "
                    "containers get 10s).",
     .min = 1000,
     .max = 60 * 60 * 1000},
    {0},
};

/* ---- errors, buffers */

/* The host's table, for allocating the apply result from code that has no
 * context at hand; one table serves the process, set once by init(). */
const atr_host_t *dk_host;

int dk_failf(char **err, int code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  *err = msg;
  return code;
}

int dk_buf_append(dk_buf_t *b, const char *data, size_t len) {
  if (b->data == NULL || b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
      return ATR_ENOMEM;
    b->data = p;
    b->cap = cap;
  }
  if (len > 0)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

int dk_buf_printf(dk_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0)
    return ATR_ENOMEM;
  int rc = dk_buf_append(b, s, (size_t)n);
  free(s);
  return rc;
}

void dk_buf_free(dk_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void dk_errs_addf(dk_errs_t *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  char **v = realloc(e->v, (e->n + 1) * sizeof *v);
  if (v == NULL) {
    free(msg);
    return;
  }
  e->v = v;
  e->v[e->n++] = msg != NULL ? msg : strdup("(out of memory)");
}

char *dk_errs_join(const dk_errs_t *e) {
  dk_buf_t b = {0};
  for (size_t i = 0; i < e->n; i++) {
    if (e->v[i] == NULL)
      continue;
    if ((b.len > 0 && dk_buf_append(&b, "\n", 1) != 0) ||
        dk_buf_append(&b, e->v[i], strlen(e->v[i])) != 0) {
      dk_buf_free(&b);
      return NULL;
    }
  }
  return b.data != NULL ? b.data : strdup("");
}

void dk_errs_free(dk_errs_t *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i]);
  free(e->v);
  e->v = NULL;
  e->n = 0;
}

/* ---- jobs */

void dk_jobs_add(dk_ctx_t *c, dk_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  j->next = c->jobs;
  c->jobs = j;
  pthread_mutex_unlock(&c->jobs_lock);
}

void dk_jobs_remove(dk_ctx_t *c, dk_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  for (dk_job_t **p = &c->jobs; *p != NULL; p = &(*p)->next) {
    if (*p == j) {
      *p = j->next;
      break;
    }
  }
  pthread_mutex_unlock(&c->jobs_lock);
}

bool dk_job_canceled(dk_job_t *j) {
  if (atomic_load(&j->cancel_flag))
    return true;
  return j->job != NULL && j->canceled != NULL && j->canceled(j->job);
}

/* Only flags the job: the thread running it notices at its next engine
 * call or wait step and returns ATR_ECANCELED. */
// cppcheck-suppress constParameter
static void dk_cancel(void *ctx, atr_prov_job_t *job) {
  dk_ctx_t *c = ctx;
  pthread_mutex_lock(&c->jobs_lock);
  for (dk_job_t *j = c->jobs; j != NULL; j = j->next) {
    if (j->job == job)
      atomic_store(&j->cancel_flag, true);
  }
  pthread_mutex_unlock(&c->jobs_lock);
}

/* ---- the job log */

static char *replace_all(char *s, const char *what) {
  static const char mask[] = "********";
  size_t wl = strlen(what), ml = sizeof mask - 1;
  dk_buf_t b = {0};
  const char *p = s;
  for (const char *hit; (hit = strstr(p, what)) != NULL; p = hit + wl) {
    if (dk_buf_append(&b, p, (size_t)(hit - p)) != 0 ||
        dk_buf_append(&b, mask, ml) != 0)
      goto oom;
  }
  if (dk_buf_append(&b, p, strlen(p)) != 0)
    goto oom;
  free(s);
  return b.data;
oom:
  dk_buf_free(&b);
  free(s);
  return NULL;
}

char *dk_redact(const dk_job_t *j, const char *text) {
  char *s = strdup(text);
  for (size_t i = 0; s != NULL && i < j->nparams; i++) {
    const atr_param_value_t *p = atr_param_at(j->params, i);
    if (p->sensitive && p->value != NULL && *p->value != '\0')
      s = replace_all(s, p->value);
  }
  if (s != NULL && j->secret != NULL && *j->secret != '\0')
    s = replace_all(s, j->secret);
  return s;
}

void dk_log(dk_job_t *j, atr_log_level_t level, const char *line) {
  char *r = dk_redact(j, line);
  const char *text = r != NULL ? r : "(a line was left out: out of memory)";
  if (j->job != NULL && j->log != NULL)
    j->log(j->job, level, j->stage, text);
  else
    j->c->host->log(j->c->h, level, "%s", text);
  free(r);
}

void dk_logf(dk_job_t *j, atr_log_level_t level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&line, fmt, ap) < 0)
    line = NULL;
  va_end(ap);
  dk_log(j, level,
         line != NULL ? line : "(a line was left out: out of memory)");
  free(line);
}

int dk_fail_log(dk_job_t *j, char **err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (msg == NULL)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  dk_logf(j, ATR_LOG_ERROR, "Error: %s", msg);
  char *r = dk_redact(j, msg);
  free(msg);
  if (err != NULL)
    *err = r;
  else
    free(r);
  return code;
}

/* ---- init */

static bool label_prefix_valid(const char *p) {
  if (p == NULL || *p == '\0' || *p == '.' || p[strlen(p) - 1] == '.')
    return false;
  for (; *p; p++) {
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
          *p == '-' || *p == '_'))
      return false;
  }
  return true;
}

static int check_options(const dk_ctx_t *c, char **err) {
  if (c->socket == NULL || c->socket[0] != '/')
    return dk_failf(err, ATR_ECONFIG,
                    "%s.socket: \"%s\" is not an absolute path; set it to "
                    "the Docker Engine's unix socket, e.g. "
                    "/var/run/docker.sock",
                    DK_SECTION, c->socket ? c->socket : "");
  if (strlen(c->socket) >= 108)
    return dk_failf(err, ATR_ECONFIG,
                    "%s.socket: \"%s\" is longer than a unix socket path "
                    "may be (107 bytes); use a shorter path or a symlink",
                    DK_SECTION, c->socket);
  if (!label_prefix_valid(c->label_prefix))
    return dk_failf(err, ATR_ECONFIG,
                    "%s.label_prefix: \"%s\" is not a label prefix; use "
                    "lower-case letters, digits, '.', '-' and '_', like "
                    "dev.atrium",
                    DK_SECTION, c->label_prefix ? c->label_prefix : "");
  if (c->network_mode == NULL || *c->network_mode == '\0')
    return dk_failf(err, ATR_ECONFIG,
                    "%s.network_mode is empty; set none, host or the name "
                    "of a Docker network",
                    DK_SECTION);
  for (size_t i = 0; c->allowed_images && c->allowed_images[i]; i++) {
    if (c->allowed_images[i][0] == '\0')
      return dk_failf(err, ATR_ECONFIG,
                      "%s.allowed_images: item %zu is empty; list image "
                      "prefixes such as docker.io/library/",
                      DK_SECTION, i + 1);
  }
  return 0;
}

static void describe_prefixes(const dk_ctx_t *c, dk_buf_t *b) {
  if (c->allowed_images == NULL || c->allowed_images[0] == NULL) {
    dk_buf_printf(b, "any");
    return;
  }
  for (size_t i = 0; c->allowed_images[i]; i++)
    dk_buf_printf(b, "%s%s", i ? ", " : "", c->allowed_images[i]);
}

/* Whether the engine answers now; only a warning when it does not. */
static void probe_engine(dk_ctx_t *c) {
  dk_job_t j = {.c = c};
  atomic_init(&j.cancel_flag, false);
  dk_engine_t e;
  char *err = NULL;
  dk_buf_t prefixes = {0};
  describe_prefixes(c, &prefixes);
  if (dk_engine_open(&e, &j, &err) != 0) {
    c->host->log(c->h, ATR_LOG_WARN,
                 "%s; builds fail until it answers (%s.socket)",
                 err ? err : "cannot reach the Docker engine", DK_SECTION);
    free(err);
  } else {
    c->host->log(c->h, ATR_LOG_INFO,
                 "Docker Engine %s (API %s) at %s; pull_policy %s, "
                 "network_mode %s, allowed_images %s",
                 e.version, e.api, c->socket, c->pull_policy, c->network_mode,
                 prefixes.data ? prefixes.data : "?");
    dk_engine_close(&e);
  }
  dk_buf_free(&prefixes);
}

static int dk_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                   char **err) {
  dk_host = host;
  dk_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  int rc = check_options(c, err);
  if (rc != 0)
    return rc;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return dk_failf(err, ATR_ENOMEM, "cannot initialise libcurl");
  if (pthread_mutex_init(&c->jobs_lock, NULL) != 0) {
    curl_global_cleanup();
    return dk_failf(err, ATR_ENOMEM, "cannot create the job list lock");
  }
  probe_engine(c);
  return 0;
}

static void dk_fini(void *ctx) {
  dk_ctx_t *c = ctx;
  pthread_mutex_destroy(&c->jobs_lock);
  curl_global_cleanup();
}

static const atr_provisioner_ops_t dk_ops = {
    .struct_size = sizeof(atr_provisioner_ops_t),
    .type = "docker",
    .parse = dk_parse,
    .apply = dk_apply,
    .cancel = dk_cancel,
    .plan = dk_plan,
};

static const atr_plugin_t dk_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_PROVISIONER,
    .name = "provisioner_docker",
    .version = "1.0.0",
    .description = "Builds workspaces as containers and volumes of a Docker "
                   "Engine, from the template's workspace.yaml.",
    .options = dk_options,
    .ctx_size = sizeof(dk_ctx_t),
    .init = dk_init,
    .fini = dk_fini,
    .ops = &dk_ops,
};

ATR_PLUGIN_DEFINE(dk_plugin)
