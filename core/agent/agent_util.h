/* core/agent/agent_util.h — small helpers the agent's modules share:
 * clocks, timestamps, UTF-8 repair, durations from the environment and
 * from the manifest, the user's shell, formatted strings.
 *
 * Threads: pure (agent_env_ms reads the environment).
 */
#ifndef ATRIUM_AGENT_UTIL_H
#define ATRIUM_AGENT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Wall clock in microseconds since the epoch. */
int64_t agent_now_us(void);
/* RFC 3339 in UTC with microseconds: "2026-12-07T21:51:50.123456Z"; buf
 * holds at least 32 bytes. */
void agent_time_format(int64_t us, char *buf, size_t size);
/* A copy of s where every byte that is not part of valid UTF-8, and NUL,
 * became U+FFFD, so it can go into a JSON string; *out_len its length.
 * NULL when out of memory. */
char *agent_utf8_repair(const char *s, size_t len, size_t *out_len);
/* A duration from the environment variable name: "250ms", "2s", "1m" or
 * plain milliseconds; def when unset or not understood. */
int64_t agent_env_ms(const char *name, int64_t def);
/* Whole seconds from o's number k1 (Coder's manifest: "interval") or,
 * when that is no number, k2 (ours: "interval_s"); 0 when neither is. */
int64_t agent_json_seconds(const json_t *o, const char *k1, const char *k2);
/* The shell a user's session runs (malloc'd): cfg_shell when it is an
 * absolute path, else the agent user's login shell when it can run and is
 * no nologin or false, else /bin/sh. Shared by SSH sessions and terminals. */
char *agent_user_shell(const char *cfg_shell);
/* A newly allocated string formatted like printf (messages and paths the
 * SSH server and its key code build); NULL when out of memory. */
char *agent_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
