/* core/cli/cli_follow.h — following a job (a template version's import, a
 * workspace build) from the object that has it: that object's path has
 * "job" and ".../logs". The log lines are streamed as server-sent events;
 * should that fail, the job and its new lines are polled every second.
 * Ctrl-C stops the following, not the job.
 *
 * Threads: main thread only (following installs a SIGINT handler for its
 * duration). */
#ifndef ATRIUM_CORE_CLI_FOLLOW_H
#define ATRIUM_CORE_CLI_FOLLOW_H

#include <jansson.h>
#include <stdbool.h>

#include "cli_args.h"

/* How a followed job ended; atr__cli_job_end_clear frees it. */
typedef struct atr__cli_job_end {
  char *status;   /* "succeeded", "failed", "canceled" */
  char *error;    /* "" when none */
  json_t *object; /* the object read again at the end; NULL if that failed */
  char took[48];  /* " in 4.2s" from its job's times, or "" */
} atr__cli_job_end_t;

/* Follow the job of the object at fmt with id (escaped) for its %s,
 * printing its log lines as they come when `print` ("[stage] output"),
 * until it ends. 0 with *end filled; 130 when Ctrl-C stopped the
 * following; 1 after printing why. The caller clears *end in every case. */
int atr__cli_follow(atr__cli_t *cli, const char *fmt, const char *id,
                    bool print, atr__cli_job_end_t *end);
void atr__cli_job_end_clear(atr__cli_job_end_t *end);

/* Print the log lines the job of object_path has so far; 0 or 1. */
int atr__cli_print_logs(atr__cli_t *cli, const char *object_path);
/* Whether a job's status is final. */
bool atr__cli_job_ended(const char *status);

#endif
