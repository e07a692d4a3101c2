/* core/api/api_follow.c — see api_follow.h. */
#include "api_follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "http_exchange.h"

#define KEEPALIVE_MS 15000
/* Pages one step sends before letting other streams have the pump. */
#define FOLLOW_PAGES_PER_STEP 4

typedef struct follow {
  atr_api_follow_src_t src;
  int64_t after;
  int64_t last_write;
} follow_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void atr_api_follow_page_clear(atr_api_follow_page_t *page) {
  json_decref(page->lines);
  json_decref(page->end);
  page->lines = page->end = NULL;
}

static int send_event(atr_http_exchange_t *x, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  char *frame = NULL;
  int n = text ? asprintf(&frame, "event: %s\ndata: %s\n\n", event, text) : -1;
  free(text);
  if (n < 0)
    return ATR_ENOMEM;
  int rc = atr__http_stream_write(x, frame, (size_t)n);
  free(frame);
  return rc;
}

/* Send a page's lines and, when it is the last of a source that writes
 * no more, the end event: DONE when the stream is over (that, or the
 * client went), AGAIN when a full page says more lines wait, else WAIT.
 * Clears the page. */
static int send_page(atr_http_exchange_t *x, follow_t *f,
                     atr_api_follow_page_t *page) {
  int rc = 0;
  size_t i;
  json_t *line;
  json_array_foreach(page->lines, i, line) {
    if (rc == 0)
      rc = send_event(x, "log", line);
    f->after = json_integer_value(json_object_get(line, "id"));
    f->last_write = now_ms();
  }
  bool more = json_array_size(page->lines) == f->src.page_max;
  bool final = page->final;
  if (rc == 0 && !more && final)
    send_event(x, "end", page->end);
  atr_api_follow_page_clear(page);
  if (rc != 0 || (!more && final))
    return ATR_HTTP_STEP_DONE;
  return more ? ATR_HTTP_STEP_AGAIN : ATR_HTTP_STEP_WAIT;
}

static int follow_step(atr_http_exchange_t *x, void *ud) {
  follow_t *f = ud;
  int state = ATR_HTTP_STEP_AGAIN;
  for (int i = 0; i < FOLLOW_PAGES_PER_STEP && state == ATR_HTTP_STEP_AGAIN;
       i++) {
    if (!atr__http_stream_writable(x))
      return ATR_HTTP_STEP_WAIT; /* woken again once the client has read */
    atr_api_follow_page_t page = {0};
    if (f->src.read(f->src.ud, f->after, &page) != 0) {
      atr_api_follow_page_clear(&page);
      return ATR_HTTP_STEP_DONE;
    }
    state = send_page(x, f, &page);
  }
  if (state == ATR_HTTP_STEP_WAIT && now_ms() - f->last_write >= KEEPALIVE_MS) {
    if (atr__http_stream_write(x, ": keepalive\n\n", 13) != 0)
      return ATR_HTTP_STEP_DONE;
    f->last_write = now_ms();
  }
  if (state == ATR_HTTP_STEP_WAIT && f->src.end_on_drain &&
      atr__http_draining(x))
    return ATR_HTTP_STEP_DONE;
  return state;
}

static void follow_free(void *ud) {
  follow_t *f = ud;
  if (f->src.free_fn)
    f->src.free_fn(f->src.ud);
  free(f);
}

int atr_api_follow(atr_api_req_t *r, int64_t after,
                   atr_api_follow_page_t *first,
                   const atr_api_follow_src_t *src) {
  if (atr_api_stream_begin(r, "text/event-stream") != 0) {
    atr_api_follow_page_clear(first);
    if (src->free_fn)
      src->free_fn(src->ud);
    return atr_api_error(r, 500, "Internal error.", "cannot stream");
  }
  follow_t *f = calloc(1, sizeof *f);
  if (!f) {
    atr_api_follow_page_clear(first);
    if (src->free_fn)
      src->free_fn(src->ud);
    return 0; /* the stream closes with what was sent */
  }
  *f = (follow_t){.src = *src, .after = after, .last_write = now_ms()};
  /* The first page was read before the stream began; the first step
   * reads again at once, so a line written in between waits for no
   * event. */
  if (send_page(r->x, f, first) == ATR_HTTP_STEP_DONE ||
      atr_api_stream_detach(r, follow_step, follow_free, f, src->poll_ms) != 0)
    follow_free(f);
  return 0;
}
