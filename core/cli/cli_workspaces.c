/* core/cli/cli_workspaces.c — `atrium create|list|show|start|stop|delete|logs|
 * cancel`.
 *
 * A workspace is named NAME (the signed-in user's) or OWNER/NAME. A
 * command that queues a build follows it: the job's log lines as they are
 * written, then "Build 3 (start) succeeded in 4.2s"; the exit status is 0
 * only when the job succeeded. Ctrl-C stops the following, not the build.
 */
#include "cli_templates_workspaces.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_agents.h"
#include "cli_follow.h"
#include "cli_output.h"
#include "cli_prompt.h"
#include "cli_session.h"

#define FIELD_MAX 1024

/* ---- workspaces ----------------------------------------------------------- */

/* "owner/name" or "name" (the caller's). */
static int split_ref(const atr__cli_t *cli, const char *ref, char *owner,
                     char *name) {
  const char *slash = strchr(ref, '/');
  int n = slash ? snprintf(owner, FIELD_MAX, "%.*s", (int)(slash - ref), ref)
                : snprintf(owner, FIELD_MAX, "me");
  int m = snprintf(name, FIELD_MAX, "%s", slash ? slash + 1 : ref);
  if (n <= 0 || m <= 0 || n >= FIELD_MAX || m >= FIELD_MAX || strchr(name, '/'))
    return atr__cli_usage_error(
        cli, "%s is not a workspace: use NAME or OWNER/NAME", ref);
  return 0;
}

/* The workspace named by ref (GET /users/{owner}/workspace/{name}). */
static int find_workspace(atr__cli_t *cli, const char *ref, json_t **ws) {
  char owner[FIELD_MAX], name[FIELD_MAX];
  *ws = NULL;
  int rc = split_ref(cli, ref, owner, name);
  if (rc != 0)
    return rc;
  char *path = atr__cli_path("/api/v2/users/%s/workspace/%s", owner, name);
  if (!path)
    return atr__cli_oom(cli);
  rc = atr__cli_get(cli, path, ws);
  free(path);
  return rc;
}

static const char *build_status(const json_t *build) {
  const char *s = atr__cli_str(build, "status");
  return s ? s : atr__cli_txt(json_object_get(build, "job"), "status");
}

/* "Build 3 (start) succeeded in 4.2s" after following; 0 only when the
 * job succeeded. */
static int build_summary(const atr__cli_job_end_t *end) {
  const json_t *b = end->object;
  bool ok = strcmp(end->status, "succeeded") == 0;
  FILE *out = ok ? stdout : stderr;
  fprintf(out, "Build %" JSON_INTEGER_FORMAT " (%s) %s%s%s%s\n",
          json_integer_value(json_object_get(b, "build_number")),
          atr__cli_txt(b, "transition"), end->status, end->took,
          end->error[0] ? ": " : "", end->error);
  return ok ? 0 : 1;
}

static int follow_build(atr__cli_t *cli, const char *ref, const json_t *build) {
  const char *id = atr__cli_str(build, "id");
  if (!id) {
    fprintf(stderr, "%s: the server's answer has no build id\n", cli->what);
    return 1;
  }
  atr__cli_job_end_t end;
  int rc = atr__cli_follow(cli, "/api/v2/workspacebuilds/%s", id, true, &end);
  if (rc == 130)
    fprintf(stderr,
            "%s: stopped following; the build goes on. Run `atrium cancel "
            "%s` to cancel it.\n",
            cli->what, ref);
  if (rc == 0)
    rc = build_summary(&end);
  atr__cli_job_end_clear(&end);
  return rc;
}

/* --parameter values as [{"name", "value"}]; *out owned. */
static int params_json(const atr__cli_t *cli, json_t **out) {
  *out = json_array();
  for (size_t i = 0; *out && i < cli->o.nparams; i++) {
    const char *p = cli->o.params[i], *eq = strchr(p, '=');
    json_t *v =
        json_pack("{s:s%, s:s}", "name", p, (size_t)(eq - p), "value", eq + 1);
    if (!v || json_array_append_new(*out, v) != 0) {
      json_decref(*out);
      *out = NULL;
    }
  }
  return *out ? 0 : atr__cli_oom(cli);
}

/* POST a build with transition and follow it. */
/* Policies' warnings from a create or build answer, on stderr. */
static void print_warnings(json_t *answer) {
  size_t i;
  json_t *w;
  json_array_foreach(json_object_get(answer, "warnings"), i, w) {
    const char *msg = json_string_value(json_object_get(w, "message"));
    const char *pol = json_string_value(json_object_get(w, "policy"));
    fprintf(stderr, "warning (%s): %s\n", pol ? pol : "policy", msg ? msg : "");
  }
}

static int new_build(atr__cli_t *cli, const char *transition) {
  const char *ref = cli->o.args[0];
  json_t *ws = NULL, *values = NULL, *build = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = find_workspace(cli, ref, &ws);
  if (rc == 0)
    rc = params_json(cli, &values);
  json_t *body = rc == 0 ? json_pack("{s:s}", "transition", transition) : NULL;
  if (rc == 0 && !body)
    rc = atr__cli_oom(cli);
  if (rc == 0 && json_array_size(values) > 0)
    json_object_set(body, "rich_parameter_values", values);
  if (rc == 0 && cli->o.orphan)
    json_object_set_new(body, "orphan", json_true());
  char *path = rc == 0 ? atr__cli_path("/api/v2/workspaces/%s/builds",
                                       atr__cli_str(ws, "id"), NULL)
                       : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "POST", path, body, &build);
  if (rc == 0) {
    print_warnings(build);
    rc = follow_build(cli, ref, build);
  }
  free(path);
  json_decref(body);
  json_decref(values);
  json_decref(build);
  json_decref(ws);
  return rc;
}

int atr__cli_ws_start(atr__cli_t *cli) {
  return new_build(cli, "start");
}

int atr__cli_ws_stop(atr__cli_t *cli) {
  return new_build(cli, "stop");
}

int atr__cli_ws_delete(atr__cli_t *cli) {
  char question[FIELD_MAX + 64];
  snprintf(question, sizeof question, "Delete workspace %s%s?", cli->o.args[0],
           cli->o.orphan ? " (orphan: leave its resources in place)" : "");
  int rc = atr__cli_confirm(cli, true, question);
  return rc == 0 ? new_build(cli, "delete") : rc;
}

/* ---- create --------------------------------------------------------------- */

static bool given(const atr__cli_t *cli, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < cli->o.nparams; i++)
    if (strncmp(cli->o.params[i], name, n) == 0 && cli->o.params[i][n] == '=')
      return true;
  return false;
}

/* "cpus (number, 1–8): " */
static void prompt_for(const json_t *p, char *buf, size_t size) {
  const char *type = atr__cli_str(p, "type");
  const json_t *min = json_object_get(p, "validation_min");
  const json_t *max = json_object_get(p, "validation_max");
  size_t n = (size_t)snprintf(buf, size, "%s (%s", atr__cli_str(p, "name"),
                              type ? type : "string");
  if (json_is_number(min) && json_is_number(max))
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, ", %g\u2013%g",
                          json_number_value(min), json_number_value(max));
  else if (json_is_number(min))
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, ", at least %g",
                          json_number_value(min));
  else if (json_is_number(max))
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, ", at most %g",
                          json_number_value(max));
  size_t i;
  json_t *o;
  json_array_foreach(json_object_get(p, "options"), i, o) {
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s",
                          i == 0 ? ", one of: " : ", ",
                          atr__cli_str(o, "value"));
  }
  if (n < size)
    snprintf(buf + n, size - n, "): ");
}

/* Ask for a required parameter on the terminal; appends to values. */
static int ask_param(const atr__cli_t *cli, const json_t *p, json_t *values) {
  char prompt[FIELD_MAX], answer[FIELD_MAX];
  prompt_for(p, prompt, sizeof prompt);
  const char *d = atr__cli_str(p, "description");
  if (d && *d)
    fprintf(stderr, "%s\n", d);
  fputs(prompt, stderr);
  bool hidden = json_is_true(json_object_get(p, "sensitive"));
  int rc = hidden ? atr__cli_read_hidden("", answer, sizeof answer)
                  : atr__cli_read_line(answer, sizeof answer);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what,
            rc == -2 ? "the value is too long" : "no value given");
    return 2;
  }
  json_t *v =
      json_pack("{s:s, s:s}", "name", atr__cli_str(p, "name"), "value", answer);
  OPENSSL_cleanse(answer, sizeof answer);
  if (!v || json_array_append_new(values, v) != 0)
    return atr__cli_oom(cli);
  return 0;
}

/* Values for the required parameters that no --parameter gave: asked on
 * a terminal, else an error naming them. */
static int fill_required(const atr__cli_t *cli, const json_t *schema,
                         json_t *values) {
  char missing[FIELD_MAX] = "";
  size_t n = 0, i;
  json_t *p;
  bool tty = isatty(STDIN_FILENO);
  json_array_foreach(schema, i, p) {
    const char *name = atr__cli_str(p, "name");
    if (!name || !json_is_true(json_object_get(p, "required")) ||
        given(cli, name))
      continue;
    if (tty) {
      int rc = ask_param(cli, p, values);
      if (rc != 0)
        return rc;
    } else if (n < sizeof missing) {
      n += (size_t)snprintf(missing + n, sizeof missing - n, "%s%s",
                            n ? ", " : "", name);
    }
  }
  if (n == 0)
    return 0;
  fprintf(stderr,
          "%s: the template needs values for: %s; give --parameter "
          "NAME=VALUE for each (standard input is not a terminal to ask "
          "on)\n",
          cli->what, missing);
  return 2;
}

static int create_body(atr__cli_t *cli, const char *name, json_t **body) {
  char *org = NULL;
  json_t *tpl = NULL, *schema = NULL, *values = NULL;
  *body = NULL;
  int rc = atr__cli_org(cli, &org);
  if (rc == 0)
    rc = atr__cli_template_get(cli, org, cli->o.template_name, &tpl);
  char *path =
      rc == 0 ? atr__cli_path("/api/v2/templateversions/%s/rich-parameters",
                              atr__cli_str(tpl, "active_version_id"), NULL)
              : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, path, &schema);
  if (rc == 0)
    rc = params_json(cli, &values);
  if (rc == 0)
    rc = fill_required(cli, schema, values);
  if (rc == 0 && !(*body = json_pack("{s:s, s:s, s:O}", "name", name,
                                     "template_id", atr__cli_str(tpl, "id"),
                                     "rich_parameter_values", values)))
    rc = atr__cli_oom(cli);
  free(path);
  free(org);
  json_decref(tpl);
  json_decref(schema);
  json_decref(values);
  return rc;
}

/* Values typed at a prompt may be secret: wipe jansson's copies. */
static void wipe_values(json_t *body) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(body, "rich_parameter_values"), i, v) {
    json_t *s = json_object_get(v, "value");
    if (json_string_value(s))
      OPENSSL_cleanse((void *)json_string_value(s), json_string_length(s));
  }
}

int atr__cli_ws_create(atr__cli_t *cli) {
  if (!cli->o.template_name)
    return atr__cli_usage_error(cli, "%s",
                                "which template? give --template NAME");
  char owner[FIELD_MAX], name[FIELD_MAX], question[2 * FIELD_MAX];
  int rc = split_ref(cli, cli->o.args[0], owner, name);
  json_t *body = NULL, *ws = NULL;
  if (rc == 0)
    rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = create_body(cli, name, &body);
  snprintf(question, sizeof question, "Create workspace %s from template %s?",
           cli->o.args[0], cli->o.template_name);
  if (rc == 0)
    rc = atr__cli_confirm(cli, false, question);
  char *path = rc == 0
                   ? atr__cli_path("/api/v2/users/%s/workspaces", owner, NULL)
                   : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "POST", path, body, &ws);
  wipe_values(body);
  if (rc == 0) {
    print_warnings(ws);
    printf("Workspace %s created from template %s.\n", cli->o.args[0],
           cli->o.template_name);
    fflush(stdout);
    rc = follow_build(cli, cli->o.args[0], json_object_get(ws, "latest_build"));
  }
  free(path);
  json_decref(body);
  json_decref(ws);
  return rc;
}

/* ---- list, show ------------------------------------------------------------ */

/* Every visible workspace (--all) or the caller's, a page at a time:
 * {"workspaces": […], "count": N}. */
static int list_workspaces(atr__cli_t *cli, json_t **out) {
  json_t *all = NULL;
  json_int_t count = 0;
  int rc = atr__cli_get_all(
      cli, cli->o.all ? "/api/v2/workspaces?" : "/api/v2/workspaces?owner=me&",
      100, "workspaces", &all, &count);
  *out = rc == 0 ? json_pack("{s:o, s:I}", "workspaces", all, "count",
                             (json_int_t)json_array_size(all))
                 : NULL;
  return rc == 0 && !*out ? atr__cli_oom(cli) : rc;
}

static const char *const ws_head[] = {"WORKSPACE", "TEMPLATE", "STATUS",
                                      "LAST BUILT", "OUTDATED"};

int atr__cli_ws_list(atr__cli_t *cli) {
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = list_workspaces(cli, &out);
  if (rc == 0 && cli->json) {
    atr__cli_print_json(out);
  } else if (rc == 0) {
    atr__cli_table_t t = {.ncols = 5, .head = ws_head};
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(out, "workspaces"), i, w) {
      const json_t *b = json_object_get(w, "latest_build");
      char name[2 * FIELD_MAX], built[32], status[96];
      snprintf(name, sizeof name, "%s%s%s",
               cli->o.all ? atr__cli_str(w, "owner_name") : "",
               cli->o.all ? "/" : "", atr__cli_str(w, "name"));
      const char *row[] = {
          name, atr__cli_str(w, "template_name"),
          atr__cli_build_status_text(build_status(b), b, status, sizeof status),
          atr__cli_ago(atr__cli_str(b, "created_at"), built),
          json_is_true(json_object_get(w, "outdated")) ? "yes" : "no"};
      if (rc == 0 && atr__cli_table_add(&t, row) != 0)
        rc = atr__cli_oom(cli);
    }
    if (rc == 0 && t.nrows == 0)
      printf("No workspaces%s; create one with `atrium create NAME "
             "--template T`.\n",
             cli->o.all ? "" : " of yours");
    else if (rc == 0)
      atr__cli_table_print(&t);
    atr__cli_table_free(&t);
  }
  json_decref(out);
  return rc;
}

static const char *const res_head[] = {"RESOURCE", "TYPE", "METADATA"};

/* "key=value, …"; sensitive values (null) shown as ********. */
static void metadata_text(const json_t *md, char *buf, size_t size) {
  size_t n = 0, i;
  json_t *m;
  buf[0] = '\0';
  json_array_foreach(md, i, m) {
    const char *v = atr__cli_str(m, "value");
    bool secret = json_is_true(json_object_get(m, "sensitive")) || !v;
    if (n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", n ? ", " : "",
                            atr__cli_str(m, "key"), secret ? "********" : v);
  }
}

static void print_resources(const json_t *resources) {
  atr__cli_table_t t = {.ncols = 3, .head = res_head};
  size_t i;
  json_t *r;
  json_array_foreach(resources, i, r) {
    char md[FIELD_MAX];
    metadata_text(json_object_get(r, "metadata"), md, sizeof md);
    const char *row[] = {atr__cli_str(r, "name"), atr__cli_str(r, "type"), md};
    if (atr__cli_table_add(&t, row) != 0)
      break;
  }
  if (t.nrows == 0)
    printf("Resources:  none\n");
  else
    atr__cli_table_print(&t);
  atr__cli_table_free(&t);
}

static void print_parameters(atr__cli_t *cli, const char *build_id) {
  char *path =
      atr__cli_path("/api/v2/workspacebuilds/%s/parameters", build_id, NULL);
  json_t *values = NULL;
  if (!path || atr__cli_get(cli, path, &values) != 0) {
    free(path);
    return;
  }
  free(path);
  size_t i;
  json_t *v;
  if (json_array_size(values) > 0)
    printf("Parameters:\n");
  json_array_foreach(values, i, v) {
    printf("  %s = %s\n", atr__cli_str(v, "name"), atr__cli_str(v, "value"));
  }
  json_decref(values);
}

int atr__cli_ws_show(atr__cli_t *cli) {
  json_t *ws = NULL;
  long log_lines = atr__cli_agent_log_lines(cli);
  if (log_lines < 0)
    return 2;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = find_workspace(cli, cli->o.args[0], &ws);
  if (rc != 0 || cli->json) {
    atr__cli_print_json(rc == 0 ? ws : NULL);
    json_decref(ws);
    return rc;
  }
  const json_t *b = json_object_get(ws, "latest_build");
  const json_t *job = json_object_get(b, "job");
  char created[32], done[32];
  printf("Workspace:  %s/%s\n", atr__cli_txt(ws, "owner_name"),
         atr__cli_txt(ws, "name"));
  printf("Template:   %s%s\n", atr__cli_txt(ws, "template_name"),
         json_is_true(json_object_get(ws, "outdated")) ? " (outdated)" : "");
  printf("Status:     %s\n", build_status(b));
  printf("Build:      %" JSON_INTEGER_FORMAT " (%s) of version %s by %s, "
         "queued %s",
         json_integer_value(json_object_get(b, "build_number")),
         atr__cli_txt(b, "transition"),
         atr__cli_txt(b, "template_version_name"),
         atr__cli_txt(b, "initiator_name"),
         atr__cli_time(atr__cli_str(b, "created_at"), created, "-"));
  const char *completed = atr__cli_str(job, "completed_at");
  if (completed)
    printf(", ended %s", atr__cli_time(completed, done, "-"));
  printf("\n");
  const char *error = atr__cli_str(job, "error");
  if (error && *error)
    printf("Error:      %s\n", error);
  print_parameters(cli, atr__cli_str(b, "id"));
  print_resources(json_object_get(b, "resources"));
  int rc2 = atr__cli_print_agents(cli, b, log_lines);
  json_decref(ws);
  return rc2;
}

/* ---- logs, cancel ------------------------------------------------------------ */

/* The build of ws numbered cli->o.build, or its latest; *build owned. */
static int pick_build(atr__cli_t *cli, const json_t *ws, json_t **build) {
  *build = NULL;
  if (!cli->o.build) {
    *build = json_incref(json_object_get(ws, "latest_build"));
    return 0;
  }
  char *end = NULL;
  long long want = strtoll(cli->o.build, &end, 10);
  if (!*cli->o.build || *end || want <= 0)
    return atr__cli_usage_error(cli, "--build %s is not a build number",
                                cli->o.build);
  for (size_t offset = 0;;) {
    char suffix[64];
    snprintf(suffix, sizeof suffix, "?limit=100&offset=%zu", offset);
    char *path = atr__cli_path("/api/v2/workspaces/%s/builds%s",
                               atr__cli_str(ws, "id"), NULL);
    char *full = NULL;
    if (!path || asprintf(&full, "%s%s", path, suffix) < 0) {
      free(path);
      return atr__cli_oom(cli);
    }
    free(path);
    json_t *page = NULL;
    int rc = atr__cli_get(cli, full, &page);
    free(full);
    size_t i;
    json_t *b;
    json_array_foreach(page, i, b) {
      if (json_integer_value(json_object_get(b, "build_number")) == want) {
        *build = json_incref(b);
        break;
      }
    }
    size_t n = json_array_size(page);
    json_decref(page);
    if (rc != 0 || *build)
      return rc;
    if (n == 0)
      break;
    offset += n;
  }
  fprintf(stderr, "%s: %s has no build %s\n", cli->what, cli->o.args[0],
          cli->o.build);
  return 1;
}

int atr__cli_ws_logs(atr__cli_t *cli) {
  json_t *ws = NULL, *build = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = find_workspace(cli, cli->o.args[0], &ws);
  if (rc == 0)
    rc = pick_build(cli, ws, &build);
  const char *id = atr__cli_str(build, "id");
  char *path =
      rc == 0 ? atr__cli_path("/api/v2/workspacebuilds/%s", id, NULL) : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0 && cli->o.agent) {
    rc = atr__cli_agent_logs(cli, build);
  } else if (rc == 0 && cli->o.follow) {
    rc = follow_build(cli, cli->o.args[0], build);
    rc = rc == 130 ? 130 : 0; /* the logs were shown */
  } else if (rc == 0) {
    const json_t *job = json_object_get(build, "job");
    rc = atr__cli_print_logs(cli, path);
    const char *error = atr__cli_str(job, "error");
    if (rc == 0 && error && *error)
      fprintf(stderr, "Build %" JSON_INTEGER_FORMAT " (%s) %s: %s\n",
              json_integer_value(json_object_get(build, "build_number")),
              atr__cli_txt(build, "transition"), build_status(build), error);
    else if (rc == 0 && !atr__cli_job_ended(atr__cli_str(job, "status")))
      fprintf(stderr, "(the build is %s; follow it with -f)\n",
              build_status(build));
  }
  free(path);
  json_decref(build);
  json_decref(ws);
  return rc;
}

int atr__cli_ws_cancel(atr__cli_t *cli) {
  json_t *ws = NULL, *out = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = find_workspace(cli, cli->o.args[0], &ws);
  const json_t *b = json_object_get(ws, "latest_build");
  const char *id = atr__cli_str(b, "id");
  char *path =
      rc == 0 ? atr__cli_path("/api/v2/workspacebuilds/%s/cancel", id, NULL)
              : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "PATCH", path, NULL, &out);
  if (rc == 0) {
    printf("Canceling build %" JSON_INTEGER_FORMAT " (%s) of %s.\n",
           json_integer_value(json_object_get(b, "build_number")),
           atr__cli_txt(b, "transition"), cli->o.args[0]);
    fflush(stdout);
    /* Wait for the provisioner to stop, without its log lines. */
    atr__cli_job_end_t end;
    rc = atr__cli_follow(cli, "/api/v2/workspacebuilds/%s", id, false, &end);
    if (rc == 0) {
      build_summary(&end);
      rc = strcmp(end.status, "canceled") == 0 ? 0 : 1;
    }
    atr__cli_job_end_clear(&end);
  }
  free(path);
  json_decref(out);
  json_decref(ws);
  return rc;
}
