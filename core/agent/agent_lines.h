/* core/agent/agent_lines.h — a script's output split into lines.
 *
 * Bytes arrive in any chunks; each complete line (without its "\n", a
 * trailing "\r" dropped) is handed to a callback. A line longer than
 * AGENT_LINE_MAX is cut into pieces of that size, so a script that never
 * writes a newline cannot grow the agent's memory.
 *
 * Threads: no shared state; the caller owns the splitter.
 */
#ifndef ATRIUM_AGENT_LINES_H
#define ATRIUM_AGENT_LINES_H

#include <stddef.h>

#define AGENT_LINE_MAX 65536

typedef void (*agent_line_fn)(void *ud, const char *line, size_t len);

typedef struct agent_lines {
  char *buf; /* AGENT_LINE_MAX bytes once anything arrived; owned */
  size_t len;
} agent_lines_t;

/* Split data; fn runs for every line completed. 0 or ATR_ENOMEM. */
int agent_lines_feed(agent_lines_t *l, const char *data, size_t n,
                     agent_line_fn fn, void *ud);
/* End of input: hand over what is left, if anything. */
void agent_lines_flush(agent_lines_t *l, agent_line_fn fn, void *ud);
void agent_lines_free(agent_lines_t *l);

#endif
