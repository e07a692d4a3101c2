/* plugins/provisioner_terraform/internal.h — what the files of
 * provisioner_terraform share.
 *
 * plugin.c holds the option table, the descriptor, init(), fini(), the list
 * of running jobs and cancel(); ops.c parse(), plan() and apply(); run.c
 * runs one terraform command as a child process; output.c turns what it
 * prints into job log lines; vars.c finds the variables a configuration
 * declares; tfvars.c writes atrium.auto.tfvars.json; env.c builds the
 * children's environment; show.c reads resources out of `terraform show
 * -json`; fs.c reads and writes the workdir's files.
 *
 * Threads: the context's option and init fields are written before the
 * first op and only read afterwards. jobs_lock protects the job list. A
 * tf_job_t belongs to the thread running its op; only its cancel flag is
 * written by other threads (cancel()).
 *
 * Secrets: a sensitive parameter's value goes into atrium.auto.tfvars.json,
 * the environment of the children and nowhere else; every line this plugin
 * logs passes tf_log(), which replaces such values with "********". The
 * workspace agent's token (ABI 1.3) goes into atrium.auto.tfvars.json
 * only, when the configuration declares atrium_agent_token, and is masked
 * the same way.
 */
#ifndef PROVISIONER_TERRAFORM_INTERNAL_H
#define PROVISIONER_TERRAFORM_INTERNAL_H

#include <atrium/atrium.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Files the plugin writes into the workdir. */
#define TF_STATE_FILE "terraform.tfstate"
#define TF_ERRORED_STATE_FILE "errored.tfstate"
#define TF_TFVARS_FILE "atrium.auto.tfvars.json"
#define TF_PLAN_FILE "atrium.tfplan" /* also in ops.c: -out=atrium.tfplan */

typedef struct tf_job tf_job_t;

typedef struct tf_ctx {
  /* Options, filled by the host before init(). */
  const char *binary;
  int64_t cancel_grace_ms;
  /* Set by init(). */
  atr_handle_t *h;
  const atr_host_t *host;
  char *path;                /* the binary, resolved */
  char *version;             /* "1.11.4" */
  bool init_json;            /* `terraform init -json` exists (1.9 and newer) */
  pthread_mutex_t jobs_lock; /* protects jobs */
  tf_job_t *jobs;
} tf_ctx_t;

/* One op in progress (or init's version check, with job == NULL). Lives on
 * the op's stack; on the context's list while the op runs. */
struct tf_job {
  tf_ctx_t *c;
  atr_prov_job_t *job; /* NULL: lines go to the process log */
  atr_prov_log_fn log;
  atr_prov_canceled_fn canceled;
  const char *workdir;             /* NULL: the server's cwd */
  const atr_param_value_t *params; /* for redaction; may be NULL */
  size_t nparams;
  const char *secret;      /* the agent's token, redacted too; may be NULL */
  char **envp;             /* the children's environment (env.c) */
  uint64_t deadline_ns;    /* monotonic; 0 for none; past it counts as cancel */
  atomic_bool cancel_flag; /* set by cancel() */
  char *first_error;  /* the last command's first error diagnostic, redacted */
  char *first_stderr; /* the last command's first error line on stderr (or
                        first line), redacted */
  bool first_stderr_error; /* first_stderr is an "Error:" line */
  tf_job_t *next;
};

/* A growing byte buffer, always NUL-terminated when data != NULL. */
typedef struct tf_buf {
  char *data;
  size_t len;
  size_t cap;
} tf_buf_t;

/* Names, e.g. the variables a configuration declares. */
typedef struct tf_names {
  char **v;
  size_t n;
} tf_names_t;

/* ---- plugin.c */

/* *err = a malloc'd message (when err is not NULL); returns code. */
extern const atr_host_t *tf_host; /* set by init() */
int tf_failf(char **err, int code, const char *fmt, ...) ATR_PRINTF(3, 4);
void tf_jobs_add(tf_ctx_t *c, tf_job_t *j);
void tf_jobs_remove(tf_ctx_t *c, tf_job_t *j);
/* Whether the job was canceled, by cancel() or the host's flag, or ran
 * past its deadline. */
bool tf_job_canceled(tf_job_t *j);

/* ---- ops.c */

int tf_parse(void *ctx, const atr_prov_parse_request_t *req, char **err);
int tf_plan(void *ctx, const atr_prov_apply_request_t *req, char **err);
int tf_apply(void *ctx, const atr_prov_apply_request_t *req,
             atr_prov_apply_result_t *res, char **err);

/* ---- run.c */

typedef enum tf_out_mode {
  TF_OUT_TEXT = 0,    /* stdout lines are plain text */
  TF_OUT_JSON = 1,    /* stdout lines are terraform -json UI messages */
  TF_OUT_CAPTURE = 2, /* stdout is collected into tf_cmd_t.capture */
} tf_out_mode_t;

typedef struct tf_cmd {
  const char *const *args; /* after the binary, NULL-terminated */
  const char *stage;       /* for the log lines; NULL for none */
  tf_out_mode_t out;
  tf_buf_t *capture; /* TF_OUT_CAPTURE */
} tf_cmd_t;

/* Run the binary with cmd->args in j->workdir and wait for it, logging its
 * output as it comes. 0 when it ran and exited: *status is its exit status
 * (128 + signal when killed). ATR_ECANCELED when the job was canceled
 * (before it started, or while it ran: it was interrupted). Another code
 * with *err when it could not be run. j->first_error and j->first_stderr
 * describe this command afterwards. */
int tf_run(tf_job_t *j, const tf_cmd_t *cmd, int *status, char **err);
/* "terraform plan -input=false …" for messages (malloc'd; NULL: no memory). */
char *tf_cmd_line(const tf_cmd_t *cmd);
int tf_buf_append(tf_buf_t *b, const char *data, size_t len);
void tf_buf_free(tf_buf_t *b);

/* ---- output.c */

/* One line for the job's log, with sensitive values replaced. */
void tf_log(tf_job_t *j, atr_log_level_t level, const char *stage,
            const char *line);
void tf_logf(tf_job_t *j, atr_log_level_t level, const char *stage,
             const char *fmt, ...) ATR_PRINTF(4, 5);
/* A line terraform printed on stdout in -json mode (or any text line). */
void tf_out_json_line(tf_job_t *j, const char *stage, const char *line);
/* A line it printed on stderr; *level carries what its block is about
 * (starts as ATR_LOG_WARN) from line to line. */
void tf_out_stderr_line(tf_job_t *j, const char *stage, atr_log_level_t *level,
                        const char *line);
/* One diagnostic object ({"severity", "summary", "detail", "range"}) as
 * log lines; the first error one becomes j->first_error. */
void tf_out_diagnostic(tf_job_t *j, const char *stage, const json_t *diag);
/* A malloc'd copy of line with every sensitive value replaced. */
char *tf_redact(const tf_job_t *j, const char *line);

/* ---- vars.c */

/* The variables the root module in dir declares: `variable "NAME"` blocks
 * at the top level of its .tf files and the keys of the "variable" object
 * of its .tf.json files. *ntf gets the number of those files. */
int tf_vars_declared(const char *dir, tf_names_t *out, size_t *ntf, char **err);
bool tf_names_has(const tf_names_t *names, const char *name);
void tf_names_free(tf_names_t *names);

/* ---- tfvars.c */

/* The agent a start build carries (ABI 1.3), or NULL. */
const atr_prov_agent_t *tf_agent(const atr_prov_apply_request_t *req);

/* Write atrium.auto.tfvars.json into req->workdir with the parameters and
 * workspace facts whose names are in declared. */
int tf_tfvars_write(const atr_prov_apply_request_t *req,
                    const tf_names_t *declared, char **err);
const char *tf_transition_name(atr_transition_t t);

/* ---- env.c */

/* The environment for terraform children: the server's own without its
 * ATRIUM_* variables, TF_IN_AUTOMATION=1, TF_INPUT=0, CHECKPOINT_DISABLE=1
 * and, for a build (req not NULL), the workspace facts and parameters.
 * NULL when out of memory. */
char **tf_env_new(const atr_prov_apply_request_t *req);
void tf_env_free(char **envp);
/* "ATRIUM_PARAM_CPUS" for "cpus", malloc'd; NULL when out of memory. */
char *tf_env_param_name(const char *param);

/* ---- show.c */

/* The managed resources in `terraform show -json` output. */
int tf_show_resources(const char *json, size_t len,
                      atr_prov_apply_result_t *res, char **err);
void tf_resources_free(atr_prov_resource_t *r, size_t n);

/* ---- fs.c */

/* dir + "/" + name, malloc'd; NULL when out of memory. */
char *tf_path(const char *dir, const char *name);
/* The whole file, malloc'd and NUL-terminated. -errno on failure. */
int tf_file_read(const char *path, char **out, size_t *len);
/* Replace the file with data, mode 0600. -errno on failure. */
int tf_file_write(const char *path, const char *data, size_t len);
bool tf_file_exists(const char *path);

#endif
