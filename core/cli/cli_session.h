/* core/cli/cli_session.h — talking to the server as the signed-in user: the
 * client for the stored (or overridden) session, GETs of one answer or of
 * every page of a list, paths with escaped segments, and the organization
 * a command works in. Functions returning int give 0, or 1 after printing
 * why (the server's error as it sent it).
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_SESSION_H
#define ATRIUM_CORE_CLI_SESSION_H

#include <jansson.h>

#include "cli_args.h"

/* cli->client for the stored session ($ATRIUM_URL and
 * $ATRIUM_SESSION_TOKEN override it). */
int atr__cli_connect(atr__cli_t *cli);
/* GET path; the answer in *out (owned). */
int atr__cli_get(atr__cli_t *cli, const char *path, json_t **out);
/* Every page of a list: path ends in '?' or '&' and gets "limit=page&
 * offset=N" until an answer's `key` array is empty or the answers' "count"
 * is reached. All the items in *all (owned), the last "count" in *count. */
int atr__cli_get_all(atr__cli_t *cli, const char *path, int page,
                     const char *key, json_t **all, json_int_t *count);
/* path from fmt where each %s is one argument escaped as a path segment
 * (malloc'd); NULL on ENOMEM. */
char *atr__cli_path(const char *fmt, const char *a, const char *b);
/* The organization: --org, else the caller's default one; *org owned. */
int atr__cli_org(atr__cli_t *cli, char **org);

#endif
