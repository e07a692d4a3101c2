/* plugins/provisioner_docker/internal.h — what the files of
 * provisioner_docker share.
 *
 * plugin.c holds the option table, the descriptor, init(), fini(), the
 * list of running jobs, cancel() and the job log; engine.c speaks HTTP to
 * the Docker Engine over its unix socket (libcurl, jansson); spec.c reads
 * workspace.yaml (libyaml) and checks its keys and references; resolve.c
 * turns the spec and a build's values into the containers and volumes to
 * make; units.c parses CPUs, memory sizes and image references;
 * inventory.c finds what exists of a workspace and writes the state and
 * resources; ops.c holds parse(), plan() and apply() with stop and delete;
 * start.c the start transition; agent.c starts the workspace agent in the
 * main container (ABI 1.3).
 *
 * Threads: the context's option and init fields are written before the
 * first op and only read afterwards. jobs_lock protects the job list. A
 * dk_job_t belongs to the thread running its op; only its cancel flag is
 * written by other threads (cancel()).
 *
 * Secrets: a sensitive parameter's value may end up in a container's
 * environment, command or labels (the template says so); every line this
 * plugin logs and every error it returns passes dk_redact(), which
 * replaces such values with "********", and environment values are not
 * logged at all when one of them uses a sensitive parameter. The agent's
 * token goes into the main container's environment only (where `docker
 * inspect` shows it, as in Coder's docker template) and is redacted like
 * a sensitive value from everything this plugin logs or returns.
 *
 * Memory: every struct here owns its strings unless a comment says
 * otherwise; the *_free functions free them and zero the struct.
 */
#ifndef PROVISIONER_DOCKER_INTERNAL_H
#define PROVISIONER_DOCKER_INTERNAL_H

#include <atrium/atrium.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DK_SECTION "plugins.provisioner_docker"
#define DK_SPEC_FILE "workspace.yaml"
/* How long stop gives a container after SIGTERM (its StopTimeout, which
 * docker stop uses); the container that runs the agent gets
 * agent_stop_timeout instead, for the shutdown script. */
#define DK_STOP_TIMEOUT_S 10
/* Where the agent's bundle is mounted in the main container. */
#define DK_AGENT_DIR "/opt/atrium"

typedef struct dk_job dk_job_t;

typedef struct dk_ctx {
  /* Options, filled by the host before init(). */
  const char *socket;
  const char *const *allowed_images; /* NULL-terminated; empty: any */
  const char *network_mode;
  const char *pull_policy;
  const char *label_prefix;
  int64_t start_timeout_ms;
  int64_t agent_stop_timeout_ms;
  /* Set by init(). */
  atr_handle_t *h;
  const atr_host_t *host;
  pthread_mutex_t jobs_lock; /* protects jobs */
  dk_job_t *jobs;
} dk_ctx_t;

/* One op in progress. Lives on the op's stack; on the context's list
 * while the op runs. */
struct dk_job {
  dk_ctx_t *c;
  atr_prov_job_t *job; /* NULL: lines go to the process log */
  atr_prov_log_fn log;
  atr_prov_canceled_fn canceled;
  const char *stage;               /* of the lines logged now */
  const atr_param_value_t *params; /* for redaction; may be NULL */
  size_t nparams;
  const char *secret;      /* the agent's token, redacted too; may be NULL */
  atomic_bool cancel_flag; /* set by cancel() */
  dk_job_t *next;
};

/* A growing byte buffer, always NUL-terminated when data != NULL. */
typedef struct dk_buf {
  char *data;
  size_t len;
  size_t cap;
} dk_buf_t;

/* Messages, e.g. every problem of a workspace.yaml. */
typedef struct dk_errs {
  char **v;
  size_t n;
} dk_errs_t;

/* ---- plugin.c */

/* *err = a malloc'd message (when err is not NULL); returns code. */
extern const atr_host_t *dk_host; /* set by init() */
int dk_failf(char **err, int code, const char *fmt, ...) ATR_PRINTF(3, 4);
void dk_jobs_add(dk_ctx_t *c, dk_job_t *j);
void dk_jobs_remove(dk_ctx_t *c, dk_job_t *j);
/* Whether the job was canceled, by cancel() or the host's flag. */
bool dk_job_canceled(dk_job_t *j);
/* A malloc'd copy of text with every sensitive value replaced. */
char *dk_redact(const dk_job_t *j, const char *text);
/* One job log line (redacted) in j->stage. */
void dk_log(dk_job_t *j, atr_log_level_t level, const char *line);
void dk_logf(dk_job_t *j, atr_log_level_t level, const char *fmt, ...)
    ATR_PRINTF(3, 4);
/* Log "Error: <message>" and return code with the message (redacted) in
 * *err. */
int dk_fail_log(dk_job_t *j, char **err, int code, const char *fmt, ...)
    ATR_PRINTF(4, 5);
int dk_buf_append(dk_buf_t *b, const char *data, size_t len);
int dk_buf_printf(dk_buf_t *b, const char *fmt, ...) ATR_PRINTF(2, 3);
void dk_buf_free(dk_buf_t *b);
void dk_errs_addf(dk_errs_t *e, const char *fmt, ...) ATR_PRINTF(2, 3);
/* The messages joined by newlines (malloc'd), NULL when out of memory. */
char *dk_errs_join(const dk_errs_t *e);
void dk_errs_free(dk_errs_t *e);

/* ---- engine.c */

typedef struct dk_engine {
  dk_job_t *j;
  CURL *curl;
  char api[16];  /* "1.41": the engine's own API version */
  char *version; /* "20.10.24" */
  /* Calls ignore the job's cancel (the last look at what exists). */
  bool uncancelable;
  char errbuf[CURL_ERROR_SIZE];
} dk_engine_t;

/* One answer. json is the parsed body when it is JSON, else NULL. */
typedef struct dk_resp {
  long status;
  dk_buf_t body;
  json_t *json;
} dk_resp_t;

/* Connect and negotiate: GET /version, whose ApiVersion prefixes every
 * later path. ATR_EUNAVAIL "cannot reach the Docker engine at SOCKET: …"
 * when nothing answers. */
int dk_engine_open(dk_engine_t *e, dk_job_t *j, char **err);
void dk_engine_close(dk_engine_t *e);
/* METHOD /v<api><path> with an optional JSON body. 0 with r filled
 * whatever the HTTP status; ATR_ECANCELED, ATR_ETIMEDOUT or ATR_EUNAVAIL
 * with *err when there is no answer. timeout_ms 0: none. */
int dk_call(dk_engine_t *e, const char *method, const char *path,
            const json_t *body, long timeout_ms, dk_resp_t *r, char **err);
/* The engine's message for a failed call: its "message", else the body. */
const char *dk_resp_message(const dk_resp_t *r);
void dk_resp_free(dk_resp_t *r);
/* s escaped for a URL (malloc'd), NULL when out of memory. */
char *dk_escape(dk_engine_t *e, const char *s);
/* Pull image (POST /images/create), logging the engine's progress. */
int dk_pull(dk_engine_t *e, const char *image, char **err);
/* The last `tail` lines a container wrote (stdout and stderr). */
int dk_container_logs(dk_engine_t *e, const char *id, int tail,
                      dk_errs_t *lines);
/* The engine's answer to a failed call as the op's error (logged). */
int dk_engine_fail(dk_engine_t *e, const dk_resp_t *r, char **err,
                   const char *fmt, ...) ATR_PRINTF(4, 5);

/* ---- spec.c */

/* A string value as workspace.yaml writes it, references not expanded. */
typedef struct dk_text {
  char *raw;          /* NULL: not set (or null) */
  unsigned line, col; /* 1-based, where the value starts */
} dk_text_t;

typedef struct dk_pair {
  char *key;
  dk_text_t value;
} dk_pair_t;

typedef struct dk_vol_src {
  dk_text_t name, path;
} dk_vol_src_t;

/* One container as written. */
typedef struct dk_csrc {
  dk_text_t name;     /* extra containers only */
  unsigned line, col; /* its mapping */
  dk_text_t image, working_dir, cpus, memory, network_mode;
  bool command_is_list;
  dk_text_t *command; /* a string: one item */
  size_t ncommand;
  dk_pair_t *env;
  size_t nenv;
  dk_pair_t *labels;
  size_t nlabels;
  dk_vol_src_t *volumes;
  size_t nvolumes;
} dk_csrc_t;

typedef struct dk_spec {
  dk_csrc_t *containers; /* [0] the main one, then `containers` */
  size_t ncontainers;
} dk_spec_t;

/* Walks a string's references: text() gets the literal pieces ($${ as
 * ${), ref() each reference's name without ${ } and blanks (not
 * NUL-terminated) and the offset of its '$'. A nonzero return stops the
 * walk and is returned. ATR_EINVAL when a ${ is never closed (*bad_at:
 * its offset). */
typedef struct dk_walk {
  void *ud;
  int (*text)(void *ud, const char *s, size_t n);
  int (*ref)(void *ud, const char *name, size_t n, size_t at);
} dk_walk_t;
int dk_refs_walk(const char *raw, const dk_walk_t *w, size_t *bad_at);

/* Read dir/workspace.yaml. Every problem (syntax, unknown or missing
 * keys, wrong types, references to anything but params and the facts)
 * goes to errs as "workspace.yaml:LINE:COL: …". 0, ATR_EINVAL (see errs;
 * out holds what could be read, so that dk_plan_make can find more),
 * ATR_ENOENT (no file; in errs too) or ATR_ENOMEM. Free out with
 * dk_spec_free() in every case. */
int dk_spec_load(const char *dir, const char *const *params, size_t nparams,
                 dk_spec_t *out, dk_errs_t *errs);
void dk_spec_free(dk_spec_t *s);

/* ---- resolve.c */

typedef struct dk_kv {
  char *key;
  char *value;
} dk_kv_t;

typedef struct dk_mount {
  char *volume; /* the Docker volume's name */
  char *path;
} dk_mount_t;

/* One container to make, with every value final. */
typedef struct dk_container {
  char *name; /* the Docker name: atrium-<owner>-<workspace>[-<extra>] */
  char *image;
  char **command; /* NULL: the image's own; else Entrypoint, Cmd empty */
  size_t ncommand;
  char *working_dir; /* NULL: the image's */
  dk_kv_t *env;
  size_t nenv;
  bool env_sensitive; /* a value uses a sensitive parameter */
  int64_t nano_cpus;  /* 0: no limit */
  int64_t memory;     /* bytes; 0: no limit */
  dk_mount_t *mounts;
  size_t nmounts;
  dk_kv_t *labels; /* atrium's own, then the spec's */
  size_t nlabels;
  char *network_mode;
  char *hostname; /* the workspace's (or extra container's) name */
} dk_container_t;

typedef struct dk_plan {
  dk_container_t *containers; /* [0] the main one */
  size_t ncontainers;
  char **volumes; /* Docker names, each once */
  size_t nvolumes;
  dk_kv_t *volume_labels;
  size_t nvolume_labels;
} dk_plan_t;

/* Expand and check the spec. With req NULL (an import), values that use a
 * reference are not checked and plan is left empty; with a build's
 * request every value is final and checked. Problems go to errs. 0,
 * ATR_EINVAL or ATR_ENOMEM. */
int dk_plan_make(const dk_ctx_t *c, const dk_spec_t *spec,
                 const atr_prov_apply_request_t *req, dk_plan_t *plan,
                 dk_errs_t *errs);
void dk_plan_free(dk_plan_t *p);
/* "atrium-<workspace id>-<name>", malloc'd. */
char *dk_volume_name(const char *workspace_id, const char *name);
/* The label selector of a workspace's objects: "<prefix>.workspace_id=ID". */
char *dk_workspace_label(const dk_ctx_t *c, const char *workspace_id);

/* ---- units.c */

/* "1.5" → 1500000000 NanoCpus. "" → 0 (no limit). */
int dk_parse_cpus(const char *text, int64_t *nano);
/* "512MiB", "1g", "1073741824" → bytes. "" → 0 (no limit). */
int dk_parse_memory(const char *text, int64_t *bytes);
/* Whether text looks like an image reference the engine can take. */
bool dk_image_valid(const char *image);
/* Whether image starts with one of the prefixes, as written or in its
 * full form (ubuntu → docker.io/library/ubuntu). NULL or no prefixes:
 * any image. */
bool dk_image_allowed(const char *image, const char *const *prefixes);
/* "image \"x\" is not allowed; allowed prefixes: a/, b/ (…)", malloc'd. */
char *dk_image_refusal(const char *image, const char *const *prefixes);
/* "512 MiB", "1.5 GiB" into buf. */
void dk_format_bytes(int64_t bytes, char *buf, size_t size);
/* Lower-cased, with characters outside [a-z0-9_.-] as '-'. In place. */
void dk_sanitize_name(char *s);

/* ---- inventory.c */

/* A container or volume of the workspace that exists now. */
typedef struct dk_obj {
  char *name;
  char *id;     /* volumes: the name */
  char *image;  /* containers */
  char *status; /* containers: "running", "exited", … */
} dk_obj_t;

typedef struct dk_inv {
  dk_obj_t *containers;
  size_t ncontainers;
  dk_obj_t *volumes;
  size_t nvolumes;
  char *image; /* the prior state's main image, or NULL */
} dk_inv_t;

/* What exists of the workspace: every container and volume with its
 * workspace_id label, and what the prior state names that still exists.
 * extra_volumes (may be NULL): more volume names to look for. */
int dk_inv_load(dk_engine_t *e, const atr_prov_apply_request_t *req,
                char *const *extra_volumes, size_t nextra, dk_inv_t *inv,
                char **err);
void dk_inv_free(dk_inv_t *inv);
/* The state {"containers", "volumes", "image"} and the resources. */
int dk_inv_result(const dk_inv_t *inv, const char *image,
                  atr_prov_apply_result_t *res);
/* Look again (ignoring a cancel) and fill res; logs when it cannot. */
void dk_result_from_engine(dk_engine_t *e, const atr_prov_apply_request_t *req,
                           const dk_plan_t *plan, atr_prov_apply_result_t *res);

/* ---- start.c */

int dk_start(dk_engine_t *e, const atr_prov_apply_request_t *req,
             const dk_plan_t *plan, char **err);
/* Remove a container (force): gone afterwards, also when it was gone. */
int dk_container_remove(dk_engine_t *e, const char *id, const char *name,
                        char **err);
/* Log what start will make (plan()). */
void dk_describe(dk_job_t *j, const dk_plan_t *plan);

/* ---- agent.c */

/* The agent a start build carries (ABI 1.3), or NULL. */
const atr_prov_agent_t *dk_agent(const atr_prov_apply_request_t *req);
/* A start with an agent needs the bundle and a network that reaches the
 * server; with describe, logs what the main container gets (plan()). 0 or
 * ATR_EINVAL (logged). */
int dk_agent_check(dk_job_t *j, const atr_prov_apply_request_t *req,
                   const dk_plan_t *plan, bool describe, char **err);
/* Make the create body of the main container start the agent: the bundle
 * mounted read-only at DK_AGENT_DIR, the agent as the entrypoint in front
 * of the command (the spec's, else the image's Entrypoint and Cmd), its
 * URL and token in the environment and a longer StopTimeout. */
int dk_agent_body(dk_engine_t *e, const atr_prov_agent_t *a,
                  const dk_container_t *c, json_t *body, char **err);

/* ---- ops.c */

int dk_parse(void *ctx, const atr_prov_parse_request_t *req, char **err);
int dk_plan(void *ctx, const atr_prov_apply_request_t *req, char **err);
int dk_apply(void *ctx, const atr_prov_apply_request_t *req,
             atr_prov_apply_result_t *res, char **err);

#endif
