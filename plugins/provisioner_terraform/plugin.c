/* provisioner_terraform — workspaces made by the real `terraform` binary.
 *
 * A template's .tf files are a Terraform root module. For an import the
 * plugin runs `terraform init` and `terraform validate`; for a build
 * `terraform plan` (plan()) and `terraform apply` of that plan (apply()),
 * with the template's parameters and the workspace's facts as Terraform
 * variables and environment variables, and the workspace's last state as
 * terraform.tfstate. See README.md.
 *
 * This file holds the option table, the descriptor, init() (finds the
 * binary and asks it for its version), fini(), the list of running jobs
 * and cancel().
 *
 * Threads: init() and fini() run on the main thread; the ops on provisioner
 * worker threads, several at once; cancel() on any thread (internal.h).
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TF_SECTION "plugins.provisioner_terraform"
/* How long `terraform version` may take at start-up. */
#define TF_VERSION_TIMEOUT_NS (30ull * 1000 * 1000 * 1000)

static const atr_option_t tf_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "binary",
     .default_value = "terraform",
     .offset = offsetof(tf_ctx_t, binary),
     .description = "The terraform executable: a path, or a name looked up "
                    "in the server's PATH. Checked at start-up, when its "
                    "version is logged; Terraform 1.0 or newer."},
    {.type = ATR_OPT_DURATION,
     .name = "cancel_grace",
     .default_value = "10s",
     .offset = offsetof(tf_ctx_t, cancel_grace_ms),
     .description = "When a build is canceled, terraform gets SIGINT to stop "
                    "cleanly and save its state; if it is still running "
                    "this long after, it is killed with SIGKILL.",
     .min = 0,
     .max = 60 * 60 * 1000},
    {0},
};

/* The host's table, for allocating what the host releases (the apply
 * result) from code that has no context at hand. One table serves every
 * plugin of the process, so it is set once by init() and only read. */
const atr_host_t *tf_host;

int tf_failf(char **err, int code, const char *fmt, ...) {
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

void tf_jobs_add(tf_ctx_t *c, tf_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  j->next = c->jobs;
  c->jobs = j;
  pthread_mutex_unlock(&c->jobs_lock);
}

void tf_jobs_remove(tf_ctx_t *c, tf_job_t *j) {
  pthread_mutex_lock(&c->jobs_lock);
  for (tf_job_t **p = &c->jobs; *p != NULL; p = &(*p)->next) {
    if (*p == j) {
      *p = j->next;
      break;
    }
  }
  pthread_mutex_unlock(&c->jobs_lock);
}

bool tf_job_canceled(tf_job_t *j) {
  if (atomic_load(&j->cancel_flag))
    return true;
  if (j->job != NULL && j->canceled != NULL && j->canceled(j->job))
    return true;
  return j->deadline_ns != 0 &&
         j->c->host->clock_monotonic_ns() >= j->deadline_ns;
}

/* Only flags the job: the thread running its command signals terraform
 * (run.c), so a process is never signalled after it was reaped. */
// cppcheck-suppress constParameter
static void tf_cancel(void *ctx, atr_prov_job_t *job) {
  tf_ctx_t *c = ctx;
  pthread_mutex_lock(&c->jobs_lock);
  for (tf_job_t *j = c->jobs; j != NULL; j = j->next) {
    if (j->job == job)
      atomic_store(&j->cancel_flag, true);
  }
  pthread_mutex_unlock(&c->jobs_lock);
}

static int check_executable(const char *path, char **err) {
  struct stat st;
  if (stat(path, &st) != 0)
    return tf_failf(err, ATR_ECONFIG,
                    "%s.binary: %s: %s; install Terraform there or set "
                    "binary to the path of the terraform executable",
                    TF_SECTION, path, strerror(errno));
  if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0)
    return tf_failf(err, ATR_ECONFIG,
                    "%s.binary: %s is not an executable file; run chmod +x "
                    "%s or set binary to the terraform executable",
                    TF_SECTION, path, path);
  return 0;
}

/* The binary option as a path: as given when it has a slash, else the
 * first executable of that name in PATH. */
static int resolve_binary(tf_ctx_t *c, char **err) {
  const char *name = c->binary != NULL ? c->binary : "terraform";
  if (*name == '\0')
    return tf_failf(err, ATR_ECONFIG,
                    "%s.binary is empty; set it to terraform or to the "
                    "path of the terraform executable",
                    TF_SECTION);
  if (strchr(name, '/') != NULL) {
    int rc = check_executable(name, err);
    if (rc == 0 && (c->path = strdup(name)) == NULL)
      return ATR_ENOMEM;
    return rc;
  }
  const char *env = getenv("PATH");
  char *dirs = strdup(env != NULL ? env : "/usr/local/bin:/usr/bin:/bin");
  if (dirs == NULL)
    return ATR_ENOMEM;
  char *save = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d != NULL;
       d = strtok_r(NULL, ":", &save)) {
    char *p = tf_path(*d != '\0' ? d : ".", name);
    struct stat st;
    if (p != NULL && stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
        access(p, X_OK) == 0) {
      c->path = p;
      free(dirs);
      return 0;
    }
    free(p);
  }
  free(dirs);
  return tf_failf(err, ATR_ECONFIG,
                  "%s.binary: no executable \"%s\" in PATH (%s); install "
                  "Terraform or set binary to the path of the terraform "
                  "executable",
                  TF_SECTION, name, env != NULL ? env : "unset");
}

/* "1.11.4" → c->version; 1.9 and newer take `init -json`. */
static int read_version(tf_ctx_t *c, const tf_buf_t *out, char **err) {
  json_t *doc = json_loadb(out->data ? out->data : "", out->len, 0, NULL);
  const char *v = json_string_value(json_object_get(doc, "terraform_version"));
  unsigned major = 0, minor = 0;
  if (v == NULL || sscanf(v, "%u.%u", &major, &minor) != 2) {
    json_decref(doc);
    return tf_failf(err, ATR_ECONFIG,
                    "%s.binary: %s version -json printed no "
                    "terraform_version; is %s the terraform executable?",
                    TF_SECTION, c->path, c->path);
  }
  c->version = strdup(v);
  json_decref(doc);
  if (c->version == NULL)
    return ATR_ENOMEM;
  if (major < 1)
    return tf_failf(err, ATR_ECONFIG,
                    "%s.binary: %s is Terraform %s; this plugin needs 1.0 or "
                    "newer (for its -json output); install a newer Terraform",
                    TF_SECTION, c->path, c->version);
  c->init_json = major > 1 || minor >= 9;
  return 0;
}

static int check_version(tf_ctx_t *c, char **err) {
  tf_job_t j = {.c = c};
  j.deadline_ns = c->host->clock_monotonic_ns() + TF_VERSION_TIMEOUT_NS;
  atomic_init(&j.cancel_flag, false);
  j.envp = tf_env_new(NULL);
  if (j.envp == NULL)
    return ATR_ENOMEM;
  static const char *const args[] = {"version", "-json", NULL};
  tf_buf_t out = {0};
  tf_cmd_t cmd = {.args = args, .out = TF_OUT_CAPTURE, .capture = &out};
  int status = 0;
  int rc = tf_run(&j, &cmd, &status, err);
  if (rc == ATR_ECANCELED)
    rc = tf_failf(err, ATR_ECONFIG,
                  "%s.binary: %s version -json did not finish in 30s; is "
                  "it the terraform executable?",
                  TF_SECTION, c->path);
  else if (rc == 0 && status != 0)
    rc = tf_failf(err, ATR_ECONFIG,
                  "%s.binary: %s version -json failed (exit status %d%s%s); "
                  "is it the terraform executable?",
                  TF_SECTION, c->path, status, j.first_stderr ? ": " : "",
                  j.first_stderr ? j.first_stderr : "");
  if (rc == 0)
    rc = read_version(c, &out, err);
  tf_buf_free(&out);
  free(j.first_error);
  free(j.first_stderr);
  tf_env_free(j.envp);
  return rc;
}

static int tf_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                   char **err) {
  tf_host = host;
  tf_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  if (pthread_mutex_init(&c->jobs_lock, NULL) != 0)
    return tf_failf(err, ATR_ENOMEM, "cannot create the job list lock");
  int rc = resolve_binary(c, err);
  if (rc == 0)
    rc = check_version(c, err);
  if (rc != 0) {
    free(c->path);
    free(c->version);
    c->path = c->version = NULL;
    pthread_mutex_destroy(&c->jobs_lock);
    return rc;
  }
  host->log(h, ATR_LOG_INFO,
            "Terraform %s at %s; cancel_grace %lldms, init -json %s",
            c->version, c->path, (long long)c->cancel_grace_ms,
            c->init_json ? "yes" : "no");
  return 0;
}

static void tf_fini(void *ctx) {
  tf_ctx_t *c = ctx;
  free(c->path);
  free(c->version);
  pthread_mutex_destroy(&c->jobs_lock);
}

static const atr_provisioner_ops_t tf_ops = {
    .struct_size = sizeof(atr_provisioner_ops_t),
    .type = "terraform",
    .parse = tf_parse,
    .apply = tf_apply,
    .cancel = tf_cancel,
    .plan = tf_plan,
};

static const atr_plugin_t tf_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_PROVISIONER,
    .name = "provisioner_terraform",
    .version = "1.0.0",
    .description = "Builds workspaces with the terraform binary: init, "
                   "validate, plan and apply of the template's .tf files.",
    .options = tf_options,
    .ctx_size = sizeof(tf_ctx_t),
    .init = tf_init,
    .fini = tf_fini,
    .ops = &tf_ops,
};

ATR_PLUGIN_DEFINE(tf_plugin)
