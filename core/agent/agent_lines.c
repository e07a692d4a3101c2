/* core/agent/agent_lines.c — line splitting (agent_lines.h). */
#include "agent_lines.h"

#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

static void emit(agent_lines_t *l, agent_line_fn fn, void *ud) {
  size_t n = l->len;
  if (n > 0 && l->buf[n - 1] == '\r')
    n--;
  fn(ud, l->buf, n);
  l->len = 0;
}

int agent_lines_feed(agent_lines_t *l, const char *data, size_t n,
                     agent_line_fn fn, void *ud) {
  if (n > 0 && !l->buf) {
    l->buf = malloc(AGENT_LINE_MAX);
    if (!l->buf)
      return ATR_ENOMEM;
  }
  while (n > 0) {
    const char *nl = memchr(data, '\n', n);
    size_t take = nl ? (size_t)(nl - data) : n;
    size_t room = AGENT_LINE_MAX - l->len;
    if (take > room)
      take = room;
    memcpy(l->buf + l->len, data, take);
    l->len += take;
    data += take;
    n -= take;
    if (n > 0 && *data == '\n') {
      emit(l, fn, ud);
      data++;
      n--;
    } else if (l->len == AGENT_LINE_MAX) {
      emit(l, fn, ud);
    }
  }
  return 0;
}

void agent_lines_flush(agent_lines_t *l, agent_line_fn fn, void *ud) {
  if (l->len > 0)
    emit(l, fn, ud);
}

void agent_lines_free(agent_lines_t *l) {
  free(l->buf);
  l->buf = NULL;
  l->len = 0;
}
