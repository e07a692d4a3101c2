/* core/cli/cli_session.c — talking to the server as the signed-in user
 * (cli_session.h). */
#include "cli_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "cli_output.h"
#include "session_file.h"

int atr__cli_connect(atr__cli_t *cli) {
  atr_client_session_t s;
  char *err = NULL;
  int rc = atr_client_session_load(&s, &err);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
    free(err);
    return 1;
  }
  if (!s.url || !s.token) {
    fprintf(stderr,
            "%s: you are not signed in; run `atrium login URL` (or set "
            "ATRIUM_URL and ATRIUM_SESSION_TOKEN)\n",
            cli->what);
    atr_client_session_clear(&s);
    return 1;
  }
  cli->client = atr_client_new(s.url, s.token);
  atr_client_session_clear(&s);
  return cli->client ? 0 : atr__cli_oom(cli);
}

int atr__cli_get(atr__cli_t *cli, const char *path, json_t **out) {
  return atr_client_request(cli->client, cli->what, "GET", path, NULL, out);
}

int atr__cli_get_all(atr__cli_t *cli, const char *path, int page,
                     const char *key, json_t **all, json_int_t *count) {
  *all = json_array();
  *count = 0;
  int rc = *all ? 0 : atr__cli_oom(cli);
  for (size_t offset = 0; rc == 0;) {
    char *full = NULL;
    if (asprintf(&full, "%slimit=%d&offset=%zu", path, page, offset) < 0) {
      rc = atr__cli_oom(cli);
      break;
    }
    json_t *answer = NULL;
    rc = atr__cli_get(cli, full, &answer);
    free(full);
    json_t *items = json_object_get(answer, key);
    *count = json_integer_value(json_object_get(answer, "count"));
    size_t n = json_array_size(items);
    json_array_extend(*all, items);
    json_decref(answer);
    offset += n;
    if (n == 0 || (json_int_t)offset >= *count)
      break;
  }
  if (rc != 0) {
    json_decref(*all);
    *all = NULL;
  }
  return rc;
}

char *atr__cli_path(const char *fmt, const char *a, const char *b) {
  char *ea = a ? atr_client_escape(a) : NULL;
  char *eb = b ? atr_client_escape(b) : NULL;
  char *path = NULL;
  if ((!a || ea) && (!b || eb) &&
      asprintf(&path, fmt, ea ? ea : "", eb ? eb : "") < 0)
    path = NULL;
  free(ea);
  free(eb);
  return path;
}

/* Organizations: the answer is an array (or {"organizations": […]}). */
static const json_t *orgs_of(const json_t *answer) {
  return json_is_array(answer) ? answer
                               : json_object_get(answer, "organizations");
}

int atr__cli_org(atr__cli_t *cli, char **org) {
  *org = NULL;
  if (cli->o.org) {
    *org = strdup(cli->o.org);
    return *org ? 0 : atr__cli_oom(cli);
  }
  json_t *out = NULL;
  int rc = atr__cli_get(cli, "/api/v2/organizations", &out);
  const json_t *orgs = orgs_of(out);
  size_t i;
  json_t *o;
  const char *pick = NULL;
  json_array_foreach(orgs, i, o) {
    if (json_is_true(json_object_get(o, "is_default")) || !pick)
      pick = atr__cli_str(o, "id");
    if (json_is_true(json_object_get(o, "is_default")))
      break;
  }
  if (rc == 0 && !pick) {
    fprintf(stderr, "%s: you are not a member of any organization\n",
            cli->what);
    rc = 1;
  } else if (rc == 0 && !(*org = strdup(pick))) {
    rc = atr__cli_oom(cli);
  }
  json_decref(out);
  return rc;
}
