/* core/cli_builds.h — the commands for templates, workspaces and their
 * builds: `atrium templates push|list|versions|show` (cli_templates.c) and
 * `atrium create|list|show|start|stop|delete|logs|cancel`
 * (cli_workspaces.c, which also parses the arguments, dispatches, and
 * follows a job's logs for both files). Each command returns the process
 * exit status: 0 done, 1 the server (or the network) refused or the job
 * did not succeed, 2 the arguments were wrong, 130 interrupted while
 * following a job (the job goes on).
 *
 * Values of sensitive parameters and the session token are never
 * printed; what the server sends is shown as it comes (it masks
 * sensitive values itself).
 *
 * Threads: main thread only (following a job installs a SIGINT handler
 * for its duration; prompts read the terminal). */
#ifndef ATRIUM_CORE_CLI_BUILDS_H
#define ATRIUM_CORE_CLI_BUILDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "client.h"

/* Whether `cmd` (argv[1]) is one of these commands. */
bool atr_cli_builds_handles(const char *cmd);
/* Run `atrium cmd argv...`; argv is what follows cmd. */
int atr_cli_builds(const char *cmd, int argc, char **argv);

/* ---- shared by cli_templates.c and cli_workspaces.c --------------------- */

#define ATR__CLI_MAX_PARAMS 64

typedef struct atr__cli_opts {
  const char *output, *name, *org, *template_name, *build;
  const char *params[ATR__CLI_MAX_PARAMS]; /* "name=value", as given */
  size_t nparams;
  bool activate, yes, all, follow, orphan, help;
  const char *args[1];
  int nargs;
} atr__cli_opts_t;

typedef struct atr__cli {
  char what[64]; /* "atrium templates push": the prefix of every message */
  atr__cli_opts_t o;
  bool json;
  atr_client_t *client;
} atr__cli_t;

/* A job's end: its status ("succeeded", "failed", "canceled") and error
 * (owned strings). */
typedef struct atr__cli_job_end {
  char *status;
  char *error;
} atr__cli_job_end_t;

/* The commands of cli_templates.c. */
int atr__cli_templates_push(atr__cli_t *cli);
int atr__cli_templates_list(atr__cli_t *cli);
int atr__cli_templates_versions(atr__cli_t *cli);
int atr__cli_templates_show(atr__cli_t *cli);

/* Helpers of cli_workspaces.c. Those returning int give 0, or 1 after
 * printing why. */
int atr__cli_oom(const atr__cli_t *cli);
int atr__cli_connect(atr__cli_t *cli);
/* GET path; the answer in *out (owned). */
int atr__cli_get(atr__cli_t *cli, const char *path, json_t **out);
/* path from fmt where each %s is one argument escaped as a path segment
 * (malloc'd); NULL on ENOMEM. */
char *atr__cli_path(const char *fmt, const char *a, const char *b);
const char *atr__cli_str(const json_t *obj, const char *key);
/* The same for printing: "-" when missing. */
const char *atr__cli_txt(const json_t *obj, const char *key);
void atr__cli_print_json(const json_t *j);
/* "2026-01-02T15:04:05.123456Z" → "2026-01-02T15:04:05Z" in buf; none
 * for NULL. */
const char *atr__cli_time(const char *iso, char buf[32], const char *none);
/* Seconds from RFC 3339 time a to b; -1 when either is missing. */
double atr__cli_seconds(const char *a, const char *b);
/* On a terminal (and without -y) ask "question [y/N] "; 0 to go on.
 * Without a terminal: 0 unless `required`, then 1 with a message that
 * says to give -y. */
int atr__cli_confirm(const atr__cli_t *cli, bool required,
                     const char *question);
/* The organization: --org, else the caller's default one; *org owned. */
int atr__cli_org(atr__cli_t *cli, char **org);

/* A table printed with aligned columns; cells are copied ("-" for NULL
 * or ""). */
typedef struct atr__cli_table {
  size_t ncols, nrows;
  const char *const *head;
  char **cells;
} atr__cli_table_t;
int atr__cli_table_add(atr__cli_table_t *t, const char *const *row);
void atr__cli_table_print(const atr__cli_table_t *t);
void atr__cli_table_free(atr__cli_table_t *t);

/* Follow the job of the object at object_path (a template version or a
 * workspace build, which have "job" and ".../logs"): print its log lines
 * as they come when `print` ("[stage] output"), until it ends. Streams
 * the logs (server-sent events); should that fail, polls. 0 with *end
 * filled (the caller clears it); 130 when Ctrl-C stopped the following;
 * 1 after printing why. */
int atr__cli_follow(atr__cli_t *cli, const char *object_path, bool print,
                    atr__cli_job_end_t *end);
void atr__cli_job_end_clear(atr__cli_job_end_t *end);

#endif
