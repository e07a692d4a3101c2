/* core/api_jobs.c — see api_jobs.h. */
#include "api_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "events.h"
#include "queue.h"

#define LOG_PAGE 1000
#define KEEPALIVE_MS 15000
#define FOLLOW_POLL_MS 1000

json_t *atr_api_job_row(atr_db_t *db, atr_db_rows_t *rows, size_t first) {
  size_t c = first;
  bool started = !atr_db_is_null(db, rows, c + 3);
  bool completed = !atr_db_is_null(db, rows, c + 4);
  bool canceled = !atr_db_is_null(db, rows, c + 5);
  bool failed = !atr_db_is_null(db, rows, c + 6);
  const char *worker = atr_db_get_text(db, rows, c + 8);
  return json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:s, s:o, s:b, "
      "s:{}}",
      "id", atr_row_text(db, rows, c), "type", atr_row_text(db, rows, c + 1),
      "status", atr_job_status(started, completed, canceled, failed),
      "created_at", atr_time_json(atr_db_get_time(db, rows, c + 2)),
      "started_at", atr_time_json(atr_db_get_time(db, rows, c + 3)),
      "completed_at", atr_time_json(atr_db_get_time(db, rows, c + 4)),
      "canceled_at", atr_time_json(atr_db_get_time(db, rows, c + 5)), "error",
      atr_row_text(db, rows, c + 6), "file_id", atr_row_text(db, rows, c + 7),
      "worker_id", worker ? json_string(worker) : json_null(), "provisioner",
      atr_row_text(db, rows, c + 9), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, c + 10)), "logs_overflowed",
      atr_db_get_bool(db, rows, c + 11), "tags");
}

int atr_api_job_add_tags(atr_db_t *db, json_t *job, char **err) {
  atr_value_t k[] = {atr_v_text(json_string_value(json_object_get(job, "id")))};
  return atr_select_object(db,
                           "SELECT key, value FROM provisioner_job_tags "
                           "WHERE job_id = ? ORDER BY key",
                           k, 1, json_object_get(job, "tags"), err);
}

/* ---- logs ---------------------------------------------------------------- */

/* Lines after `after`, at most LOG_PAGE, as an array; *status the job's. */
static int read_logs(atr_store_t *store, const char *job_id, int64_t after,
                     json_t **lines, char status[16], char error[512],
                     char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t k[] = {atr_v_text(job_id)};
  atr_db_rows_t *rows = NULL;
  /* The status first: lines stored before the job ended are all there
   * when a later read sees it ended. */
  rc = atr_db_query(&db,
                    "SELECT started_at, completed_at, canceled_at, error FROM "
                    "provisioner_jobs WHERE id = ?",
                    k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    snprintf(status, 16, "%s",
             atr_job_status(
                 !atr_db_is_null(&db, rows, 0), !atr_db_is_null(&db, rows, 1),
                 !atr_db_is_null(&db, rows, 2), !atr_db_is_null(&db, rows, 3)));
    snprintf(error, 512, "%s", atr_row_text(&db, rows, 3));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(&db, rows);
  *lines = json_array();
  atr_value_t p[] = {atr_v_text(job_id), atr_v_int(after), atr_v_int(LOG_PAGE)};
  if (rc == 0)
    rc = atr_db_query(&db,
                      "SELECT id, created_at, source, level, stage, output "
                      "FROM provisioner_job_logs WHERE job_id = ? AND id > ? "
                      "ORDER BY id LIMIT ?",
                      p, 3, &rows, err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    json_array_append_new(
        *lines,
        json_pack("{s:I, s:o, s:s, s:s, s:s, s:s}", "id",
                  (json_int_t)atr_db_get_int(&db, rows, 0), "created_at",
                  atr_time_json(atr_db_get_time(&db, rows, 1)), "log_source",
                  atr_row_text(&db, rows, 2), "log_level",
                  atr_row_text(&db, rows, 3), "stage",
                  atr_row_text(&db, rows, 4), "output",
                  atr_row_text(&db, rows, 5)));
    rc = 0;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc < 0 ? rc : 0;
}

static int send_event(atr_api_req_t *r, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  char *frame = NULL;
  int n = text ? asprintf(&frame, "event: %s\ndata: %s\n\n", event, text) : -1;
  free(text);
  if (n < 0)
    return ATR_ENOMEM;
  int rc = atr_api_stream_write(r, frame, (size_t)n);
  free(frame);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send lines as they come until the job ends, the client goes, or the
 * server stops. */
static void follow(atr_api_req_t *r, const char *job_id, int64_t after) {
  atr_events_t *ev = r->env->dom.events;
  int64_t last_write = now_ms();
  for (;;) {
    uint64_t seen = ev ? atr_events_gen(ev, ATR_EVENT_CHANGED) : 0;
    json_t *lines = NULL;
    char status[16] = "", error[512] = "";
    char *err = NULL;
    int rc = read_logs(r->env->dom.store, job_id, after, &lines, status, error,
                       &err);
    free(err);
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
      if (rc == 0)
        rc = send_event(r, "log", line);
      after = json_integer_value(json_object_get(line, "id"));
      last_write = now_ms();
    }
    bool more = json_array_size(lines) == LOG_PAGE;
    json_decref(lines);
    if (rc != 0)
      return; /* the client went, or the database did */
    if (!more && atr_job_status_ended(status)) {
      json_t *end = json_pack("{s:s, s:s}", "status", status, "error", error);
      send_event(r, "end", end);
      json_decref(end);
      return;
    }
    if (more)
      continue;
    if (atr_api_draining(r))
      return;
    if (now_ms() - last_write >= KEEPALIVE_MS) {
      if (atr_api_stream_write(r, ": keepalive\n\n", 13) != 0)
        return;
      last_write = now_ms();
    }
    if (ev)
      atr_events_wait(ev, ATR_EVENT_CHANGED, seen, FOLLOW_POLL_MS);
    else
      nanosleep(&(struct timespec){0, 200000000L}, NULL);
  }
}

int atr_api_job_logs(atr_api_req_t *r, const char *job_id) {
  char buf[32], *end = NULL;
  const char *a = atr_api_query(r, "after", buf, sizeof buf);
  int64_t after = 0;
  if (a) {
    errno = 0;
    long long n = strtoll(a, &end, 10);
    if (!*a || *end || errno != 0 || n < 0)
      return atr_api_validation(r, "Invalid query parameters.",
                                json_pack("[{s:s, s:s}]", "field", "after",
                                          "detail",
                                          "Must be a line number, 0 or more."));
    after = n;
  }
  char fbuf[8];
  const char *f = atr_api_query(r, "follow", fbuf, sizeof fbuf);
  if (f && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0)) {
    if (atr_api_stream_begin(r, "text/event-stream") != 0)
      return atr_api_error(r, 500, "Internal error.", "cannot stream");
    follow(r, job_id, after);
    return 0;
  }
  json_t *lines = NULL;
  char status[16], error[512];
  char *err = NULL;
  int rc =
      read_logs(r->env->dom.store, job_id, after, &lines, status, error, &err);
  if (rc != 0) {
    json_decref(lines);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200, lines);
  }
  free(err);
  return 0;
}

/* ---- cancel -------------------------------------------------------------- */

typedef struct cancel {
  const char *job_id;
  bool ended;
} cancel_t;

static int cancel_tx(atr_db_t *db, void *ud, char **err) {
  cancel_t *c = ud;
  int rc = atr_jobs_cancel(db, c->job_id, &c->ended, err);
  if (rc == 0 && c->ended) {
    /* A pending build that never ran keeps the state before it. */
    rc = atr_jobs_keep_previous_state(db, c->job_id, err);
  }
  return rc;
}

int atr_api_job_cancel(atr_api_req_t *r, const char *job_id) {
  cancel_t c = {job_id, false};
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, cancel_tx, &c, &err);
  if (rc == ATR_EINVAL) {
    atr_api_error(r, 400, "The job has already ended or is being canceled.",
                  err ? err : "");
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    if (c.ended)
      atr_events_job_changed(r->env->dom.events, job_id);
    else
      atr_events_job_cancel(r->env->dom.events, job_id);
    atr_api_json(r, 200, json_pack("{s:s}", "message", "Job canceled."));
  }
  free(err);
  return 0;
}
