/* tests/api/client.h — the one HTTP client of the tests: any method, a
 * JSON body or raw bytes, extra headers, the three ways of presenting a
 * session (Atrium-Session-Token, Authorization: Bearer, the
 * atrium_session cookie with its CSRF header), and the answer's status,
 * headers, body and parsed JSON; or the answer read as a stream of
 * server-sent events while it arrives (GET …/logs?follow=true).
 *
 * Each call opens its own libcurl handle and connection, so a test sees
 * exactly what one request does. Requests go to 127.0.0.1 only and time
 * out after 10 s (30 s for a stream) unless the request says otherwise.
 *
 * Memory: the request is borrowed for the call; the caller frees the
 * answer with atr_tc_res_free (a stream with atr_tc_events_free).
 * Threads: any; calls share nothing (curl_global_init is the program's). */
#ifndef ATRIUM_TEST_API_CLIENT_H
#define ATRIUM_TEST_API_CLIENT_H

#include <jansson.h>
#include <stddef.h>

typedef struct atr_tc_req {
  const char *method; /* NULL means GET */
  const char *path;   /* "/api/v2/users/me" */
  const char *token;  /* sent as Atrium-Session-Token */
  const char *bearer; /* sent as Authorization: Bearer */
  const char *cookie; /* the Cookie header's value */
  const char *csrf;   /* sent as Atrium-CSRF-Token */
  const json_t *body; /* sent as application/json; NULL for none */
  const void *raw;    /* or these bytes, as content_type */
  size_t raw_len;
  const char *content_type;
  const char *const *headers; /* more "Name: value" lines, NULL-ended */
  long timeout_ms;            /* 0: the default */
} atr_tc_req_t;

typedef struct atr_tc_res {
  long status;       /* 0 when no answer came */
  char *body;        /* raw, NUL-terminated ("" when empty) */
  json_t *json;      /* the body parsed, or NULL */
  char *set_cookies; /* every Set-Cookie value, one per line */
  size_t len;        /* of body */
  char content_type[64];
  char *headers; /* every header line of the answer, "Name: value\n" */
} atr_tc_res_t;

/* Send req to the server listening on 127.0.0.1:port. */
atr_tc_res_t atr_tc_call(int port, const atr_tc_req_t *req);
void atr_tc_res_free(atr_tc_res_t *res);

/* A string member of the answer's JSON object, or NULL. */
const char *atr_tc_str(const atr_tc_res_t *res, const char *key);
/* The value a Set-Cookie header gave cookie `name`, into buf; NULL when
 * the answer set no such cookie. */
const char *atr_tc_cookie(const atr_tc_res_t *res, const char *name, char *buf,
                          size_t size);
/* The value of the answer's first header `name` (any case), into buf;
 * NULL when there is none. */
const char *atr_tc_header(const atr_tc_res_t *res, const char *name, char *buf,
                          size_t size);

/* ---- server-sent events -------------------------------------------------- */

#define ATR_TC_EVENTS_MAX 256

typedef struct atr_tc_event {
  char name[16]; /* "message" when the frame named none */
  json_t *data;  /* the data line parsed, or NULL */
  double at_ms;  /* since the request was sent */
} atr_tc_event_t;

typedef struct atr_tc_events {
  long status;
  char content_type[64];
  atr_tc_event_t ev[ATR_TC_EVENTS_MAX]; /* the first ATR_TC_EVENTS_MAX */
  size_t n;
  char *pending; /* a frame not complete yet */
  size_t pending_len;
  double t0;
  /* Set by the caller (may be NULL): called with each event as it
   * arrives, on the reading thread, before the next is read. */
  void (*on_event)(void *ud, const atr_tc_event_t *e);
  void *ud;
} atr_tc_events_t;

/* Send req and read its answer as events until the server closes the
 * stream (or the timeout, 30 s by default, passes: then a message is
 * printed). Comment frames (": keepalive") make no event. Returns the
 * status, also in out->status. */
long atr_tc_events(int port, const atr_tc_req_t *req, atr_tc_events_t *out);
void atr_tc_events_free(atr_tc_events_t *events);

#endif
