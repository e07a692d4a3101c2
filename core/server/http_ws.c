/* core/server/http_ws.c — the WebSocket opening handshake of a session
 * (RFC 6455 §4.2, docs/design/agent.md §1.2): a handler of the agents
 * lane checks who is asking, then atr__http_upgrade checks the handshake
 * and serializes the 101; the loop turns the connection into a session
 * when that answer reaches it (http_session.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"
#include "http_internal.h"
#include "ws_accept.h"

/* Whether a comma-separated header value lists token (any case). */
static bool has_token(const char *value, const char *token) {
  size_t n = strlen(token);
  for (const char *p = value; p && *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *end = p;
    while (*end && *end != ',')
      end++;
    const char *last = end;
    while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
      last--;
    if ((size_t)(last - p) == n && strncasecmp(p, token, n) == 0)
      return true;
    p = end;
  }
  return false;
}

bool atr__http_wants_upgrade(atr_http_exchange_t *x) {
  if (!x || !x->req || x->req->stream_id != 0 ||
      strcmp(x->req->method, "GET") != 0)
    return false;
  const char *upgrade = http_req_header(x->req, "Upgrade");
  const char *connection = http_req_header(x->req, "Connection");
  return upgrade && connection && has_token(upgrade, "websocket") &&
         has_token(connection, "upgrade");
}

/* A Sec-WebSocket-Key is base64 of 16 bytes: 24 characters. */
static bool valid_key(const char *key) {
  if (!key || strlen(key) != 24)
    return false;
  for (const char *p = key; *p; p++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789+/=",
                *p))
      return false;
  return true;
}

bool http_ws_accept_for(atr_http_exchange_t *x, char accept[29]) {
  if (!atr__http_wants_upgrade(x))
    return false;
  const char *version = http_req_header(x->req, "Sec-WebSocket-Version");
  const char *ws_key = http_req_header(x->req, "Sec-WebSocket-Key");
  if (!version || strcmp(version, "13") != 0 || !valid_key(ws_key))
    return false;
  atr_ws_accept(ws_key, accept);
  return accept[0] != '\0';
}

static int refuse(const atr_http_session_ops_t *ops, void *ud) {
  if (ops && ops->free_ud)
    ops->free_ud(ud);
  return ATR_EINVAL;
}

int atr__http_upgrade(atr_http_exchange_t *x, const char *key,
                      const atr_http_session_ops_t *ops, void *ud) {
  if (!x || x->status != 0 || x->upgrade || !key || !*key || !ops ||
      ops->struct_size < sizeof *ops || !atr__http_wants_upgrade(x))
    return refuse(ops, ud);
  const char *version = http_req_header(x->req, "Sec-WebSocket-Version");
  const char *ws_key = http_req_header(x->req, "Sec-WebSocket-Key");
  const char *proto = http_req_header(x->req, "Sec-WebSocket-Protocol");
  if (!version || strcmp(version, "13") != 0 || !valid_key(ws_key) || !proto ||
      !has_token(proto, ATR_HTTP_SESSION_PROTOCOL))
    return refuse(ops, ud);
  http_upgrade_t *info = calloc(1, sizeof *info);
  char *head = NULL;
  char accept[29];
  atr_ws_accept(ws_key, accept);
  int n = asprintf(&head,
                   "HTTP/1.1 101 Switching Protocols\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n"
                   "Sec-WebSocket-Protocol: %s\r\n"
                   "X-Request-Id: %s\r\n\r\n",
                   accept, ATR_HTTP_SESSION_PROTOCOL, x->request_id);
  if (!info || n < 0 || !(info->key = strdup(key))) {
    free(info);
    if (n >= 0)
      free(head);
    return refuse(ops, ud);
  }
  info->ops = *ops;
  info->ud = ud;
  free(x->out);
  x->out = head;
  x->out_len = x->out_cap = (size_t)n;
  x->upgrade = info;
  x->status = 101;
  return 0;
}

void *atr__http_session_ud(atr_http_exchange_t *x) {
  return x && x->req ? x->req->session_ud : NULL;
}

void http_upgrade_free(http_upgrade_t *info) {
  if (!info)
    return;
  if (info->ops.free_ud)
    info->ops.free_ud(info->ud);
  free(info->key);
  free(info);
}
