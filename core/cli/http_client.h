/* core/cli/http_client.h — a small HTTP+JSON client for the CLI commands
 * that talk to an atrium server's /api/v2 (login, users, tokens,
 * templates, workspaces); the session it signs in with is kept by
 * session_file.h.
 *
 * A client holds a base URL ("https://atrium.example.com", no trailing
 * slash) and an optional session token, sent as Atrium-Session-Token. A
 * call sends a JSON body (borrowed) and hands back the status and the
 * parsed answer (owned by the caller); an upload sends raw bytes instead,
 * and a stream reads server-sent events (a job's logs as they are
 * written). The token and request bodies are never printed or logged
 * here; bodies that carried a password are wiped after sending.
 *
 * Threads: one client per thread; the CLI uses it from the main thread. */
#ifndef ATRIUM_CORE_HTTP_CLIENT_H
#define ATRIUM_CORE_HTTP_CLIENT_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct atr_client atr_client_t;

typedef struct atr_client_res {
  long status;  /* HTTP status; 0 when no answer came */
  json_t *body; /* the parsed answer, owned; NULL when the body was empty */
} atr_client_res_t;

/* A client for base url (copied; trailing slashes dropped) with token
 * (copied; NULL or "" for none). NULL when out of memory. */
atr_client_t *atr_client_new(const char *url, const char *token);
/* Replace the token (copied; NULL for none). 0 or ATR_ENOMEM. */
int atr_client_set_token(atr_client_t *c, const char *token);
const char *atr_client_url(const atr_client_t *c);
void atr_client_free(atr_client_t *c);

/* Send `method` to base url + path with body (borrowed, may be NULL).
 * 0 when the server answered (whatever the status), else a negative
 * ATR_E… with *err saying why (no answer, or an answer that is not JSON);
 * the caller frees *err. */
int atr_client_call(atr_client_t *c, const char *method, const char *path,
                    json_t *body, atr_client_res_t *res, char **err);
void atr_client_res_free(atr_client_res_t *res);

/* atr_client_call, then: on a 2xx answer 0 and *out the body (owned; NULL
 * when empty); otherwise the failure printed to stderr after "what: "
 * (atr_client_print_error) and 1. */
int atr_client_request(atr_client_t *c, const char *what, const char *method,
                       const char *path, json_t *body, json_t **out);
/* An error answer on stderr: "what: MESSAGE", then DETAIL when not empty,
 * then "  field: detail" for each validation. */
void atr_client_print_error(const char *what, const atr_client_res_t *res);

/* POST base url + path with `len` bytes of data (borrowed) as the body,
 * sent with `content_type` (an archive for /api/v2/files). Answers as
 * atr_client_call. */
int atr_client_upload(atr_client_t *c, const char *path,
                      const char *content_type, const void *data, size_t len,
                      atr_client_res_t *res, char **err);

/* Once *flag (borrowed; set by a signal handler) is non-zero, every
 * exchange of this client stops within about a second and fails with
 * ATR_ECANCELED. NULL: never. */
void atr_client_set_interrupt(atr_client_t *c, volatile sig_atomic_t *flag);

/* ---- server-sent events -------------------------------------------------- */

/* One event, borrowed for the callback's duration: its type ("message"
 * when the stream named none), its data (data lines joined by "\n") and
 * its id (NULL when it had none). */
typedef struct atr_client_event {
  const char *event;
  const char *data;
  const char *id;
} atr_client_event_t;

/* 0 to go on; a positive value stops the stream, which returns it. */
typedef int (*atr_client_event_fn)(const atr_client_event_t *ev, void *ud);

/* GET base url + path as text/event-stream and call fn for every event,
 * until the event named "end" (fn is called for it too), fn stops it or
 * the interrupt flag is set. Comment lines (": keepalive") are skipped.
 * When the connection breaks or closes before "end", it reconnects (up to
 * 5 times in a row, a second apart) with after=<last id> added to the
 * query; the last id is the last event's id, or else the integer "id" of
 * its JSON data. So path must not carry an `after` of its own.
 *
 * 0 after "end"; fn's positive value; ATR_ECANCELED when interrupted;
 * ATR_EIO with res holding the status and body when the server answered
 * with an error status instead of a stream (print it with
 * atr_client_print_error; the caller frees res); ATR_ENOTSUP when it
 * answered 2xx but not with a stream; otherwise a negative ATR_E… with
 * *err saying why (caller frees). */
int atr_client_stream(atr_client_t *c, const char *path, atr_client_event_fn fn,
                      void *ud, atr_client_res_t *res, char **err);

/* s escaped for use as one path segment (malloc'd); NULL on ENOMEM. */
char *atr_client_escape(const char *s);

#endif
