/* core/cli/cli_follow.c — following a job's logs to its end (cli_follow.h). */
#include "cli_follow.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "cli_output.h"
#include "cli_session.h"

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
}

typedef struct follow {
  bool print;
  json_int_t last_id; /* the last log line printed */
  json_t *end;        /* the end event's data */
} follow_t;

static void print_log(follow_t *f, const json_t *line) {
  json_int_t id = json_integer_value(json_object_get(line, "id"));
  if (id > 0 && id <= f->last_id)
    return; /* already shown (a reconnect or the fallback) */
  if (id > 0)
    f->last_id = id;
  if (!f->print)
    return;
  const char *stage = atr__cli_str(line, "stage");
  const char *output = atr__cli_str(line, "output");
  if (stage && *stage)
    printf("[%s] %s\n", stage, output ? output : "");
  else
    printf("%s\n", output ? output : "");
  fflush(stdout);
}

static int on_event(const atr_client_event_t *ev, void *ud) {
  follow_t *f = ud;
  json_t *data = json_loads(ev->data, JSON_DECODE_ANY, NULL);
  if (strcmp(ev->event, "log") == 0 && json_is_object(data)) {
    print_log(f, data);
  } else if (strcmp(ev->event, "end") == 0) {
    json_decref(f->end);
    f->end = data;
    data = NULL;
  }
  json_decref(data);
  return 0;
}

bool atr__cli_job_ended(const char *status) {
  return status &&
         (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
          strcmp(status, "canceled") == 0);
}

/* Print the lines after f->last_id; 0 or 1. */
static int print_new_logs(atr__cli_t *cli, const char *object_path,
                          follow_t *f) {
  char *path = NULL;
  if (asprintf(&path, "%s/logs?after=%" JSON_INTEGER_FORMAT, object_path,
               f->last_id) < 0)
    return atr__cli_oom(cli);
  json_t *lines = NULL;
  int rc = atr__cli_get(cli, path, &lines);
  free(path);
  size_t i;
  json_t *line;
  json_array_foreach(lines, i, line) {
    print_log(f, line);
  }
  json_decref(lines);
  return rc;
}

int atr__cli_print_logs(atr__cli_t *cli, const char *object_path) {
  follow_t f = {.print = true};
  return print_new_logs(cli, object_path, &f);
}

static void nap(double seconds) {
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !got_sigint)
    ;
}

/* Without a stream: ask for the job and its new lines every second. */
static int poll_job(atr__cli_t *cli, const char *object_path, follow_t *f) {
  for (;;) {
    json_t *obj = NULL;
    int rc = atr__cli_get(cli, object_path, &obj);
    json_t *job = json_object_get(obj, "job");
    if (rc == 0)
      rc = print_new_logs(cli, object_path, f);
    if (rc == 0 && atr__cli_job_ended(atr__cli_str(job, "status"))) {
      f->end = json_pack(
          "{s:s, s:s}", "status", atr__cli_str(job, "status"), "error",
          atr__cli_str(job, "error") ? atr__cli_str(job, "error") : "");
      rc = f->end ? 0 : atr__cli_oom(cli);
    }
    json_decref(obj);
    if (rc != 0 || f->end)
      return rc;
    nap(1);
    if (got_sigint)
      return 130;
  }
}

static int stream_job(atr__cli_t *cli, const char *object_path, follow_t *f) {
  char *path = NULL;
  if (asprintf(&path, "%s/logs?follow=true", object_path) < 0)
    return atr__cli_oom(cli);
  atr_client_res_t res;
  char *err = NULL;
  int rc = atr_client_stream(cli->client, path, on_event, f, &res, &err);
  free(path);
  if (rc == ATR_ECANCELED) {
    rc = 130;
  } else if (rc == ATR_EIO && res.status != 0) {
    atr_client_print_error(cli->what, &res);
    rc = 1;
  } else if (rc != 0 && rc != ATR_ENOMEM) {
    /* The logs cannot be streamed from here: ask instead. */
    fprintf(stderr, "%s: %s; polling instead\n", cli->what,
            err ? err : atr_strerror(rc));
    rc = poll_job(cli, object_path, f);
  } else if (rc != 0) {
    rc = atr__cli_oom(cli);
  }
  free(err);
  atr_client_res_free(&res);
  return rc;
}

/* The object as it ended and how long its job took. */
static void read_end(atr__cli_t *cli, const char *object_path,
                     atr__cli_job_end_t *end) {
  if (atr__cli_get(cli, object_path, &end->object) != 0)
    end->object = NULL;
  const json_t *job = json_object_get(end->object, "job");
  const char *from = atr__cli_str(job, "started_at");
  double secs = atr__cli_seconds(from ? from : atr__cli_str(job, "created_at"),
                                 atr__cli_str(job, "completed_at"));
  if (secs >= 0)
    snprintf(end->took, sizeof end->took, " in %.1fs", secs);
}

static int follow_job(atr__cli_t *cli, const char *object_path, bool print,
                      atr__cli_job_end_t *end) {
  follow_t f = {.print = print};
  struct sigaction on = {.sa_handler = on_sigint}, old;
  sigemptyset(&on.sa_mask);
  got_sigint = 0;
  sigaction(SIGINT, &on, &old); /* no SA_RESTART: waits end early */
  atr_client_set_interrupt(cli->client, &got_sigint);
  int rc = stream_job(cli, object_path, &f);
  atr_client_set_interrupt(cli->client, NULL);
  sigaction(SIGINT, &old, NULL);
  if (rc == 0) {
    const char *status = atr__cli_str(f.end, "status");
    const char *error = atr__cli_str(f.end, "error");
    end->status = strdup(status ? status : "unknown");
    end->error = strdup(error ? error : "");
    if (!end->status || !end->error) {
      atr__cli_job_end_clear(end);
      rc = atr__cli_oom(cli);
    }
  }
  json_decref(f.end);
  if (rc == 0)
    read_end(cli, object_path, end);
  return rc;
}

int atr__cli_follow(atr__cli_t *cli, const char *fmt, const char *id,
                    bool print, atr__cli_job_end_t *end) {
  *end = (atr__cli_job_end_t){0};
  char *path = atr__cli_path(fmt, id, NULL);
  if (!path)
    return atr__cli_oom(cli);
  int rc = follow_job(cli, path, print, end);
  free(path);
  return rc;
}

void atr__cli_job_end_clear(atr__cli_job_end_t *end) {
  free(end->status);
  free(end->error);
  json_decref(end->object);
  *end = (atr__cli_job_end_t){0};
}
