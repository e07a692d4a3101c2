/* core/api/api_connect.c — users' tunnels into a workspace (api_connect.h).
 * The query is checked field by field first (400 naming each bad field),
 * then the upgrade the mode needs (426), then the domain's verdict
 * (404/403/409), then the server takes the connection. The open event is
 * built with jansson from checked values only. */
#include "api_connect.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"
#include "connect.h"

#define TUNNEL_UPGRADE "atrium-tunnel"
#define PTY_SIZE_MAX 1000
#define PTY_WIDTH_DEFAULT 80
#define PTY_HEIGHT_DEFAULT 24
#define PTY_COMMAND_MAX 4096

/* What a tunnel's ended() needs once the request is gone. */
typedef struct tunnel {
  const atr_domain_t *dom; /* the server's; outlives every tunnel */
  atr_connect_t c;
} tunnel_t;

static void tunnel_ended(void *ud, const atr_http_tunnel_end_t *e) {
  tunnel_t *t = ud;
  atr_connect_end_t end = {.reason = e->reason,
                           .error = e->error,
                           .opened = e->opened,
                           .bytes_to_agent = e->bytes_to_agent,
                           .bytes_from_agent = e->bytes_from_agent,
                           .duration_ms = e->duration_ms};
  atr_connect_ended(t->dom, &t->c, &end);
}

static const atr_http_tunnel_ops_t tunnel_ops = {
    .struct_size = sizeof(atr_http_tunnel_ops_t),
    .ended = tunnel_ended,
    .free_ud = free,
};

/* ---- the query ---------------------------------------------------------------- */

/* ?name= as a whole number in [min, max]: *out, or def when absent;
 * otherwise a validation naming it. */
static void query_int(atr_api_req_t *r, const char *name, long min, long max,
                      long def, long *out, json_t *v) {
  char buf[32], *end = NULL;
  const char *s = atr_api_query(r, name, buf, sizeof buf);
  *out = def;
  if (!s)
    return;
  errno = 0;
  long n = strtol(s, &end, 10);
  if (*s && !*end && errno == 0 && n >= min && n <= max &&
      isdigit((unsigned char)*s)) {
    *out = n;
    return;
  }
  char detail[80];
  snprintf(detail, sizeof detail, "Must be a whole number from %ld to %ld.",
           min, max);
  atr_api_add_validation(v, name, detail);
}

/* Whether the comma-separated header value lists token (any case). */
static bool lists_token(const char *value, const char *token) {
  size_t n = strlen(token);
  for (const char *p = value; p && *p;) {
    p += strspn(p, " \t,");
    size_t len = strcspn(p, ",");
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
      len--;
    if (len == n && strncasecmp(p, token, n) == 0)
      return true;
    p = strchr(p, ',');
  }
  return false;
}

static int answer_invalid(atr_api_req_t *r, json_t *v) {
  if (json_array_size(v) == 0) {
    json_decref(v);
    return 0;
  }
  atr_api_validation(r, "Invalid query parameters.", v);
  return -1;
}

/* ---- opening ------------------------------------------------------------------- */

/* The domain's verdict, then the server takes the connection with t
 * (owned from here on) and the open event's fields. */
static int open_tunnel(atr_api_req_t *r, tunnel_t *t, json_t *open,
                       atr_http_tunnel_mode_t mode) {
  atr_fault_t f = {0};
  int rc = atr_connect_authorize(&r->env->dom, &r->actor,
                                 atr_api_param(r, "workspaceagent"), &t->c, &f);
  char *text = rc == 0 ? json_dumps(open, JSON_COMPACT) : NULL;
  json_decref(open);
  if (rc != 0) {
    free(t);
    return atr_api_fault(r, &f);
  }
  atr_http_tunnel_req_t req = {.struct_size = sizeof req,
                               .agent_key = t->c.agent_id,
                               .kind = t->c.kind,
                               .open = text,
                               .mode = mode};
  rc = text ? atr__http_tunnel(r->x, &req, &tunnel_ops, t) : ATR_ENOMEM;
  free(text);
  if (rc == 0) {
    r->status = 101; /* answered by the server, which owns t now */
    return 0;
  }
  /* Nothing was taken: the opening's entry gets its end here. */
  atr_connect_end_t end = {.reason = rc == ATR_ENOENT ? "no_agent" : "invalid"};
  atr_connect_ended(&r->env->dom, &t->c, &end);
  free(t);
  if (rc == ATR_ENOENT)
    return atr_api_error(r, 502, "The agent is not connected to this server.",
                         "Its session is held by no server here; wait for "
                         "the agent to reconnect and try again.");
  if (rc == ATR_EINVAL)
    return atr_api_error(r, 400, "Invalid WebSocket handshake.",
                         "Send Sec-WebSocket-Version: 13 and a "
                         "Sec-WebSocket-Key.");
  return atr_api_fail(r, rc, "cannot open the tunnel");
}

static tunnel_t *tunnel_new(atr_api_req_t *r, const char *kind) {
  tunnel_t *t = calloc(1, sizeof *t);
  if (!t) {
    atr_api_error(r, 500, "Internal error.", "out of memory");
    return NULL;
  }
  t->dom = &r->env->dom;
  snprintf(t->c.kind, sizeof t->c.kind, "%s", kind);
  return t;
}

int atr_api_workspace_agent_tunnel(atr_api_req_t *r) {
  json_t *v = json_array();
  char kbuf[8];
  const char *kind = atr_api_query(r, "kind", kbuf, sizeof kbuf);
  bool tcp = kind && strcmp(kind, "tcp") == 0;
  if (!kind || (!tcp && strcmp(kind, "ssh") != 0))
    atr_api_add_validation(v, "kind", "Must be ssh or tcp.");
  long port = 0;
  char pbuf[8];
  bool has_port = atr_api_query(r, "port", pbuf, sizeof pbuf) != NULL;
  if (tcp && !has_port)
    atr_api_add_validation(v, "port",
                           "A tcp tunnel needs a port from 1 to 65535.");
  else if (tcp)
    query_int(r, "port", 1, ATR_CONNECT_PORT_MAX, 0, &port, v);
  else if (kind && has_port)
    atr_api_add_validation(v, "port", "Only a tcp tunnel names a port.");
  if (answer_invalid(r, v) != 0)
    return 0;
  const char *up = atr__http_header(r->x, "Upgrade");
  if (!up || !lists_token(up, TUNNEL_UPGRADE)) {
    atr_api_header(r, "Upgrade", TUNNEL_UPGRADE);
    return atr_api_error(r, 426, "Upgrade required.",
                         "A tunnel is a connection upgrade: send "
                         "Connection: Upgrade and Upgrade: " TUNNEL_UPGRADE
                         " (atrium ssh and atrium port-forward do).");
  }
  tunnel_t *t = tunnel_new(r, tcp ? "tcp" : "ssh");
  if (!t)
    return 0;
  t->c.port = (int)port;
  json_t *open = json_pack("{s:s}", "kind", t->c.kind);
  if (tcp)
    json_object_set_new(open, "port", json_integer(port));
  return open_tunnel(r, t, open, ATR_HTTP_TUNNEL_RAW);
}

/* ?command=: at most PTY_COMMAND_MAX bytes of UTF-8, as a JSON string
 * (NULL when absent or after a validation). */
static json_t *query_command(atr_api_req_t *r, json_t *v) {
  char *buf = malloc(PTY_COMMAND_MAX + 2);
  const char *s =
      buf ? atr_api_query(r, "command", buf, PTY_COMMAND_MAX + 2) : NULL;
  json_t *out = NULL;
  if (s && strlen(s) > PTY_COMMAND_MAX)
    atr_api_add_validation(v, "command", "Must be at most 4096 bytes.");
  else if (s && !(out = json_string(s)))
    atr_api_add_validation(v, "command", "Must be UTF-8 text.");
  free(buf);
  return out;
}

int atr_api_workspace_agent_pty(atr_api_req_t *r) {
  json_t *v = json_array();
  char reconnect[40];
  const char *id = atr_api_query(r, "reconnect", reconnect, sizeof reconnect);
  if (!id || !atr_uuid_valid(id))
    atr_api_add_validation(v, "reconnect",
                           "Must be a UUID: the terminal's id, the same when "
                           "it reconnects.");
  long width = 0, height = 0;
  query_int(r, "width", 1, PTY_SIZE_MAX, PTY_WIDTH_DEFAULT, &width, v);
  query_int(r, "height", 1, PTY_SIZE_MAX, PTY_HEIGHT_DEFAULT, &height, v);
  json_t *command = query_command(r, v);
  if (answer_invalid(r, v) != 0) {
    json_decref(command);
    return 0;
  }
  if (!atr__http_wants_upgrade(r->x)) {
    json_decref(command);
    atr_api_header(r, "Upgrade", "websocket");
    return atr_api_error(r, 426, "Upgrade required.",
                         "The terminal is a WebSocket: send Connection: "
                         "Upgrade and Upgrade: websocket.");
  }
  tunnel_t *t = tunnel_new(r, "pty");
  if (!t) {
    json_decref(command);
    return 0;
  }
  snprintf(t->c.reconnect, sizeof t->c.reconnect, "%s", id);
  json_t *open =
      json_pack("{s:s, s:s, s:I, s:I, s:o?}", "kind", "pty", "reconnect",
                t->c.reconnect, "width", (json_int_t)width, "height",
                (json_int_t)height, "command", command);
  return open_tunnel(r, t, open, ATR_HTTP_TUNNEL_WS);
}
