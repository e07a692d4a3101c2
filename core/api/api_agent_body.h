/* core/api/api_agent_body.h — the bounds and shapes of what a workspace
 * agent sends (api_agent_me.c): each check adds a validation
 * {"field", "detail"} to v for every field that is missing, of the wrong
 * type or out of bounds, naming it as a path ("logs[3].seq"), so a
 * handler calls the domain only with a body that passed. The domain still
 * enforces its own rules (cut values, lifecycle order).
 *
 * Threads: any; pure functions of their arguments.
 */
#ifndef ATRIUM_CORE_API_AGENT_BODY_H
#define ATRIUM_CORE_API_AGENT_BODY_H

#include <jansson.h>
#include <stdint.h>

#include "agents.h"

/* What one request may carry. An agent is not a signed-in user, so
 * atr_api_body() holds its bodies to 1,000 JSON values before these run:
 * every limit here keeps a legitimate body below that (100 lines of 5
 * values, 128 metadata items of 6, 64 ports of 4). */
#define ATR_AGENT_MAX_LOG_LINES 100    /* per PATCH /me/logs */
#define ATR_AGENT_MAX_LOG_OUTPUT 65536 /* bytes of one line */
#define ATR_AGENT_MAX_METADATA 128
#define ATR_AGENT_MAX_APPS 64
#define ATR_AGENT_MAX_PORTS 64
#define ATR_AGENT_MAX_SUBSYSTEMS 8

/* RFC 3339 ("2026-12-07T21:51:50.123456Z", "...+02:00") to microseconds
 * since the epoch; 0, or -1 when it is no such time. */
int atr__agent_parse_time(const char *s, int64_t *us);

void atr__agent_check_startup(const json_t *body, json_t *v);
void atr__agent_check_lifecycle(const json_t *body, json_t *v);
void atr__agent_check_logs(const json_t *body, json_t *v);
void atr__agent_check_metadata(const json_t *body, json_t *v);
void atr__agent_check_stats(const json_t *body, json_t *v);
void atr__agent_check_app_health(const json_t *body, json_t *v);
void atr__agent_check_ports(const json_t *body, json_t *v);

/* The lines of a checked "logs" array into lines (as many as the array
 * holds); the strings are borrowed from logs. */
void atr__agent_log_lines(const json_t *logs, atr_agent_log_line_t *lines);

#endif
