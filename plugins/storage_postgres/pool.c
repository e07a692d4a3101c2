/* pool.c — connection parameters and the connection pool.
 *
 * The user's dsn is expanded by libpq (PQconnectdbParams with
 * expand_dbname); our application_name comes before it, so the dsn may
 * override it, and the timeout and keepalive options after it, so they win.
 * Messages name the database as "host:port/dbname" from PQconninfoParse and
 * never contain the dsn or its password.
 *
 * The pool has pool_size slots, each connected on first use and kept open.
 * get() prefers a slot that is already connected, waits up to
 * acquire_timeout for one to be put back, and checks an idle connection
 * before handing it out: a server that went away leaves the socket readable
 * (an error message, then end of file), so a dead connection is noticed
 * without a round trip and reset once (PQreset). A statement that fails
 * because the connection dropped marks it broken; it is reset on its next
 * get().
 *
 * Threads: get() and put() from any thread; slots[].in_use is guarded by
 * pool_lock, everything else in a slot belongs to the thread holding it.
 */
#include "storage_postgres.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What every session needs for conversions to be exact (convert.c). */
static const char session_sql[] =
    "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; "
    "SET bytea_output = 'hex'; SET extra_float_digits = 1";

static void mask(char *s, const char *secret) {
  size_t n = secret ? strlen(secret) : 0;
  if (n < 3) /* too short to tell from ordinary text */
    return;
  for (char *p = strstr(s, secret); p != NULL; p = strstr(p + n, secret))
    memset(p, '*', n);
}

void spg_scrub(const spg_ctx_t *c, char *s) {
  if (s == NULL)
    return;
  mask(s, c->dsn);
  mask(s, c->password);
}

char *spg_conn_message(const spg_ctx_t *c, const PGconn *pg) {
  const char *m = pg ? PQerrorMessage(pg) : NULL;
  if (m == NULL || *m == '\0')
    m = "no message from libpq (out of memory?)";
  char *s = strdup(m);
  if (s == NULL)
    return NULL;
  /* One line: newlines and tabs become single spaces. */
  size_t o = 0;
  bool space = false;
  for (size_t i = 0; s[i] != '\0'; i++) {
    if (s[i] == '\n' || s[i] == '\t' || s[i] == '\r' || s[i] == ' ') {
      space = o > 0;
      continue;
    }
    if (space)
      s[o++] = ' ';
    space = false;
    s[o++] = s[i];
  }
  s[o] = '\0';
  spg_scrub(c, s);
  return s;
}

static const char *opt_val(const PQconninfoOption *opts, const char *key) {
  for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
    if (strcmp(o->keyword, key) == 0 && o->val != NULL && o->val[0] != '\0')
      return o->val;
  return NULL;
}

static const char *first_of(const char *a, const char *b, const char *c) {
  return a ? a : b ? b : c;
}

/* where and password from the dsn. */
static int parse_dsn(spg_ctx_t *c, char **err) {
  if (c->dsn == NULL || c->dsn[0] == '\0') {
    spg_set_err(err, "the dsn option is empty; set it to a libpq connection "
                     "string such as \"host=db.example port=5432 "
                     "dbname=atrium user=atrium\"");
    return ATR_ECONFIG;
  }
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(c->dsn, &perr);
  PQfreemem(perr); /* it may quote the dsn: never shown */
  bool bare = opts == NULL && strchr(c->dsn, '=') == NULL &&
              strstr(c->dsn, "://") == NULL;
  if (opts == NULL && !bare) {
    spg_set_err(err, "the dsn option is not a valid libpq connection string "
                     "(keyword=value pairs or a postgresql:// URI); it is not "
                     "shown because it may contain a password");
    return ATR_ECONFIG;
  }
  const char *host = first_of(opt_val(opts, "host"), opt_val(opts, "hostaddr"),
                              getenv("PGHOST"));
  const char *port = first_of(opt_val(opts, "port"), getenv("PGPORT"), "5432");
  const char *db = bare ? c->dsn
                        : first_of(opt_val(opts, "dbname"),
                                   getenv("PGDATABASE"), opt_val(opts, "user"));
  const char *pw = opt_val(opts, "password");
  int n = asprintf(&c->where, "%s:%s/%s", host ? host : "(default socket)",
                   port, db ? db : "(default database)");
  if (n < 0)
    c->where = NULL;
  c->password = pw ? strdup(pw) : NULL;
  PQconninfoFree(opts);
  if (c->where == NULL || (pw != NULL && c->password == NULL)) {
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  return 0;
}

static int64_t ceil_seconds(int64_t ms) {
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

static void conn_params(spg_ctx_t *c) {
  size_t i = 0;
  int64_t nums[] = {
      ceil_seconds(c->connect_timeout_ms), ceil_seconds(c->keepalives_idle_ms),
      ceil_seconds(c->keepalives_interval_ms), c->keepalives_count};
  for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
    snprintf(c->conn_num[k], sizeof c->conn_num[k], "%lld", (long long)nums[k]);
  c->conn_keys[i] = "application_name";
  c->conn_vals[i++] = "atrium";
  c->conn_keys[i] = "dbname"; /* expanded: the whole dsn */
  c->conn_vals[i++] = c->dsn;
  c->conn_keys[i] = "connect_timeout";
  c->conn_vals[i++] = c->conn_num[0];
  c->conn_keys[i] = "keepalives";
  c->conn_vals[i++] = c->keepalives ? "1" : "0";
  c->conn_keys[i] = "keepalives_idle";
  c->conn_vals[i++] = c->conn_num[1];
  c->conn_keys[i] = "keepalives_interval";
  c->conn_vals[i++] = c->conn_num[2];
  c->conn_keys[i] = "keepalives_count";
  c->conn_vals[i++] = c->conn_num[3];
  c->conn_keys[i] = NULL;
  c->conn_vals[i] = NULL;
}

int spg_session_setup(spg_ctx_t *c, PGconn *pg, char **err) {
  PGresult *res = PQexec(pg, session_sql);
  int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
  PQclear(res);
  if (ok)
    return 0;
  char *m = spg_conn_message(c, pg);
  spg_set_err(err, "cannot set up a session on %s: %s", c->where,
              m ? m : "out of memory");
  free(m);
  return PQstatus(pg) == CONNECTION_OK ? ATR_EIO : ATR_EUNAVAIL;
}

static void note_unreachable(spg_ctx_t *c, const char *why) {
  if (atomic_exchange(&c->reachable, false))
    c->host->log(c->h, ATR_LOG_WARN,
                 "%s; requests needing the database fail until it is back",
                 why);
}

static void note_reachable(spg_ctx_t *c) {
  if (!atomic_exchange(&c->reachable, true))
    c->host->log(c->h, ATR_LOG_INFO, "reached the database at %s again",
                 c->where);
}

static void unreachable_err(spg_ctx_t *c, const PGconn *pg, char **err) {
  char *m = spg_conn_message(c, pg);
  char *msg = NULL;
  spg_set_err(&msg, "cannot reach the database at %s: %s", c->where,
              m ? m : "out of memory");
  free(m);
  if (msg != NULL)
    note_unreachable(c, msg);
  if (err != NULL)
    *err = msg;
  else
    free(msg);
}

/* libpq prints notices (and the FATAL a server sends to idle sessions as
 * it shuts down) on stderr unless told otherwise: send them to the log. */
static void on_notice(void *arg, const PGresult *res) {
  const spg_ctx_t *c = arg;
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  bool warn = sev != NULL && strcmp(sev, "NOTICE") != 0 &&
              strcmp(sev, "INFO") != 0 && strcmp(sev, "LOG") != 0 &&
              strcmp(sev, "DEBUG") != 0;
  c->host->log(c->h, warn ? ATR_LOG_WARN : ATR_LOG_DEBUG, "server says: %s%s%s",
               sev ? sev : "", sev ? ": " : "", msg ? msg : "(no message)");
}

PGconn *spg_connect(spg_ctx_t *c, char **err) {
  PGconn *pg = PQconnectdbParams(c->conn_keys, c->conn_vals, 1);
  if (pg != NULL)
    PQsetNoticeReceiver(pg, on_notice, c);
  if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
    unreachable_err(c, pg, err);
    PQfinish(pg);
    return NULL;
  }
  if (spg_session_setup(c, pg, err) != 0) {
    PQfinish(pg);
    return NULL;
  }
  note_reachable(c);
  return pg;
}

/* An idle connection whose server went away has its socket readable:
 * read what is there, and let libpq notice the end of the connection. */
static bool looks_dead(PGconn *pg) {
  for (int i = 0; i < 4; i++) {
    if (PQstatus(pg) != CONNECTION_OK)
      return true;
    struct pollfd p = {.fd = PQsocket(pg), .events = POLLIN};
    if (p.fd < 0)
      return true;
    int r = poll(&p, 1, 0);
    if (r == 0 || (r < 0 && errno == EINTR))
      return false;
    if (r < 0 || (p.revents & POLLNVAL))
      return true;
    if (!PQconsumeInput(pg))
      return true;
    PGnotify *n;
    while ((n = PQnotifies(pg)) != NULL)
      PQfreemem(n);
  }
  return PQstatus(pg) != CONNECTION_OK;
}

static int make_ready(spg_ctx_t *c, atr_db_conn_t *s, char **err) {
  if (s->pg == NULL) {
    s->pg = spg_connect(c, err);
    s->broken = false;
    return s->pg ? 0 : ATR_EUNAVAIL;
  }
  if (!s->broken && !looks_dead(s->pg))
    return 0;
  PQreset(s->pg);
  if (PQstatus(s->pg) != CONNECTION_OK) {
    s->broken = true;
    unreachable_err(c, s->pg, err);
    return ATR_EUNAVAIL;
  }
  int rc = spg_session_setup(c, s->pg, err);
  s->broken = rc != 0;
  if (rc == 0)
    note_reachable(c);
  return rc;
}

static struct timespec deadline_after(int64_t ms) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  t.tv_sec += (time_t)(ms / 1000);
  t.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

/* A free slot, connected ones first; NULL when none came free in time. */
static atr_db_conn_t *take_slot(spg_ctx_t *c) {
  struct timespec deadline = deadline_after(c->acquire_timeout_ms);
  atr_db_conn_t *found = NULL;
  pthread_mutex_lock(&c->pool_lock);
  for (;;) {
    for (size_t i = 0; i < c->nslots; i++) {
      atr_db_conn_t *s = &c->slots[i];
      if (s->in_use)
        continue;
      if (found == NULL || (found->pg == NULL && s->pg != NULL))
        found = s;
      if (s->pg != NULL)
        break;
    }
    if (found != NULL)
      break;
    int rc = pthread_cond_timedwait(&c->pool_freed, &c->pool_lock, &deadline);
    if (rc == ETIMEDOUT)
      break;
  }
  if (found != NULL)
    found->in_use = true;
  pthread_mutex_unlock(&c->pool_lock);
  return found;
}

static void release_slot(spg_ctx_t *c, atr_db_conn_t *s) {
  pthread_mutex_lock(&c->pool_lock);
  s->in_use = false;
  pthread_cond_signal(&c->pool_freed);
  pthread_mutex_unlock(&c->pool_lock);
}

int spg_get(void *ctx, atr_db_conn_t **out, char **err) {
  spg_ctx_t *c = ctx;
  *out = NULL;
  atr_db_conn_t *s = take_slot(c);
  if (s == NULL) {
    spg_set_err(err,
                "no free database connection within %lld ms (all %zu in "
                "use); raise pool_size or acquire_timeout",
                (long long)c->acquire_timeout_ms, c->nslots);
    return ATR_EBUSY;
  }
  int rc = make_ready(c, s, err);
  if (rc != 0) {
    release_slot(c, s);
    return rc;
  }
  *out = s;
  return 0;
}

void spg_put(void *ctx, atr_db_conn_t *conn) {
  spg_ctx_t *c = ctx;
  if (conn == NULL)
    return;
  if (conn->pg != NULL && PQstatus(conn->pg) == CONNECTION_OK) {
    /* Never hand the next user an open transaction. */
    PGTransactionStatusType ts = PQtransactionStatus(conn->pg);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
      PQclear(PQexec(conn->pg, "ROLLBACK"));
    else if (ts != PQTRANS_IDLE)
      conn->broken = true;
  }
  release_slot(c, conn);
}

int spg_pool_init(spg_ctx_t *c, char **err) {
  int rc = parse_dsn(c, err);
  if (rc != 0)
    goto fail;
  conn_params(c);
  atomic_init(&c->reachable, true);
  c->nslots = (size_t)c->pool_size;
  c->slots = calloc(c->nslots, sizeof *c->slots);
  if (c->slots == NULL) {
    spg_set_err(err, "out of memory");
    rc = ATR_ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < c->nslots; i++)
    c->slots[i].ctx = c;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int prc = pthread_cond_init(&c->pool_freed, &attr);
  pthread_condattr_destroy(&attr);
  if (prc != 0 || pthread_mutex_init(&c->pool_lock, NULL) != 0) {
    if (prc == 0)
      pthread_cond_destroy(&c->pool_freed);
    spg_set_err(err, "cannot create the pool's lock");
    rc = ATR_ENOMEM;
    goto fail;
  }
  return 0;

fail:
  free(c->slots);
  free(c->where);
  free(c->password);
  c->slots = NULL;
  c->where = c->password = NULL;
  return rc;
}

void spg_pool_fini(spg_ctx_t *c) {
  for (size_t i = 0; i < c->nslots; i++)
    PQfinish(c->slots[i].pg);
  free(c->slots);
  c->slots = NULL;
  c->nslots = 0;
  pthread_cond_destroy(&c->pool_freed);
  pthread_mutex_destroy(&c->pool_lock);
}
