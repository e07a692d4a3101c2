/* pubsub.c — publish/subscribe over LISTEN/NOTIFY.
 *
 * publish() runs SELECT pg_notify(channel, payload) on a pooled connection,
 * so the message reaches every process listening on the database, this one
 * included. Subscriptions share one dedicated connection, created with its
 * thread on the first subscribe(): the thread waits in poll() on that
 * connection's socket and a self-pipe, reads notifications and calls the
 * subscribers of their channel. A channel is LISTENed while it has at least
 * one subscriber.
 *
 * When the connection breaks, the thread reconnects with a backoff (100 ms,
 * doubling, at most 5 s), LISTENs every channel again and then calls every
 * subscriber once with ATR_DB_SUB_MISSED. A subscribe() while the database
 * is unreachable succeeds; that subscriber learns of the gap the same way.
 *
 * Locks, always taken in this order and never held into a callback except
 * dispatch_lock:
 *   dispatch_lock  held while callbacks run; unsubscribe() takes it once to
 *                  wait for a running callback to finish
 *   conn_lock      the connection and `up`; held briefly (LISTEN, reading)
 *   subs_lock      the subscriber list
 * Threads: publish/subscribe/unsubscribe from any thread; callbacks on the
 * listener thread. Memory: a subscription is freed by unsubscribe() (or
 * fini); channel and payload passed to a callback are borrowed for the call.
 */
#include "storage_postgres.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define PAYLOAD_MAX 7999

struct atr_db_sub {
  char channel[64];
  atr_db_sub_fn fn;
  void *user_data;
  atomic_bool removed;
  struct atr_db_sub *next; /* subs_lock */
};

struct spg_listener {
  spg_ctx_t *ctx;
  pthread_t thread;
  int wake[2]; /* self-pipe: a byte wakes the thread */
  atomic_bool stopping;
  pthread_mutex_t dispatch_lock;
  pthread_mutex_t conn_lock; /* protects pg, up */
  PGconn *pg;
  bool up;
  pthread_mutex_t subs_lock; /* protects subs, zombies */
  atr_db_sub_t *subs;
  atr_db_sub_t *zombies; /* unsubscribed inside a callback; freed at fini */
};

static bool valid_channel(const char *ch) {
  size_t n = ch ? strlen(ch) : 0;
  if (n < 1 || n > 63)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((ch[i] >= 'a' && ch[i] <= 'z') || (ch[i] >= '0' && ch[i] <= '9') ||
          ch[i] == '_'))
      return false;
  return true;
}

static void wake(spg_listener_t *l) {
  ssize_t n = write(l->wake[1], "w", 1);
  (void)n; /* a full pipe wakes the thread just as well */
}

static void drain_wake(spg_listener_t *l) {
  char buf[64];
  while (read(l->wake[0], buf, sizeof buf) > 0)
    ;
}

/* Wait up to ms for a wake-up byte. */
static void wait_wake(spg_listener_t *l, int ms) {
  struct pollfd p = {.fd = l->wake[0], .events = POLLIN};
  if (poll(&p, 1, ms) > 0)
    drain_wake(l);
}

/* "LISTEN" or "UNLISTEN" a channel; 0 or -1 (see PQstatus for why). */
static int listen_cmd(PGconn *pg, const char *verb, const char *channel) {
  char *id = PQescapeIdentifier(pg, channel, strlen(channel));
  if (id == NULL)
    return -1;
  size_t n = strlen(verb) + strlen(id) + 2;
  char *sql = malloc(n);
  int rc = -1;
  if (sql != NULL) {
    snprintf(sql, n, "%s %s", verb, id);
    PGresult *res = PQexec(pg, sql);
    rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);
  }
  free(sql);
  PQfreemem(id);
  return rc;
}

/* subs_lock held. */
static bool has_subscribers(const spg_listener_t *l, const char *channel) {
  for (const atr_db_sub_t *s = l->subs; s != NULL; s = s->next)
    if (strcmp(s->channel, channel) == 0)
      return true;
  return false;
}

/* Subscribers of `channel` (every one when NULL), a malloc'd array. */
static atr_db_sub_t **snapshot(spg_listener_t *l, const char *channel,
                               size_t *n) {
  pthread_mutex_lock(&l->subs_lock);
  size_t count = 0;
  for (atr_db_sub_t *s = l->subs; s != NULL; s = s->next)
    count++;
  atr_db_sub_t **v = count ? malloc(count * sizeof *v) : NULL;
  *n = 0;
  for (atr_db_sub_t *s = l->subs; v != NULL && s != NULL; s = s->next)
    if (channel == NULL || strcmp(s->channel, channel) == 0)
      v[(*n)++] = s;
  pthread_mutex_unlock(&l->subs_lock);
  return v;
}

/* Call the subscribers. A subscription in the snapshot stays allocated
 * while dispatch_lock is held; one removed meanwhile is skipped. */
static void deliver(spg_listener_t *l, const char *channel, const char *payload,
                    unsigned flags) {
  size_t n = 0;
  atr_db_sub_t **v = snapshot(l, flags ? NULL : channel, &n);
  for (size_t i = 0; i < n; i++)
    if (!atomic_load(&v[i]->removed))
      v[i]->fn(v[i]->user_data, flags ? v[i]->channel : channel, payload,
               flags);
  free(v);
}

/* Read what the server sent; false when the connection is gone. The
 * notifications are appended to *notes (malloc'd, *nnotes long). */
static bool read_input(spg_listener_t *l, PGnotify ***notes, size_t *nnotes) {
  pthread_mutex_lock(&l->conn_lock);
  bool ok = l->up && PQconsumeInput(l->pg) && PQstatus(l->pg) == CONNECTION_OK;
  PGnotify *n;
  while (l->pg != NULL && (n = PQnotifies(l->pg)) != NULL) {
    PGnotify **grown = realloc(*notes, (*nnotes + 1) * sizeof **notes);
    if (grown == NULL) {
      PQfreemem(n);
      break;
    }
    *notes = grown;
    (*notes)[(*nnotes)++] = n;
  }
  char *why = NULL;
  if (!ok && l->up) {
    l->up = false;
    why = spg_conn_message(l->ctx, l->pg);
  }
  pthread_mutex_unlock(&l->conn_lock);
  if (why != NULL) {
    l->ctx->host->log(l->ctx->h, ATR_LOG_WARN,
                      "pub/sub: lost the LISTEN connection to %s (%s); "
                      "reconnecting",
                      l->ctx->where, why);
    free(why);
  }
  return ok;
}

/* A new connection that LISTENs to every channel with subscribers. */
static bool reconnect(spg_listener_t *l) {
  PGconn *pg = spg_connect(l->ctx, NULL);
  if (pg == NULL)
    return false;
  pthread_mutex_lock(&l->conn_lock);
  bool ok = true;
  pthread_mutex_lock(&l->subs_lock);
  for (atr_db_sub_t *s = l->subs; ok && s != NULL; s = s->next) {
    bool seen = false;
    for (atr_db_sub_t *t = l->subs; t != s && !seen; t = t->next)
      seen = strcmp(t->channel, s->channel) == 0;
    if (!seen)
      ok = listen_cmd(pg, "LISTEN", s->channel) == 0;
  }
  pthread_mutex_unlock(&l->subs_lock);
  if (ok) {
    PQfinish(l->pg);
    l->pg = pg;
    l->up = true;
  }
  pthread_mutex_unlock(&l->conn_lock);
  if (!ok)
    PQfinish(pg);
  return ok;
}

static void *listener_main(void *arg) {
  spg_listener_t *l = arg;
  int backoff = 0;
  while (!atomic_load(&l->stopping)) {
    pthread_mutex_lock(&l->conn_lock);
    int fd = l->up ? PQsocket(l->pg) : -1;
    pthread_mutex_unlock(&l->conn_lock);
    if (fd < 0) {
      if (backoff > 0)
        wait_wake(l, backoff);
      if (atomic_load(&l->stopping))
        break;
      if (reconnect(l)) {
        backoff = 0;
        l->ctx->host->log(l->ctx->h, ATR_LOG_INFO,
                          "pub/sub: listening on %s again; subscribers are "
                          "told they may have missed messages",
                          l->ctx->where);
        pthread_mutex_lock(&l->dispatch_lock);
        deliver(l, NULL, NULL, ATR_DB_SUB_MISSED);
        pthread_mutex_unlock(&l->dispatch_lock);
      } else {
        backoff = backoff == 0                   ? BACKOFF_MIN_MS
                  : backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                 : backoff * 2;
      }
      continue;
    }
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = l->wake[0], .events = POLLIN}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      wait_wake(l, BACKOFF_MIN_MS); /* should not happen; do not spin */
    if (p[1].revents)
      drain_wake(l);
    PGnotify **notes = NULL;
    size_t n = 0;
    read_input(l, &notes, &n);
    if (n > 0) {
      pthread_mutex_lock(&l->dispatch_lock);
      for (size_t i = 0; i < n; i++)
        deliver(l, notes[i]->relname, notes[i]->extra, 0);
      pthread_mutex_unlock(&l->dispatch_lock);
    }
    for (size_t i = 0; i < n; i++)
      PQfreemem(notes[i]);
    free(notes);
  }
  return NULL;
}

static void listener_free(spg_listener_t *l) {
  for (atr_db_sub_t *s = l->subs, *next; s != NULL; s = next) {
    next = s->next;
    free(s);
  }
  for (atr_db_sub_t *s = l->zombies, *next; s != NULL; s = next) {
    next = s->next;
    free(s);
  }
  PQfinish(l->pg);
  if (l->wake[0] >= 0)
    close(l->wake[0]);
  if (l->wake[1] >= 0)
    close(l->wake[1]);
  pthread_mutex_destroy(&l->dispatch_lock);
  pthread_mutex_destroy(&l->conn_lock);
  pthread_mutex_destroy(&l->subs_lock);
  free(l);
}

/* The listener, created with its connection and thread on first use. */
static spg_listener_t *listener_get(spg_ctx_t *c, char **err) {
  pthread_mutex_lock(&c->listener_lock);
  spg_listener_t *l = c->listener;
  if (l != NULL) {
    pthread_mutex_unlock(&c->listener_lock);
    return l;
  }
  l = calloc(1, sizeof *l);
  if (l == NULL || pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    free(l);
    pthread_mutex_unlock(&c->listener_lock);
    spg_set_err(err, "cannot set up pub/sub: %s", strerror(errno));
    return NULL;
  }
  l->ctx = c;
  atomic_init(&l->stopping, false);
  pthread_mutex_init(&l->dispatch_lock, NULL);
  pthread_mutex_init(&l->conn_lock, NULL);
  pthread_mutex_init(&l->subs_lock, NULL);
  char *cerr = NULL;
  l->pg = spg_connect(c, &cerr);
  l->up = l->pg != NULL;
  if (!l->up)
    c->host->log(c->h, ATR_LOG_WARN, "pub/sub: %s; retrying in the background",
                 cerr ? cerr : "cannot connect");
  free(cerr);
  int rc = pthread_create(&l->thread, NULL, listener_main, l);
  if (rc != 0) {
    listener_free(l);
    pthread_mutex_unlock(&c->listener_lock);
    spg_set_err(err, "cannot start the pub/sub thread: %s", strerror(rc));
    return NULL;
  }
  c->listener = l;
  pthread_mutex_unlock(&c->listener_lock);
  return l;
}

int spg_subscribe(void *ctx, const char *channel, atr_db_sub_fn fn,
                  void *user_data, atr_db_sub_t **out, char **err) {
  spg_ctx_t *c = ctx;
  if (out != NULL)
    *out = NULL;
  if (!valid_channel(channel) || fn == NULL || out == NULL) {
    spg_set_err(err,
                "cannot subscribe to channel \"%s\": a channel is 1 to 63 "
                "of a-z, 0-9 and _, with a callback",
                channel ? channel : "(null)");
    return ATR_EINVAL;
  }
  spg_listener_t *l = listener_get(c, err);
  if (l == NULL)
    return ATR_ENOMEM;
  atr_db_sub_t *sub = calloc(1, sizeof *sub);
  if (sub == NULL) {
    spg_set_err(err, "out of memory");
    return ATR_ENOMEM;
  }
  snprintf(sub->channel, sizeof sub->channel, "%s", channel);
  sub->fn = fn;
  sub->user_data = user_data;
  atomic_init(&sub->removed, false);

  pthread_mutex_lock(&l->conn_lock);
  pthread_mutex_lock(&l->subs_lock);
  bool listening = has_subscribers(l, channel);
  pthread_mutex_unlock(&l->subs_lock);
  if (!listening && l->up && listen_cmd(l->pg, "LISTEN", channel) != 0) {
    if (PQstatus(l->pg) == CONNECTION_OK) {
      char *m = spg_conn_message(c, l->pg);
      pthread_mutex_unlock(&l->conn_lock);
      spg_set_err(err, "cannot LISTEN to channel %s: %s", channel,
                  m ? m : "out of memory");
      free(m);
      free(sub);
      return ATR_EIO;
    }
    l->up = false; /* the thread reconnects and LISTENs to it then */
  }
  pthread_mutex_lock(&l->subs_lock);
  sub->next = l->subs;
  l->subs = sub;
  pthread_mutex_unlock(&l->subs_lock);
  pthread_mutex_unlock(&l->conn_lock);
  wake(l); /* LISTEN's reply may have carried notifications for others */
  *out = sub;
  return 0;
}

void spg_unsubscribe(void *ctx, atr_db_sub_t *sub) {
  spg_ctx_t *c = ctx;
  if (sub == NULL)
    return;
  pthread_mutex_lock(&c->listener_lock);
  spg_listener_t *l = c->listener;
  pthread_mutex_unlock(&c->listener_lock);
  if (l == NULL)
    return;

  pthread_mutex_lock(&l->conn_lock);
  pthread_mutex_lock(&l->subs_lock);
  for (atr_db_sub_t **p = &l->subs; *p != NULL; p = &(*p)->next) {
    if (*p == sub) {
      *p = sub->next;
      break;
    }
  }
  atomic_store(&sub->removed, true);
  bool still = has_subscribers(l, sub->channel);
  pthread_mutex_unlock(&l->subs_lock);
  if (!still && l->up && listen_cmd(l->pg, "UNLISTEN", sub->channel) != 0 &&
      PQstatus(l->pg) != CONNECTION_OK)
    l->up = false;
  bool down = !l->up;
  pthread_mutex_unlock(&l->conn_lock);
  if (down)
    wake(l);

  if (pthread_equal(pthread_self(), l->thread)) {
    /* Called from a callback (the contract forbids it): the dispatch in
     * progress may still hold the pointer, so free it at fini. */
    pthread_mutex_lock(&l->subs_lock);
    sub->next = l->zombies;
    l->zombies = sub;
    pthread_mutex_unlock(&l->subs_lock);
    return;
  }
  /* Wait out a callback that is running now. */
  pthread_mutex_lock(&l->dispatch_lock);
  pthread_mutex_unlock(&l->dispatch_lock);
  free(sub);
}

int spg_publish(void *ctx, const char *channel, const char *payload,
                char **err) {
  if (!valid_channel(channel)) {
    spg_set_err(err,
                "cannot publish to channel \"%s\": a channel is 1 to 63 of "
                "a-z, 0-9 and _",
                channel ? channel : "(null)");
    return ATR_EINVAL;
  }
  size_t len = payload ? strlen(payload) : 0;
  if (len > PAYLOAD_MAX) {
    spg_set_err(err,
                "cannot publish %zu bytes to channel %s: a payload is at "
                "most %d bytes",
                len, channel, PAYLOAD_MAX);
    return ATR_EINVAL;
  }
  atr_db_conn_t *conn = NULL;
  int rc = spg_get(ctx, &conn, err);
  if (rc != 0)
    return rc;
  atr_value_t params[2] = {
      {.type = ATR_VAL_TEXT, .v.bytes = {channel, strlen(channel)}},
      {.type = ATR_VAL_TEXT, .v.bytes = {payload ? payload : "", len}},
  };
  rc = spg_exec(conn, "SELECT pg_notify(?, ?)", params, 2, NULL, err);
  spg_put(ctx, conn);
  return rc;
}

void spg_pubsub_fini(spg_ctx_t *c) {
  spg_listener_t *l = c->listener;
  if (l == NULL)
    return;
  atomic_store(&l->stopping, true);
  wake(l);
  pthread_join(l->thread, NULL);
  listener_free(l);
  c->listener = NULL;
}
