/* core/agent/agent_pty_input.c — a terminal connection's input: a stream
 * of JSON objects cut anyhow into reads (agent_pty_internal.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "agent_pty_internal.h"

static int reserve(agent_pty_scanner_t *sc, size_t more) {
  if (sc->len + more <= sc->cap)
    return 0;
  size_t cap = sc->cap ? sc->cap : 4096;
  while (cap < sc->len + more)
    cap *= 2;
  char *b = realloc(sc->buf, cap);
  if (!b)
    return -1;
  sc->buf = b;
  sc->cap = cap;
  return 0;
}

/* Advances the scan over one byte of an object; true when it closed the
 * top-level object. */
static bool scan_byte(agent_pty_scanner_t *sc, char c) {
  if (sc->in_str) {
    if (sc->escaped)
      sc->escaped = false;
    else if (c == '\\')
      sc->escaped = true;
    else if (c == '"')
      sc->in_str = false;
    return false;
  }
  if (c == '"')
    sc->in_str = true;
  else if (c == '{' || c == '[')
    sc->depth++;
  else if (c == '}' || c == ']')
    return --sc->depth == 0;
  return false;
}

static int decode(const char *obj, size_t len, agent_pty_object_fn fn, void *ud,
                  const char **err) {
  json_error_t je;
  /* ALLOW_NUL: Ctrl-@ is a key like any other. */
  json_t *j =
      json_loadb(obj, len, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &je);
  if (!j || !json_is_object(j) || (size_t)je.position != len) {
    json_decref(j);
    *err = "the terminal input is not a stream of JSON objects";
    return -1;
  }
  int rc = fn(ud, j);
  json_decref(j);
  return rc;
}

int agent__pty_scan_feed(agent_pty_scanner_t *sc, const char *bytes, size_t n,
                         agent_pty_object_fn fn, void *ud, const char **err) {
  if (n == 0)
    return 0;
  if (reserve(sc, n) != 0) {
    *err = "out of memory";
    return -1;
  }
  memcpy(sc->buf + sc->len, bytes, n);
  sc->len += n;
  size_t start = 0; /* where the object being scanned begins */
  int rc = 0;
  while (rc == 0 && sc->pos < sc->len) {
    char c = sc->buf[sc->pos++];
    if (sc->depth == 0) {
      if (isspace((unsigned char)c)) {
        start = sc->pos;
        continue;
      }
      if (c != '{') {
        *err = "the terminal input is not a stream of JSON objects";
        return -1;
      }
      sc->depth = 1;
      continue;
    }
    if (scan_byte(sc, c))
      rc = decode(sc->buf + start, sc->pos - start, fn, ud, err);
    if (sc->depth == 0)
      start = sc->pos;
    if (sc->pos - start > AGENT_PTY_MAX_OBJECT) {
      *err = "a terminal input object is longer than 64 KiB";
      return -1;
    }
  }
  /* Keep only the incomplete object (its bytes were scanned already). */
  memmove(sc->buf, sc->buf + start, sc->len - start);
  sc->len -= start;
  sc->pos -= start;
  return rc;
}

void agent__pty_scan_free(agent_pty_scanner_t *sc) {
  free(sc->buf);
  memset(sc, 0, sizeof *sc);
}

static int size_field(json_t *obj, const char *name, int *out,
                      const char **err) {
  json_t *v = json_object_get(obj, name);
  *out = 0;
  if (!v || json_is_null(v))
    return 0;
  json_int_t i = json_integer_value(v);
  /* 0 is "left out": Coder's clients send Go's zero value */
  if (json_is_integer(v) && i == 0)
    return 0;
  if (!json_is_integer(v) || i < 1 || i > 1000) {
    *err = strcmp(name, "width") == 0
               ? "width must be an integer from 1 to 1000"
               : "height must be an integer from 1 to 1000";
    return -1;
  }
  *out = (int)i;
  return 0;
}

int agent__pty_request_parse(json_t *obj, agent_pty_request_t *req,
                             const char **err) {
  memset(req, 0, sizeof *req);
  json_t *d = json_object_get(obj, "data");
  if (d && !json_is_null(d)) {
    if (!json_is_string(d)) {
      *err = "data must be a string";
      return -1;
    }
    req->data = json_string_value(d);
    req->data_len = json_string_length(d);
  }
  if (size_field(obj, "width", &req->width, err) != 0 ||
      size_field(obj, "height", &req->height, err) != 0)
    return -1;
  return 0;
}
