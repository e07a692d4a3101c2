/* storage_sqlite: publish/subscribe inside this process.
 *
 * A database file has no notification channel, and with SQLite there is one
 * server process, so messages never leave it: publish() copies the message
 * onto a queue and returns, and one dispatcher thread (started by init(),
 * joined by fini()) calls the subscribers of each message's channel, one
 * message after the other, in publish order. Nothing can be lost between
 * publish and delivery, so ATR_DB_SUB_MISSED is never sent. A subscription
 * sees every message whose delivery starts after subscribe() returned.
 *
 * unsubscribe() waits for a running callback of that subscription to
 * return, so afterwards the callback is neither running nor called again.
 * Calling it from inside a callback is not allowed (atrium/storage.h); this
 * implementation does not deadlock if it happens, but frees the
 * subscription only after the callback returned.
 *
 * Threads: publish, subscribe and unsubscribe from any thread. queue_lock
 * owns the message queue and `stopping`; subs_lock owns the subscription
 * list and `running`. Callbacks run on the dispatcher with no lock held, so
 * they may publish and subscribe.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool valid_channel(const char *channel) {
  size_t n = 0;
  for (; channel[n] != '\0'; n++) {
    char ch = channel[n];
    if (n >= SS_CHANNEL_MAX ||
        !((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
      return false;
  }
  return n > 0;
}

static int bad_channel(const char *channel, char **err) {
  return ss_failf(err, ATR_EINVAL,
                  "sqlite: channel \"%.80s\" is not valid; use 1 to %d "
                  "characters of a-z, 0-9 and _",
                  channel ? channel : "(null)", SS_CHANNEL_MAX);
}

int ss_publish(void *ctx, const char *channel, const char *payload,
               char **err) {
  ss_ctx_t *c = ctx;
  if (channel == NULL || !valid_channel(channel))
    return bad_channel(channel, err);
  if (payload == NULL)
    payload = "";
  size_t len = strlen(payload);
  if (len > SS_PAYLOAD_MAX)
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: the payload for channel %s is %zu bytes, more "
                    "than the %d allowed; publish an id and let subscribers "
                    "read the rest from the database",
                    channel, len, SS_PAYLOAD_MAX);
  ss_msg_t *m = malloc(sizeof *m + len + 1);
  if (m == NULL)
    return ss_failf(err, ATR_ENOMEM, "sqlite: out of memory for a message");
  m->next = NULL;
  snprintf(m->channel, sizeof m->channel, "%s", channel);
  memcpy(m->payload, payload, len + 1);
  pthread_mutex_lock(&c->queue_lock);
  if (c->queue_tail != NULL)
    c->queue_tail->next = m;
  else
    c->queue_head = m;
  c->queue_tail = m;
  pthread_cond_signal(&c->queue_cond);
  pthread_mutex_unlock(&c->queue_lock);
  return 0;
}

int ss_subscribe(void *ctx, const char *channel, atr_db_sub_fn fn,
                 void *user_data, atr_db_sub_t **out, char **err) {
  ss_ctx_t *c = ctx;
  if (out != NULL)
    *out = NULL;
  if (channel == NULL || !valid_channel(channel))
    return bad_channel(channel, err);
  if (fn == NULL || out == NULL)
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: subscribe needs a callback and *out");
  atr_db_sub_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return ss_failf(err, ATR_ENOMEM,
                    "sqlite: out of memory for a "
                    "subscription");
  snprintf(s->channel, sizeof s->channel, "%s", channel);
  s->fn = fn;
  s->user_data = user_data;
  pthread_mutex_lock(&c->subs_lock);
  s->id = ++c->next_sub_id;
  atr_db_sub_t **p = &c->subs;
  while (*p != NULL)
    p = &(*p)->next;
  *p = s;
  pthread_mutex_unlock(&c->subs_lock);
  *out = s;
  return 0;
}

void ss_unsubscribe(void *ctx, atr_db_sub_t *sub) {
  ss_ctx_t *c = ctx;
  if (c == NULL || sub == NULL)
    return;
  pthread_mutex_lock(&c->subs_lock);
  for (atr_db_sub_t **p = &c->subs; *p != NULL; p = &(*p)->next) {
    if (*p == sub) {
      *p = sub->next;
      break;
    }
  }
  if (c->running == sub &&
      pthread_equal(pthread_self(), c->dispatcher)) { /* from its callback */
    sub->free_after_call = true;
    pthread_mutex_unlock(&c->subs_lock);
    return;
  }
  while (c->running == sub)
    pthread_cond_wait(&c->subs_idle, &c->subs_lock);
  pthread_mutex_unlock(&c->subs_lock);
  free(sub);
}

/* Call every subscriber of m's channel. The list may change while a
 * callback runs, so each next subscriber is looked up again, by id. */
static void deliver(ss_ctx_t *c, const ss_msg_t *m) {
  uint64_t last = 0;
  pthread_mutex_lock(&c->subs_lock);
  for (;;) {
    atr_db_sub_t *s = c->subs;
    while (s != NULL && (s->id <= last || strcmp(s->channel, m->channel) != 0))
      s = s->next;
    if (s == NULL)
      break;
    last = s->id;
    c->running = s;
    pthread_mutex_unlock(&c->subs_lock);
    s->fn(s->user_data, m->channel, m->payload, 0);
    pthread_mutex_lock(&c->subs_lock);
    c->running = NULL;
    if (s->free_after_call)
      free(s);
    pthread_cond_broadcast(&c->subs_idle);
  }
  pthread_mutex_unlock(&c->subs_lock);
}

static void *dispatch_main(void *arg) {
  ss_ctx_t *c = arg;
  pthread_mutex_lock(&c->queue_lock);
  for (;;) {
    while (c->queue_head == NULL && !c->stopping)
      pthread_cond_wait(&c->queue_cond, &c->queue_lock);
    if (c->stopping)
      break;
    ss_msg_t *m = c->queue_head;
    c->queue_head = m->next;
    if (c->queue_head == NULL)
      c->queue_tail = NULL;
    pthread_mutex_unlock(&c->queue_lock);
    deliver(c, m);
    free(m);
    pthread_mutex_lock(&c->queue_lock);
  }
  pthread_mutex_unlock(&c->queue_lock);
  return NULL;
}

int ss_pubsub_init(ss_ctx_t *c, char **err) {
  int rc = pthread_create(&c->dispatcher, NULL, dispatch_main, c);
  if (rc != 0)
    return ss_failf(err, ATR_EIO,
                    "sqlite: cannot start the pub/sub dispatcher thread: %s",
                    strerror(rc));
  c->dispatcher_started = true;
  return 0;
}

void ss_pubsub_fini(ss_ctx_t *c) {
  if (c->dispatcher_started) {
    pthread_mutex_lock(&c->queue_lock);
    c->stopping = true;
    pthread_cond_signal(&c->queue_cond);
    pthread_mutex_unlock(&c->queue_lock);
    pthread_join(c->dispatcher, NULL);
    c->dispatcher_started = false;
  }
  /* Undelivered messages and subscriptions nobody removed go with us. */
  for (ss_msg_t *m = c->queue_head, *next; m != NULL; m = next) {
    next = m->next;
    free(m);
  }
  c->queue_head = c->queue_tail = NULL;
  size_t left = 0;
  for (atr_db_sub_t *s = c->subs, *next; s != NULL; s = next, left++) {
    next = s->next;
    free(s);
  }
  c->subs = NULL;
  if (left > 0)
    c->host->log(c->h, ATR_LOG_DEBUG,
                 "%zu subscription(s) were still active at shutdown", left);
}
