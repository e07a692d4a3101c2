/* tests/api/client.h — a small HTTP client for the API tests: any method,
 * a JSON body, the three ways of presenting a session (Atrium-Session-Token,
 * Authorization: Bearer, the atrium_session cookie with its CSRF header),
 * and the answer's status, parsed JSON and Set-Cookie headers.
 *
 * Each call opens its own libcurl handle and connection, so a test sees
 * exactly what one request does. Requests go to 127.0.0.1 only and time
 * out after 10 s.
 *
 * Memory: the request is borrowed for the call; the caller frees the
 * answer with atr_tc_res_free.
 * Threads: any; calls share nothing. */
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
} atr_tc_req_t;

typedef struct atr_tc_res {
  long status;       /* 0 when no answer came */
  char *body;        /* raw, NUL-terminated ("" when empty) */
  json_t *json;      /* the body parsed, or NULL */
  char *set_cookies; /* every Set-Cookie value, one per line */
  size_t len;        /* of body */
  char content_type[64];
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

#endif
