/* observer_prometheus/internal.h — what the plugin's files share.
 *
 * plugin.c owns the context, the options and the civetweb listener;
 * exposition.c turns the host's registry (host->metrics_collect), the plugin
 * list (host->plugins_each) and process.c's /proc/self readings into the
 * Prometheus text format 0.0.4; buf.c is the growing buffer they write to.
 *
 * Threads: init() and fini() run on the main thread; a scrape runs on one of
 * civetweb's worker threads, several at once. A scrape reads the context
 * only (the options and the host pointers, fixed after init()) and builds
 * its answer in a buffer of its own, so scrapes share nothing.
 */
#ifndef OBSERVER_PROMETHEUS_INTERNAL_H
#define OBSERVER_PROMETHEUS_INTERNAL_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "atrium/observer.h"

/* The content type of text format 0.0.4, which every Prometheus reads. */
#define OP_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct mg_context;

typedef struct op_ctx {
  const char *listen_address; /* option */
  const char *path;           /* option */
  atr_handle_t *h;
  const atr_host_t *host;
  struct mg_context *mg;
  bool library_held; /* mg_init_library() was called; exit it in fini() */
  /* Where fini() connects to wake civetweb's accept loop while it stops. */
  struct sockaddr_storage wake_addr;
  socklen_t wake_len;
  atomic_bool stopped; /* set by the thread running mg_stop() */
} op_ctx_t;

/* A growing, NUL-terminated byte buffer. Appends after a failed allocation
 * are dropped and `failed` stays set, so a writer checks once at the end. */
typedef struct op_buf {
  char *data;
  size_t len;
  size_t cap;
  bool failed;
} op_buf_t;

void op_buf_put(op_buf_t *b, const char *s, size_t n);
void op_buf_puts(op_buf_t *b, const char *s);
void op_buf_printf(op_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void op_buf_free(op_buf_t *b);

/* A sample value as the text format writes it: "+Inf", "-Inf", "NaN", or
 * the shortest decimal that reads back as the same double. */
void op_format_double(double v, char out[32]);

/* The whole exposition: every family in the host's registry, the plugin
 * list as atrium_plugin_info, then the process_* families (each of the
 * plugin's own families only when the registry has none of that name). */
void op_render(const op_ctx_t *c, op_buf_t *out);

/* The standard process_* families, read from /proc/self now. A family
 * whose source cannot be read is left out. `skip(name)` true leaves a
 * family out too (the registry already has one of that name). */
void op_process_render(op_buf_t *out, bool (*skip)(void *ud, const char *name),
                       void *ud);

/* Helpers exposition.c and process.c share: "# HELP" and "# TYPE" lines. */
void op_write_header(op_buf_t *out, const char *name, const char *help,
                     const char *type);

#endif
