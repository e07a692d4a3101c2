/* core/plugin/observe.c — the list of running observers and the dispatch of
 * events to them; see observe.h. */
#include "observe.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/observer.h"

/* Guards observers/nobservers; readers are the emitting threads. */
static pthread_rwlock_t observers_lock = PTHREAD_RWLOCK_INITIALIZER;
static atr_handle_t **observers;
static size_t nobservers;

static const atr_observer_ops_t *observer_ops(const atr_handle_t *h) {
  if (h->desc->kind != ATR_KIND_OBSERVER)
    return NULL;
  const atr_observer_ops_t *ops = h->desc->ops;
  /* The loader checked ATR_OBSERVER_OPS_MIN_SIZE, which covers on_event. */
  return ops->on_event != NULL ? ops : NULL;
}

int atr__observe_add(atr_handle_t *h) {
  if (observer_ops(h) == NULL)
    return 0;
  pthread_rwlock_wrlock(&observers_lock);
  atr_handle_t **grown = realloc(observers, (nobservers + 1) * sizeof(*grown));
  if (grown != NULL) {
    observers = grown;
    observers[nobservers++] = h;
  }
  pthread_rwlock_unlock(&observers_lock);
  return grown != NULL ? 0 : ATR_ENOMEM;
}

void atr__observe_remove(const atr_handle_t *h) {
  pthread_rwlock_wrlock(&observers_lock);
  for (size_t i = 0; i < nobservers; i++) {
    if (observers[i] == h) { /* keep the rest in load order */
      memmove(&observers[i], &observers[i + 1],
              (nobservers - i - 1) * sizeof(*observers));
      nobservers--;
      break;
    }
  }
  if (nobservers == 0) {
    free(observers);
    observers = NULL;
  }
  pthread_rwlock_unlock(&observers_lock);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void atr_observe_emit(const char *type, json_t *fields) {
  if (fields == NULL)
    return;
  pthread_rwlock_rdlock(&observers_lock);
  char *json = nobservers > 0 ? json_dumps(fields, JSON_COMPACT) : NULL;
  atr_event_t ev = {.struct_size = sizeof(ev),
                    .type = type,
                    .time_ms = now_ms(),
                    .json = json};
  for (size_t i = 0; json != NULL && i < nobservers; i++) {
    const atr_handle_t *h = observers[i];
    observer_ops(h)->on_event(h->ctx, &ev);
  }
  pthread_rwlock_unlock(&observers_lock);
  free(json);
  json_decref(fields);
}
