/* tests/bench/bench_http.h — the HTTP/1.1 client side the API benches
 * share (tests/bench/api, tests/bench/agents): a loopback connection, a
 * whole request written, one whole response read, keep-alive honoured.
 * Blocking sockets with 10 s timeouts; each worker thread owns its fd. */
#ifndef ATRIUM_TESTS_BENCH_HTTP_H
#define ATRIUM_TESTS_BENCH_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* A TCP_NODELAY connection to 127.0.0.1:port, or -1. */
int bench_connect_loopback(int port);
/* All n bytes of p written: 0, or -1 when the connection went. */
int bench_send_all(int fd, const char *p, size_t n);
/* One whole response (at most 64 KiB); its status, or -1. *keep: the
 * server keeps the connection open. quickack: TCP_QUICKACK re-armed
 * before each read, so Nagle on the server's writes does not meet a
 * delayed ACK. */
int bench_read_response(int fd, bool quickack, bool *keep);

#endif
