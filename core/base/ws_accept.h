/* core/base/ws_accept.h — the WebSocket handshake's proof (RFC 6455
 * §4.2.2): Sec-WebSocket-Accept = base64(SHA-1(Sec-WebSocket-Key + the
 * RFC's GUID)). The server answers it (core/server/http_ws.c) and the
 * agent checks it (core/agent/agent_conn.c), so both use this one.
 * Threads: pure. */
#ifndef ATRIUM_CORE_WS_ACCEPT_H
#define ATRIUM_CORE_WS_ACCEPT_H

/* out: 28 characters and a NUL; "" when the digest failed (it then
 * matches no peer's expectation). */
void atr_ws_accept(const char *key, char out[29]);

#endif
