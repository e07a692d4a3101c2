/* core/server/http_path.h — a request path as routes see it.
 *
 * The HTTP front hands over the raw request target (http-parser does not
 * decode). civetweb's decoding once cut a path at an encoded NUL
 * ("/users%00/x" became "/users") and let invalid UTF-8 through to the
 * routes; atr_http_path_decode() decodes the raw path once and refuses
 * what no route may see, naming why.
 *
 * Threads: pure; any thread.
 */
#ifndef ATRIUM_CORE_HTTP_PATH_H
#define ATRIUM_CORE_HTTP_PATH_H

/* The percent-decoded path (malloc'd), or NULL with *why saying what is
 * wrong: a malformed escape, an encoded NUL, invalid UTF-8, or a "." or
 * ".." segment (so no decoded path can climb). */
char *atr_http_path_decode(const char *raw, const char **why);

#endif
