/* tests/plugins/postgres_fixture.c — the storage_postgres test's
 * instances, checks, inbox and group set-up (postgres_fixture.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, pipe2 */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atrium/storage.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "postgres_fixture.h"

/* ---- harness */

instance_t db;     /* the plugin on TEST_DB, for most tests */
char *fixture_dsn; /* the cluster's own DSN, database atrium */
char *test_dsn;    /* TEST_DB, with the password */
FILE *log_file;    /* everything the core and plugins logged */

/* A file's text without trailing whitespace. */
char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fail_msg("cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  return strdup(buf);
}

/* No message may show the password (or, by extension, the DSN). */
void no_secret(const char *s) {
  if (s != NULL && strstr(s, SECRET) != NULL)
    fail_msg("the DSN's password leaked into: %s", s);
}

/* Fails with the plugin's message unless rc is 0; frees *err. */
void must(int rc, char **err) {
  no_secret(*err);
  if (rc != 0)
    fail_msg("%s (%s)", *err ? *err : "no message", atr_err_name(rc));
  free(*err);
  *err = NULL;
}

/* Expects rc and a message containing `part`; frees *err. */
void expect_err(int rc, int want, const char *part, char **err) {
  no_secret(*err);
  if (rc != want)
    fail_msg("got %s (%s), want %s", atr_err_name(rc),
             *err ? *err : "no message", atr_err_name(want));
  assert_non_null(*err);
  if (strstr(*err, part) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", *err, part);
  free(*err);
  *err = NULL;
}

int instance_start(instance_t *in, const char *dsn, const char *extra,
                   char **err) {
  memset(in, 0, sizeof *in);
  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  int rc = atr_loader_init(&in->loader, dirs, 1, err);
  if (rc != 0)
    return rc;
  char *yaml = fmt("plugins:\n  storage_postgres:\n    enabled: true\n"
                   "    dsn: \"%s\"\n%s",
                   dsn, extra ? extra : "");
  rc = atr_conf_parse("test.yaml", yaml, strlen(yaml), &in->conf, err);
  free(yaml);
  if (rc == 0)
    rc = atr_loader_open(&in->loader, "storage_postgres", NULL, &in->h, err);
  if (rc == 0)
    rc = atr_loader_configure(in->h, in->conf, NULL, no_env, err);
  if (rc == 0)
    rc = atr_loader_start(in->h, err);
  if (rc == 0) {
    in->ops = in->h->desc->ops;
    in->ctx = in->h->ctx;
  }
  return rc;
}

void instance_stop(instance_t *in) {
  atr_loader_shutdown(&in->loader);
  atr_conf_free(in->conf);
  memset(in, 0, sizeof *in);
}

/* Run statements over plain libpq on the cluster's own database. */
void admin(const char *sql) {
  PGconn *pg = PQconnectdb(fixture_dsn);
  if (PQstatus(pg) != CONNECTION_OK)
    fail_msg("cannot reach the fixture cluster: %s", PQerrorMessage(pg));
  PGresult *res = PQexec(pg, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(pg));
  PQclear(res);
  PQfinish(pg);
}

/* scripts/dev/postgres.sh ACTION DIR; its exit status. */
int pg_script(const char *action, const char *dir) {
  char *argv[] = {"bash", ATR_TEST_PG_SCRIPT, (char *)action, (char *)dir,
                  NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/bash", NULL, NULL, argv, environ);
  if (rc != 0)
    fail_msg("cannot run %s: %s", ATR_TEST_PG_SCRIPT, strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

atr_db_conn_t *get_conn(instance_t *in) {
  atr_db_conn_t *conn = NULL;
  char *err = NULL;
  must(in->ops->get(in->ctx, &conn, &err), &err);
  return conn;
}

void script(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  char *err = NULL;
  must(in->ops->exec_script(conn, sql, &err), &err);
  in->ops->put(in->ctx, conn);
}

/* One row's worth of a query, the rows left open for rows_get. */
atr_db_rows_t *query_row(instance_t *in, atr_db_conn_t *conn, const char *sql,
                         const atr_value_t *params, size_t n) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  must(in->ops->query(conn, sql, params, n, &rows, &err), &err);
  assert_int_equal(in->ops->rows_next(rows, &err), 1);
  return rows;
}

int64_t query_int(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  atr_db_rows_t *rows = query_row(in, conn, sql, NULL, 0);
  atr_value_t v;
  assert_int_equal(in->ops->rows_get(rows, 0, ATR_VAL_INT, &v), 0);
  assert_int_equal(v.type, ATR_VAL_INT);
  in->ops->rows_close(rows);
  in->ops->put(in->ctx, conn);
  return v.v.i;
}

char *query_text(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  atr_db_rows_t *rows = query_row(in, conn, sql, NULL, 0);
  atr_value_t v;
  assert_int_equal(in->ops->rows_get(rows, 0, ATR_VAL_TEXT, &v), 0);
  char *s = v.type == ATR_VAL_TEXT ? strdup(v.v.bytes.ptr) : NULL;
  in->ops->rows_close(rows);
  in->ops->put(in->ctx, conn);
  return s;
}

/* ---- pub/sub inbox */

void inbox_init(inbox_t *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->cond, NULL);
}

void inbox_free(inbox_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->payload[i]);
    free(b->channel[i]);
  }
  pthread_mutex_destroy(&b->lock);
  pthread_cond_destroy(&b->cond);
}

void on_message(void *user_data, const char *channel, const char *payload,
                unsigned flags) {
  inbox_t *b = user_data;
  pthread_mutex_lock(&b->lock);
  if (b->n < INBOX_MAX) {
    b->payload[b->n] = payload ? strdup(payload) : NULL;
    b->channel[b->n] = strdup(channel);
    b->flags[b->n] = flags;
    b->n++;
  }
  pthread_cond_broadcast(&b->cond);
  pthread_mutex_unlock(&b->lock);
}

/* Wait until the inbox holds n entries; how many it holds then. */
size_t inbox_wait(inbox_t *b, size_t n, unsigned timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&b->lock);
  while (b->n < n && pthread_cond_timedwait(&b->cond, &b->lock, &deadline) == 0)
    ;
  size_t got = b->n;
  pthread_mutex_unlock(&b->lock);
  return got;
}

/* ---- group set-up: a database of our own, the plugin on it */

int group_setup(void **state) {
  (void)state;
  char *path = fmt("%s/dsn", ATR_TEST_PG_DIR);
  fixture_dsn = read_text(path);
  free(path);
  admin("DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
  admin("CREATE DATABASE " TEST_DB);
  test_dsn = fmt("%s dbname=" TEST_DB " password=" SECRET, fixture_dsn);

  log_file = tmpfile();
  assert_non_null(log_file);
  atr_log_set_stream(log_file);
  char *err = NULL;
  must(instance_start(&db, test_dsn,
                      "    pool_size: 20\n    acquire_timeout: 10s\n", &err),
       &err);
  return 0;
}

int group_teardown(void **state) {
  (void)state;
  instance_stop(&db);
  atr_log_set_stream(NULL);
  if (log_file != NULL)
    fclose(log_file);
  admin("DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
  free(test_dsn);
  free(fixture_dsn);
  return 0;
}
