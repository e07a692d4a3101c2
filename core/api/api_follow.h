/* core/api/api_follow.h — a followed log as a server-sent events stream,
 * one implementation for a build's log (api_jobs.c) and a workspace
 * agent's (api_agents.c).
 *
 * The stream is detached (http_exchange.h): the request's worker returns
 * at once, and the server's pump steps the follower when woken, when the
 * client drained its output, and at least every poll_ms. Each step reads
 * pages with src->read and sends every line as a `log` event; the page
 * that says the source writes no more (final) and holds no more lines
 * ends the stream with an `end` event. A keepalive comment goes out when
 * nothing was written for 15 s.
 *
 * Ownership: atr_api_follow takes first's lines and end, and src->ud
 * (src->free_fn(src->ud) runs once, on every path). Threads: read runs on
 * the pump's thread, never two at once for one stream. */
#ifndef ATRIUM_CORE_API_FOLLOW_H
#define ATRIUM_CORE_API_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

typedef struct atr_api_follow_page {
  json_t *lines; /* owned; each line has its integer "id" */
  bool final;    /* the source writes no more lines */
  json_t *end;   /* owned; the end event's data, read when final */
} atr_api_follow_page_t;

/* Read the lines after line `after` (at most page_max) into *page: 0, or
 * negative when the stream should end (the database went, or access). */
typedef int (*atr_api_follow_read_fn)(void *ud, int64_t after,
                                      atr_api_follow_page_t *page);

typedef struct atr_api_follow_src {
  atr_api_follow_read_fn read;
  void (*free_fn)(void *ud);
  void *ud;
  size_t page_max;   /* a page this full says more lines wait */
  int64_t poll_ms;   /* the longest a step waits for a wake */
  bool end_on_drain; /* end the stream, when it waits, once the server drains */
} atr_api_follow_src_t;

/* Begin the stream, send first (read before it began) and hand the
 * follower to the server. Answers 500 when the stream cannot begin;
 * returns as a handler does. */
int atr_api_follow(atr_api_req_t *r, int64_t after,
                   atr_api_follow_page_t *first,
                   const atr_api_follow_src_t *src);

/* Release a page's lines and end. */
void atr_api_follow_page_clear(atr_api_follow_page_t *page);

#endif
