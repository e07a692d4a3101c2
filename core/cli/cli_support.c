/* core/cli/cli_support.c — `atrium support bundle`; see cli_support.h. */
#include "cli_support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* libarchive's header by full path: core/archive.h has the same name. */
#include ATR_LIBARCHIVE_H
#include <archive_entry.h>

#include "atrium/error.h"
#include "atrium/plugin.h"
#include "cli_args.h"
#include "cli_output.h"
#include "cli_session.h"
#include "version.h"

#define BUILDS_KEPT 5
#define LOG_PAGES_MAX 10000 /* a job's log is capped; this only bounds loops */

typedef struct bundle {
  atr__cli_t *cli;
  struct archive *a;
  time_t now;
  int files, errors;
  char *write_error; /* the first failure to write the archive */
} bundle_t;

/* ---- writing entries --------------------------------------------------------- */

static void put(bundle_t *b, const char *name, const char *data, size_t len) {
  if (b->write_error)
    return;
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, name);
  archive_entry_set_size(e, (la_int64_t)len);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0600);
  archive_entry_set_mtime(e, b->now, 0);
  if (archive_write_header(b->a, e) != ARCHIVE_OK ||
      (len > 0 && archive_write_data(b->a, data, len) != (la_ssize_t)len))
    b->write_error =
        strdup(archive_error_string(b->a) ? archive_error_string(b->a)
                                          : "cannot write the archive");
  archive_entry_free(e);
  b->files++;
}

static void put_json(bundle_t *b, const char *name, const json_t *j) {
  char *text = json_dumps(j, JSON_INDENT(2));
  if (!text) {
    put(b, name, "null\n", 5);
    return;
  }
  size_t n = strlen(text);
  char *line = realloc(text, n + 2);
  if (line) {
    line[n] = '\n';
    line[n + 1] = '\0';
    text = line;
    n++;
  }
  put(b, name, text, n);
  free(text);
}

/* name.json → name.error.txt (in the same directory), holding why. */
static void put_error(bundle_t *b, const char *name, const char *why) {
  const char *slash = strrchr(name, '/');
  const char *dot = strrchr(slash ? slash : name, '.');
  size_t stem = dot ? (size_t)(dot - name) : strlen(name);
  char *path = NULL, *text = NULL;
  if (asprintf(&path, "%.*s.error.txt", (int)stem, name) >= 0 &&
      asprintf(&text, "%s\n", why ? why : "unknown error") >= 0)
    put(b, path, text, strlen(text));
  free(path);
  free(text);
  b->errors++;
}

/* ---- fetching ------------------------------------------------------------------ */

/* GET path: 0 with *out the answer (owned, NULL for an empty body), or -1
 * with *why (malloc'd) saying why not. */
static int get(bundle_t *b, const char *path, json_t **out, char **why) {
  atr_client_res_t res = {0};
  char *err = NULL;
  *out = NULL;
  *why = NULL;
  int rc = atr_client_call(b->cli->client, "GET", path, NULL, &res, &err);
  if (rc != 0) {
    if (asprintf(why, "GET %s: %s", path, err ? err : atr_strerror(rc)) < 0)
      *why = NULL;
  } else if (res.status < 200 || res.status > 299) {
    const char *msg = atr__cli_str(res.body, "message");
    const char *detail = atr__cli_str(res.body, "detail");
    if (asprintf(why, "GET %s answered %ld: %s%s%s", path, res.status,
                 msg ? msg : "(no message)", detail && *detail ? " " : "",
                 detail ? detail : "") < 0)
      *why = NULL;
    rc = -1;
  } else {
    *out = res.body;
    res.body = NULL;
  }
  atr_client_res_free(&res);
  free(err);
  return rc == 0 ? 0 : -1;
}

/* GET path into the bundle as name; the answer (owned) for more use, or
 * NULL after writing name's error file. */
static json_t *fetch_json(bundle_t *b, const char *name, const char *path) {
  json_t *j = NULL;
  char *why = NULL;
  if (get(b, path, &j, &why) == 0) {
    put_json(b, name, j ? j : json_null());
  } else {
    put_error(b, name, why);
    json_decref(j);
    j = NULL;
  }
  free(why);
  return j;
}

/* ---- the deployment ------------------------------------------------------------- */

static void add_buildinfo(bundle_t *b) {
  json_t *server = NULL;
  char *why = NULL, abi[16], when[32];
  if (get(b, "/api/v2/buildinfo", &server, &why) != 0)
    put_error(b, "buildinfo.json", why);
  free(why);
  snprintf(abi, sizeof abi, "%d.%d", ATR_ABI_MAJOR, ATR_ABI_MINOR);
  struct tm tm;
  gmtime_r(&b->now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *info = json_pack("{s:o, s:{s:s, s:s, s:s}, s:s}", "server",
                           server ? server : json_null(), "cli", "version",
                           ATR_VERSION, "commit", ATR_COMMIT, "plugin_abi", abi,
                           "bundle_created_at", when);
  put_json(b, "buildinfo.json", info);
  json_decref(info);
}

/* The answer's "lines", one per line. */
static void add_server_logs(bundle_t *b) {
  json_t *j = NULL;
  char *why = NULL;
  if (get(b, "/api/v2/debug/logs?limit=1000", &j, &why) != 0) {
    put_error(b, "logs.txt", why);
    free(why);
    return;
  }
  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  size_t i;
  json_t *line;
  json_array_foreach(json_object_get(j, "lines"), i, line) {
    if (mem)
      fprintf(mem, "%s\n", json_string_value(line));
  }
  if (mem && fclose(mem) == 0)
    put(b, "logs.txt", text, len);
  else
    put_error(b, "logs.txt", "out of memory");
  free(text);
  json_decref(j);
}

static void add_deployment(bundle_t *b) {
  add_buildinfo(b);
  static const char *const files[][2] = {
      {"config.json", "/api/v2/debug/config"},
      {"health.json", "/api/v2/debug/health"},
      {"plugins.json", "/api/v2/debug/plugins"},
      {"metrics.json", "/api/v2/debug/metrics"},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    json_decref(fetch_json(b, files[i][0], files[i][1]));
  add_server_logs(b);
}

/* ---- a workspace ------------------------------------------------------------------ */

/* "OWNER/NAME" or "NAME" (the caller's) as the path of the workspace;
 * NULL when ref is neither. */
static char *workspace_path(const char *ref) {
  const char *slash = strchr(ref, '/');
  char owner[256];
  int n = slash ? snprintf(owner, sizeof owner, "%.*s", (int)(slash - ref), ref)
                : snprintf(owner, sizeof owner, "me");
  const char *name = slash ? slash + 1 : ref;
  if (n <= 0 || (size_t)n >= sizeof owner || !*name || strchr(name, '/'))
    return NULL;
  return atr__cli_path("/api/v2/users/%s/workspace/%s", owner, name);
}

/* The build's log lines, page after page, as text. */
static void add_build_logs(bundle_t *b, const char *name, const char *id) {
  char *text = NULL, *why = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  json_int_t after = 0;
  int rc = mem ? 0 : -1;
  for (int page = 0; rc == 0 && page < LOG_PAGES_MAX; page++) {
    char path[200];
    snprintf(path, sizeof path,
             "/api/v2/workspacebuilds/%s/logs?after=%" JSON_INTEGER_FORMAT, id,
             after);
    json_t *lines = NULL;
    rc = get(b, path, &lines, &why);
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) {
      fprintf(mem, "%s %s [%s] %s\n", atr__cli_txt(l, "created_at"),
              atr__cli_txt(l, "log_level"), atr__cli_txt(l, "stage"),
              atr__cli_txt(l, "output"));
      after = json_integer_value(json_object_get(l, "id"));
    }
    size_t n = json_array_size(lines);
    json_decref(lines);
    if (n == 0)
      break;
  }
  if (mem)
    fclose(mem);
  if (rc == 0 && text)
    put(b, name, text, len);
  else
    put_error(b, name, why ? why : "out of memory");
  free(text);
  free(why);
}

static void add_build(bundle_t *b, const json_t *build) {
  const char *id = atr__cli_str(build, "id");
  json_int_t n = json_integer_value(json_object_get(build, "build_number"));
  char name[64], path[160];
  if (!id || strlen(id) > 64)
    return;
  snprintf(name, sizeof name, "builds/%" JSON_INTEGER_FORMAT "/build.json", n);
  put_json(b, name, build);
  snprintf(name, sizeof name, "builds/%" JSON_INTEGER_FORMAT "/parameters.json",
           n);
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", id);
  json_decref(fetch_json(b, name, path));
  snprintf(name, sizeof name, "builds/%" JSON_INTEGER_FORMAT "/logs.txt", n);
  add_build_logs(b, name, id);
}

static void add_template_version(bundle_t *b, const json_t *ws) {
  const char *tv =
      atr__cli_str(json_object_get(ws, "latest_build"), "template_version_id");
  if (!tv || strlen(tv) > 64) {
    put_error(b, "template_version.json",
              "the workspace's latest build names no template version");
    return;
  }
  char path[160];
  snprintf(path, sizeof path, "/api/v2/templateversions/%s", tv);
  json_decref(fetch_json(b, "template_version.json", path));
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/rich-parameters",
           tv);
  json_decref(fetch_json(b, "template_version_rich_parameters.json", path));
}

static void add_workspace(bundle_t *b, const char *ref) {
  char *path = workspace_path(ref);
  json_t *ws = path ? fetch_json(b, "workspace.json", path) : NULL;
  free(path);
  const char *id = atr__cli_str(ws, "id");
  if (!ws || !id || strlen(id) > 64) {
    json_decref(ws);
    return; /* workspace.error.txt says why; the rest hangs off it */
  }
  char list[200];
  snprintf(list, sizeof list, "/api/v2/workspaces/%s/builds?limit=%d", id,
           BUILDS_KEPT);
  json_t *builds = NULL;
  char *why = NULL;
  if (get(b, list, &builds, &why) != 0)
    put_error(b, "builds.json", why);
  free(why);
  size_t i;
  json_t *build;
  json_array_foreach(builds, i, build) {
    add_build(b, build);
  }
  json_decref(builds);
  add_template_version(b, ws);
  json_decref(ws);
}

/* ---- the command ---------------------------------------------------------------- */

static int open_output(atr__cli_t *cli, const char *path, int *fd) {
  *fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (*fd < 0 || fchmod(*fd, 0600) != 0) {
    fprintf(stderr, "%s: cannot write %s: %s\n", cli->what, path,
            strerror(errno));
    if (*fd >= 0)
      close(*fd);
    return 1;
  }
  return 0;
}

static int write_bundle(atr__cli_t *cli, const char *path, const char *ref) {
  int fd = -1;
  if (open_output(cli, path, &fd) != 0)
    return 1;
  bundle_t b = {.cli = cli, .a = archive_write_new(), .now = time(NULL)};
  if (!b.a || archive_write_set_format_pax_restricted(b.a) != ARCHIVE_OK ||
      archive_write_add_filter_gzip(b.a) != ARCHIVE_OK ||
      archive_write_open_fd(b.a, fd) != ARCHIVE_OK)
    b.write_error = strdup("cannot start the archive");
  add_deployment(&b);
  if (ref)
    add_workspace(&b, ref);
  if (b.a && archive_write_close(b.a) != ARCHIVE_OK && !b.write_error)
    b.write_error =
        strdup(archive_error_string(b.a) ? archive_error_string(b.a)
                                         : "cannot finish the archive");
  archive_write_free(b.a);
  if (close(fd) != 0 && !b.write_error)
    b.write_error = strdup(strerror(errno));
  if (b.write_error) {
    fprintf(stderr, "%s: cannot write %s: %s\n", cli->what, path,
            b.write_error);
    free(b.write_error);
    unlink(path);
    return 1;
  }
  if (b.errors > 0)
    fprintf(stderr,
            "%s: %d of %d files could not be fetched; their .error.txt "
            "files in the bundle say why\n",
            cli->what, b.errors, b.files);
  printf("%s\n", path);
  return 0;
}

static int cmd_bundle(atr__cli_t *cli) {
  const char *ref = cli->o.nargs > 0 ? cli->o.args[0] : NULL;
  char *check = ref ? workspace_path(ref) : NULL;
  if (ref && !check)
    return atr__cli_usage_error(
        cli, "%s is not a workspace: use NAME or OWNER/NAME", ref);
  free(check);
  char fallback[64];
  const char *path = cli->o.output_file;
  if (!path) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(fallback, sizeof fallback, "atrium-support-%Y%m%dT%H%M%SZ.tar.gz",
             &tm);
    path = fallback;
  }
  int rc = atr__cli_connect(cli);
  return rc != 0 ? rc : write_bundle(cli, path, ref);
}

static const atr__cli_command_t commands[] = {
    {"support", "bundle", cmd_bundle, ATR__CLI_OUTPUT_FILE, 0, 1,
     "  atrium support bundle [WORKSPACE] [-o FILE]\n"
     "      Collect what support needs into a tar.gz (FILE, default\n"
     "      atrium-support-<time>.tar.gz): build info, the configuration\n"
     "      with secrets redacted, the health report, the plugins, recent\n"
     "      server log lines and a metrics snapshot; with WORKSPACE (NAME\n"
     "      or OWNER/NAME) also the workspace, its last 5 builds with their\n"
     "      logs, and its template version. Prints the file's path.\n"},
};

static const atr__cli_commands_t support = {
    .list = commands,
    .n = sizeof commands / sizeof commands[0],
    .footer = "\n"
              "Needs an owner's session (the debug routes are theirs). What "
              "cannot be\n"
              "fetched is replaced by NAME.error.txt saying why.\n",
    .group_footer = "",
};

int atr_cli_support(const char *name, int argc, char **argv) {
  return atr__cli_main(&support, name, argc, argv);
}
