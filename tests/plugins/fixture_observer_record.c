/* fixture_observer_record — an observer that writes down every event it is
 * given, one line each: "<type> <json>", appended to the file its `file`
 * option names. tests/plugins/observer_events.sh loads it into a real
 * server and reads the file.
 *
 * Threads: on_event runs on whichever thread had the event (HTTP workers,
 * provisioner daemons); lines are appended under write_lock so they never
 * interleave.
 */
#include <atrium/atrium.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct record_ctx {
  const char *file; /* filled by the host */
  pthread_mutex_t write_lock;
} record_ctx_t;

static const atr_option_t record_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "output",
     .flags = ATR_OPT_REQUIRED,
     .offset = offsetof(record_ctx_t, file),
     .description = "File the events are appended to."},
    ATR_OPTIONS_END,
};

static void record_event(void *ctx, const atr_event_t *ev) {
  record_ctx_t *c = ctx;
  pthread_mutex_lock(&c->write_lock);
  FILE *f = fopen(c->file, "a");
  if (f != NULL) {
    fprintf(f, "%s %s\n", ev->type ? ev->type : "(none)",
            ev->json ? ev->json : "{}");
    fclose(f);
  }
  pthread_mutex_unlock(&c->write_lock);
}

static int record_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                       char **err) {
  (void)h;
  (void)host;
  (void)err;
  record_ctx_t *c = ctx;
  return pthread_mutex_init(&c->write_lock, NULL) == 0 ? 0 : ATR_ENOMEM;
}

static void record_fini(void *ctx) {
  record_ctx_t *c = ctx;
  pthread_mutex_destroy(&c->write_lock);
}

static const atr_observer_ops_t record_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
    .on_event = record_event,
};

static const atr_plugin_t record_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_OBSERVER,
    .name = "observer_record",
    .version = "1.0.0",
    .description = "Test fixture: appends every event to a file.",
    .options = record_options,
    .ctx_size = sizeof(record_ctx_t),
    .init = record_init,
    .fini = record_fini,
    .ops = &record_ops,
    .option_size = sizeof(atr_option_t),
};

ATR_PLUGIN_DEFINE(record_plugin)
