/* core/cli_workspaces.c — `atrium create|list|show|start|stop|delete|logs|
 * cancel`, and what they share with `atrium templates …` (cli_templates.c):
 * arguments, dispatch, tables, prompts, and following a job's logs.
 *
 * A workspace is named NAME (the signed-in user's) or OWNER/NAME. A
 * command that queues a build follows it: the job's log lines as they are
 * written, then "Build 3 (start) succeeded in 4.2s"; the exit status is 0
 * only when the job succeeded. Ctrl-C stops the following, not the build.
 */
#include "cli_builds.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "atrium/error.h"

#define FIELD_MAX 1024

/* ---- arguments ------------------------------------------------------------ */

enum {
  F_OUTPUT = 1u << 0,
  F_NAME = 1u << 1,
  F_ORG = 1u << 2,
  F_TEMPLATE = 1u << 3,
  F_BUILD = 1u << 4,
  F_PARAM = 1u << 5,
  F_ACTIVATE = 1u << 6,
  F_YES = 1u << 7,
  F_ALL = 1u << 8,
  F_FOLLOW = 1u << 9,
  F_ORPHAN = 1u << 10,
};

enum { KIND_VALUE, KIND_SWITCH, KIND_LIST };

typedef struct flag {
  const char *name;
  char short_name; /* -x, or 0 */
  size_t offset;   /* of a const char *, a bool, or the params array */
  unsigned bit;
  int kind;
} flag_t;

static const flag_t flags[] = {
    {"output", 'o', offsetof(atr__cli_opts_t, output), F_OUTPUT, KIND_VALUE},
    {"name", 0, offsetof(atr__cli_opts_t, name), F_NAME, KIND_VALUE},
    {"org", 0, offsetof(atr__cli_opts_t, org), F_ORG, KIND_VALUE},
    {"template", 't', offsetof(atr__cli_opts_t, template_name), F_TEMPLATE,
     KIND_VALUE},
    {"build", 0, offsetof(atr__cli_opts_t, build), F_BUILD, KIND_VALUE},
    {"parameter", 0, offsetof(atr__cli_opts_t, params), F_PARAM, KIND_LIST},
    {"activate", 0, offsetof(atr__cli_opts_t, activate), F_ACTIVATE,
     KIND_SWITCH},
    {"yes", 'y', offsetof(atr__cli_opts_t, yes), F_YES, KIND_SWITCH},
    {"all", 'a', offsetof(atr__cli_opts_t, all), F_ALL, KIND_SWITCH},
    {"follow", 'f', offsetof(atr__cli_opts_t, follow), F_FOLLOW, KIND_SWITCH},
    {"orphan", 0, offsetof(atr__cli_opts_t, orphan), F_ORPHAN, KIND_SWITCH},
};

typedef struct command {
  const char *group; /* "templates", or NULL at the top level */
  const char *name;
  int (*run)(atr__cli_t *cli);
  unsigned flags;
  int min_args, max_args;
  const char *usage;
} command_t;

static const char usage_footer[] =
    "\n"
    "A workspace is NAME (yours) or OWNER/NAME. Commands that build follow\n"
    "the build's logs and exit 0 only when it succeeded; Ctrl-C stops\n"
    "following (the build goes on; `atrium cancel NAME` cancels it).\n";

static const command_t *current; /* the command being run, for its usage */

static int usage_error(const atr__cli_t *cli, const char *fmt,
                       const char *arg) {
  fprintf(stderr, "%s: ", cli->what);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage:\n%s%s", current->usage, usage_footer);
  return 2;
}

static const flag_t *find_flag(const char *a, size_t *name_len) {
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    const flag_t *f = &flags[i];
    if (a[1] != '-') {
      *name_len = 2;
      if (f->short_name && a[1] == f->short_name && a[2] == '\0')
        return f;
      continue;
    }
    const char *eq = strchr(a + 2, '=');
    *name_len = eq ? (size_t)(eq - a) : strlen(a);
    if (strlen(f->name) == *name_len - 2 &&
        strncmp(f->name, a + 2, *name_len - 2) == 0)
      return f;
  }
  *name_len = strlen(a);
  return NULL;
}

/* One flag at argv[*i] ("--name", "--name=value", "-y"); 0 or 2. */
static int take_flag(atr__cli_t *cli, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  size_t len = 0;
  const flag_t *f = find_flag(a, &len);
  if (!f || !(current->flags & f->bit)) {
    fprintf(stderr, "%s: unknown flag %.*s\n", cli->what, (int)len, a);
    fprintf(stderr, "usage:\n%s%s", current->usage, usage_footer);
    return 2;
  }
  const char *eq = a[len] == '=' ? a + len + 1 : NULL;
  char *field = (char *)&cli->o + f->offset;
  if (f->kind == KIND_SWITCH) {
    if (eq)
      return usage_error(cli, "%s takes no value", a);
    *(bool *)field = true;
    return 0;
  }
  const char *value = eq ? eq : *i + 1 < argc ? argv[++*i] : NULL;
  if (!value)
    return usage_error(cli, "%s needs a value", a);
  if (f->kind == KIND_VALUE) {
    *(const char **)field = value;
    return 0;
  }
  if (cli->o.nparams >= ATR__CLI_MAX_PARAMS)
    return usage_error(cli, "%s", "too many --parameter flags");
  if (!strchr(value, '=') || value[0] == '=')
    return usage_error(cli, "--parameter %s is not NAME=VALUE", value);
  cli->o.params[cli->o.nparams++] = value;
  return 0;
}

static int parse_args(atr__cli_t *cli, int argc, char **argv) {
  atr__cli_opts_t *o = &cli->o;
  bool only_args = false;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    int rc = 0;
    if (!only_args && strcmp(a, "--") == 0)
      only_args = true;
    else if (!only_args && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
      o->help = true;
    else if (!only_args && a[0] == '-' && a[1] != '\0')
      rc = take_flag(cli, argc, argv, &i);
    else if (o->nargs < current->max_args)
      o->args[o->nargs++] = a;
    else
      rc = usage_error(cli, "unexpected argument %s", a);
    if (rc != 0)
      return rc;
  }
  if (o->help)
    return 0;
  if (o->nargs < current->min_args)
    return usage_error(cli, "%s", "missing argument");
  if (o->output && strcmp(o->output, "json") != 0 &&
      strcmp(o->output, "table") != 0)
    return usage_error(cli, "--output is table or json, not \"%s\"", o->output);
  cli->json = o->output && strcmp(o->output, "json") == 0;
  return 0;
}

/* ---- shared helpers ------------------------------------------------------- */

int atr__cli_oom(const atr__cli_t *cli) {
  fprintf(stderr, "%s: %s\n", cli->what, atr_strerror(ATR_ENOMEM));
  return 1;
}

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

const char *atr__cli_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

const char *atr__cli_txt(const json_t *obj, const char *key) {
  const char *s = atr__cli_str(obj, key);
  return s ? s : "-";
}

void atr__cli_print_json(const json_t *j) {
  if (!j)
    return;
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fputc('\n', stdout);
}

const char *atr__cli_time(const char *iso, char buf[32], const char *none) {
  if (!iso || !*iso)
    return none;
  if (strlen(iso) < 19)
    return iso;
  snprintf(buf, 32, "%.19sZ", iso);
  return buf;
}

/* RFC 3339 UTC ("…Z", optional fraction) → seconds since the epoch. */
static bool parse_time(const char *iso, double *out) {
  struct tm tm = {0};
  int n = 0;
  if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double frac = 0;
  if (iso[n] == '.')
    frac = strtod(iso + n, NULL);
  *out = (double)timegm(&tm) + frac;
  return true;
}

double atr__cli_seconds(const char *a, const char *b) {
  double ta, tb;
  if (!parse_time(a, &ta) || !parse_time(b, &tb))
    return -1;
  return tb > ta ? tb - ta : 0;
}

/* "12s ago", "5m ago", "3h ago", "2d ago". */
static const char *ago(const char *iso, char buf[32]) {
  double t;
  if (!parse_time(iso, &t))
    return NULL;
  double d = difftime(time(NULL), (time_t)t);
  if (d < 0)
    d = 0;
  if (d < 60)
    snprintf(buf, 32, "%.0fs ago", d);
  else if (d < 3600)
    snprintf(buf, 32, "%.0fm ago", d / 60);
  else if (d < 86400)
    snprintf(buf, 32, "%.0fh ago", d / 3600);
  else
    snprintf(buf, 32, "%.0fd ago", d / 86400);
  return buf;
}

/* One line of standard input into buf, without its line ending.
 * 0; -1 at end of input; -2 when the line does not fit. */
static int read_line(char *buf, size_t size) {
  if (!fgets(buf, (int)size, stdin))
    return -1;
  size_t n = strlen(buf);
  if (n > 0 && buf[n - 1] != '\n' && !feof(stdin)) {
    OPENSSL_cleanse(buf, size);
    for (int c = getchar(); c != EOF && c != '\n'; c = getchar())
      ; /* drop the rest of the line */
    return -2;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  return 0;
}

/* Echo is off only while a sensitive value is typed; a signal then puts
 * the terminal back before the process ends. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(int sig) {
  if (tty_changed)
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
  signal(sig, SIG_DFL);
  raise(sig);
}

static int read_hidden(char *buf, size_t size) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  struct sigaction on = {.sa_handler = restore_tty}, old[4];
  if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
    return read_line(buf, size);
  struct termios quiet = saved_tty;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &on, &old[i]);
  tty_changed = 1;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  int rc = read_line(buf, size);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
  tty_changed = 0;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &old[i], NULL);
  fputc('\n', stderr);
  return rc;
}

int atr__cli_confirm(const atr__cli_t *cli, bool required,
                     const char *question) {
  if (cli->o.yes)
    return 0;
  if (!isatty(STDIN_FILENO)) {
    if (!required)
      return 0;
    fprintf(stderr,
            "%s: not confirmed: standard input is not a terminal to ask on; "
            "give -y to go ahead\n",
            cli->what);
    return 1;
  }
  char answer[16];
  fprintf(stderr, "%s [y/N] ", question);
  if (read_line(answer, sizeof answer) == 0 &&
      (strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0))
    return 0;
  fprintf(stderr, "%s: not confirmed; nothing was done\n", cli->what);
  return 1;
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

/* ---- tables --------------------------------------------------------------- */

#define MAX_COLS 8

int atr__cli_table_add(atr__cli_table_t *t, const char *const *row) {
  char **grown = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *grown);
  if (!grown)
    return ATR_ENOMEM;
  t->cells = grown;
  for (size_t c = 0; c < t->ncols; c++) {
    const char *v = row[c] && *row[c] ? row[c] : "-";
    if (!(grown[t->nrows * t->ncols + c] = strdup(v))) {
      while (c-- > 0)
        free(grown[t->nrows * t->ncols + c]);
      return ATR_ENOMEM;
    }
  }
  t->nrows++;
  return 0;
}

void atr__cli_table_print(const atr__cli_table_t *t) {
  size_t width[MAX_COLS] = {0};
  for (size_t c = 0; c < t->ncols && c < MAX_COLS; c++) {
    width[c] = strlen(t->head[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t n = strlen(t->cells[r * t->ncols + c]);
      width[c] = n > width[c] ? n : width[c];
    }
  }
  for (size_t r = 0; r <= t->nrows; r++)
    for (size_t c = 0; c < t->ncols && c < MAX_COLS; c++) {
      const char *v = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
      if (c + 1 < t->ncols)
        printf("%-*s  ", (int)width[c], v);
      else
        printf("%s\n", v);
    }
}

void atr__cli_table_free(atr__cli_table_t *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->nrows = 0;
}

/* ---- following a job ------------------------------------------------------ */

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
}

typedef struct follow {
  bool print;
  json_int_t last_id; /* the last log line printed */
  json_t *end;        /* the end event's data */
} follow_t;

static void print_log(follow_t *f, const json_t *line) {
  json_int_t id = json_integer_value(json_object_get(line, "id"));
  if (id > 0 && id <= f->last_id)
    return; /* already shown (a reconnect or the fallback) */
  if (id > 0)
    f->last_id = id;
  if (!f->print)
    return;
  const char *stage = atr__cli_str(line, "stage");
  const char *output = atr__cli_str(line, "output");
  if (stage && *stage)
    printf("[%s] %s\n", stage, output ? output : "");
  else
    printf("%s\n", output ? output : "");
  fflush(stdout);
}

static int on_event(const atr_client_event_t *ev, void *ud) {
  follow_t *f = ud;
  json_t *data = json_loads(ev->data, JSON_DECODE_ANY, NULL);
  if (strcmp(ev->event, "log") == 0 && json_is_object(data)) {
    print_log(f, data);
  } else if (strcmp(ev->event, "end") == 0) {
    json_decref(f->end);
    f->end = data;
    data = NULL;
  }
  json_decref(data);
  return 0;
}

static bool job_ended(const char *status) {
  return status &&
         (strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
          strcmp(status, "canceled") == 0);
}

/* Print the lines after f->last_id; 0 or 1. */
static int print_new_logs(atr__cli_t *cli, const char *object_path,
                          follow_t *f) {
  char *path = NULL;
  if (asprintf(&path, "%s/logs?after=%" JSON_INTEGER_FORMAT, object_path,
               f->last_id) < 0)
    return atr__cli_oom(cli);
  json_t *lines = NULL;
  int rc = atr__cli_get(cli, path, &lines);
  free(path);
  size_t i;
  json_t *line;
  json_array_foreach(lines, i, line) {
    print_log(f, line);
  }
  json_decref(lines);
  return rc;
}

static void nap(double seconds) {
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !got_sigint)
    ;
}

/* Without a stream: ask for the job and its new lines every second. */
static int poll_job(atr__cli_t *cli, const char *object_path, follow_t *f) {
  for (;;) {
    json_t *obj = NULL;
    int rc = atr__cli_get(cli, object_path, &obj);
    json_t *job = json_object_get(obj, "job");
    if (rc == 0)
      rc = print_new_logs(cli, object_path, f);
    if (rc == 0 && job_ended(atr__cli_str(job, "status"))) {
      f->end = json_pack(
          "{s:s, s:s}", "status", atr__cli_str(job, "status"), "error",
          atr__cli_str(job, "error") ? atr__cli_str(job, "error") : "");
      rc = f->end ? 0 : atr__cli_oom(cli);
    }
    json_decref(obj);
    if (rc != 0 || f->end)
      return rc;
    nap(1);
    if (got_sigint)
      return 130;
  }
}

static int stream_job(atr__cli_t *cli, const char *object_path, follow_t *f) {
  char *path = NULL;
  if (asprintf(&path, "%s/logs?follow=true", object_path) < 0)
    return atr__cli_oom(cli);
  atr_client_res_t res;
  char *err = NULL;
  int rc = atr_client_stream(cli->client, path, on_event, f, &res, &err);
  free(path);
  if (rc == ATR_ECANCELED) {
    rc = 130;
  } else if (rc == ATR_EIO && res.status != 0) {
    atr_client_print_error(cli->what, &res);
    rc = 1;
  } else if (rc != 0 && rc != ATR_ENOMEM) {
    /* The logs cannot be streamed from here: ask instead. */
    fprintf(stderr, "%s: %s; polling instead\n", cli->what,
            err ? err : atr_strerror(rc));
    rc = poll_job(cli, object_path, f);
  } else if (rc != 0) {
    rc = atr__cli_oom(cli);
  }
  free(err);
  atr_client_res_free(&res);
  return rc;
}

int atr__cli_follow(atr__cli_t *cli, const char *object_path, bool print,
                    atr__cli_job_end_t *end) {
  end->status = end->error = NULL;
  follow_t f = {.print = print};
  struct sigaction on = {.sa_handler = on_sigint}, old;
  sigemptyset(&on.sa_mask);
  got_sigint = 0;
  sigaction(SIGINT, &on, &old); /* no SA_RESTART: waits end early */
  atr_client_set_interrupt(cli->client, &got_sigint);
  int rc = stream_job(cli, object_path, &f);
  atr_client_set_interrupt(cli->client, NULL);
  sigaction(SIGINT, &old, NULL);
  if (rc == 0) {
    const char *status = atr__cli_str(f.end, "status");
    const char *error = atr__cli_str(f.end, "error");
    end->status = strdup(status ? status : "unknown");
    end->error = strdup(error ? error : "");
    if (!end->status || !end->error) {
      atr__cli_job_end_clear(end);
      rc = atr__cli_oom(cli);
    }
  }
  json_decref(f.end);
  return rc;
}

void atr__cli_job_end_clear(atr__cli_job_end_t *end) {
  free(end->status);
  free(end->error);
  end->status = end->error = NULL;
}

/* ---- workspaces ----------------------------------------------------------- */

/* "owner/name" or "name" (the caller's). */
static int split_ref(const atr__cli_t *cli, const char *ref, char *owner,
                     char *name) {
  const char *slash = strchr(ref, '/');
  int n = slash ? snprintf(owner, FIELD_MAX, "%.*s", (int)(slash - ref), ref)
                : snprintf(owner, FIELD_MAX, "me");
  int m = snprintf(name, FIELD_MAX, "%s", slash ? slash + 1 : ref);
  if (n <= 0 || m <= 0 || n >= FIELD_MAX || m >= FIELD_MAX || strchr(name, '/'))
    return usage_error(cli, "%s is not a workspace: use NAME or OWNER/NAME",
                       ref);
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
static int build_summary(atr__cli_t *cli, const char *build_id,
                         const atr__cli_job_end_t *end) {
  char *path = atr__cli_path("/api/v2/workspacebuilds/%s", build_id, NULL);
  json_t *b = NULL;
  if (!path || atr__cli_get(cli, path, &b) != 0)
    b = NULL;
  free(path);
  const json_t *job = json_object_get(b, "job");
  const char *from = atr__cli_str(job, "started_at");
  double secs = atr__cli_seconds(from ? from : atr__cli_str(job, "created_at"),
                                 atr__cli_str(job, "completed_at"));
  char took[48] = "";
  if (secs >= 0)
    snprintf(took, sizeof took, " in %.1fs", secs);
  bool ok = strcmp(end->status, "succeeded") == 0;
  FILE *out = ok ? stdout : stderr;
  fprintf(out, "Build %" JSON_INTEGER_FORMAT " (%s) %s%s%s%s\n",
          json_integer_value(json_object_get(b, "build_number")),
          atr__cli_txt(b, "transition"), end->status, took,
          end->error[0] ? ": " : "", end->error);
  json_decref(b);
  return ok ? 0 : 1;
}

static int follow_build(atr__cli_t *cli, const char *ref, const json_t *build) {
  const char *id = atr__cli_str(build, "id");
  if (!id) {
    fprintf(stderr, "%s: the server's answer has no build id\n", cli->what);
    return 1;
  }
  char *path = atr__cli_path("/api/v2/workspacebuilds/%s", id, NULL);
  if (!path)
    return atr__cli_oom(cli);
  atr__cli_job_end_t end;
  int rc = atr__cli_follow(cli, path, true, &end);
  free(path);
  if (rc == 130)
    fprintf(stderr,
            "%s: stopped following; the build goes on. Run `atrium cancel "
            "%s` to cancel it.\n",
            cli->what, ref);
  if (rc == 0)
    rc = build_summary(cli, id, &end);
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
  if (rc == 0)
    rc = follow_build(cli, ref, build);
  free(path);
  json_decref(body);
  json_decref(values);
  json_decref(build);
  json_decref(ws);
  return rc;
}

static int cmd_start(atr__cli_t *cli) {
  return new_build(cli, "start");
}

static int cmd_stop(atr__cli_t *cli) {
  return new_build(cli, "stop");
}

static int cmd_delete(atr__cli_t *cli) {
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
  int rc = hidden ? read_hidden(answer, sizeof answer)
                  : read_line(answer, sizeof answer);
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

/* The template by name in the organization; *tpl owned. */
static int find_template(atr__cli_t *cli, const char *org, const char *name,
                         json_t **tpl) {
  char *path =
      atr__cli_path("/api/v2/organizations/%s/templates/%s", org, name);
  if (!path)
    return atr__cli_oom(cli);
  int rc = atr__cli_get(cli, path, tpl);
  free(path);
  return rc;
}

static int create_body(atr__cli_t *cli, const char *name, json_t **body) {
  char *org = NULL;
  json_t *tpl = NULL, *schema = NULL, *values = NULL;
  *body = NULL;
  int rc = atr__cli_org(cli, &org);
  if (rc == 0)
    rc = find_template(cli, org, cli->o.template_name, &tpl);
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

static int cmd_create(atr__cli_t *cli) {
  if (!cli->o.template_name)
    return usage_error(cli, "%s", "which template? give --template NAME");
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
  enum { PAGE = 100 };
  json_t *all = json_array();
  int rc = all ? 0 : atr__cli_oom(cli);
  for (size_t offset = 0; rc == 0;) {
    char path[128];
    snprintf(path, sizeof path, "/api/v2/workspaces?%slimit=%d&offset=%zu",
             cli->o.all ? "" : "owner=me&", PAGE, offset);
    json_t *page = NULL;
    rc = atr__cli_get(cli, path, &page);
    json_t *list = json_object_get(page, "workspaces");
    json_int_t count = json_integer_value(json_object_get(page, "count"));
    size_t n = json_array_size(list);
    json_array_extend(all, list);
    json_decref(page);
    offset += n;
    if (n == 0 || (json_int_t)offset >= count)
      break;
  }
  *out = rc == 0 ? json_pack("{s:O, s:I}", "workspaces", all, "count",
                             (json_int_t)json_array_size(all))
                 : NULL;
  json_decref(all);
  return rc == 0 && !*out ? atr__cli_oom(cli) : rc;
}

static const char *const ws_head[] = {"WORKSPACE", "TEMPLATE", "STATUS",
                                      "LAST BUILT", "OUTDATED"};

static int cmd_list(atr__cli_t *cli) {
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
      char name[2 * FIELD_MAX], built[32];
      snprintf(name, sizeof name, "%s%s%s",
               cli->o.all ? atr__cli_str(w, "owner_name") : "",
               cli->o.all ? "/" : "", atr__cli_str(w, "name"));
      const char *row[] = {
          name, atr__cli_str(w, "template_name"), build_status(b),
          ago(atr__cli_str(b, "created_at"), built),
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

static int cmd_show(atr__cli_t *cli) {
  json_t *ws = NULL;
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
  json_decref(ws);
  return 0;
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
    return usage_error(cli, "--build %s is not a build number", cli->o.build);
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

static int cmd_logs(atr__cli_t *cli) {
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
  if (rc == 0 && cli->o.follow) {
    rc = follow_build(cli, cli->o.args[0], build);
    rc = rc == 130 ? 130 : 0; /* the logs were shown */
  } else if (rc == 0) {
    follow_t f = {.print = true};
    const json_t *job = json_object_get(build, "job");
    rc = print_new_logs(cli, path, &f);
    const char *error = atr__cli_str(job, "error");
    if (rc == 0 && error && *error)
      fprintf(stderr, "Build %" JSON_INTEGER_FORMAT " (%s) %s: %s\n",
              json_integer_value(json_object_get(build, "build_number")),
              atr__cli_txt(build, "transition"), build_status(build), error);
    else if (rc == 0 && !job_ended(atr__cli_str(job, "status")))
      fprintf(stderr, "(the build is %s; follow it with -f)\n",
              build_status(build));
  }
  free(path);
  json_decref(build);
  json_decref(ws);
  return rc;
}

static int cmd_cancel(atr__cli_t *cli) {
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
    path[strlen(path) - strlen("/cancel")] = '\0';
    atr__cli_job_end_t end;
    rc = atr__cli_follow(cli, path, false, &end);
    if (rc == 0) {
      build_summary(cli, id, &end);
      rc = strcmp(end.status, "canceled") == 0 ? 0 : 1;
    }
    atr__cli_job_end_clear(&end);
  }
  free(path);
  json_decref(out);
  json_decref(ws);
  return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

static const command_t commands[] = {
    {"templates", "push", atr__cli_templates_push,
     F_NAME | F_ORG | F_ACTIVATE | F_YES, 1, 1,
     "  atrium templates push DIR [--name N] [--activate] [--org ORG] [-y]\n"
     "      Upload DIR (with its template.yaml) as a new version of template\n"
     "      N (default: DIR's name) and show the import's logs. A new\n"
     "      template is created with it; an existing one only moves to it\n"
     "      with --activate.\n"},
    {"templates", "list", atr__cli_templates_list, F_OUTPUT | F_ORG, 0, 0,
     "  atrium templates list [--org ORG]\n"
     "      The organization's templates.\n"},
    {"templates", "versions", atr__cli_templates_versions, F_OUTPUT | F_ORG, 1,
     1,
     "  atrium templates versions NAME [--org ORG]\n"
     "      A template's versions, newest first.\n"},
    {"templates", "show", atr__cli_templates_show, F_OUTPUT | F_ORG, 1, 1,
     "  atrium templates show NAME [--org ORG]\n"
     "      A template and the parameters of its active version.\n"},
    {NULL, "create", cmd_create, F_TEMPLATE | F_PARAM | F_ORG | F_YES, 1, 1,
     "  atrium create NAME --template T [--parameter NAME=VALUE]... "
     "[--org ORG] [-y]\n"
     "      Create a workspace from template T and follow its first build.\n"
     "      Required parameters not given are asked for on a terminal.\n"},
    {NULL, "list", cmd_list, F_OUTPUT | F_ALL, 0, 0,
     "  atrium list [--all] [--output json]\n"
     "      Your workspaces (--all: every one you can see).\n"},
    {NULL, "show", cmd_show, F_OUTPUT, 1, 1,
     "  atrium show NAME\n"
     "      A workspace: its latest build, parameters and resources.\n"},
    {NULL, "start", cmd_start, F_PARAM, 1, 1,
     "  atrium start NAME [--parameter NAME=VALUE]...\n"
     "      Start a workspace (changing mutable parameters if given).\n"},
    {NULL, "stop", cmd_stop, 0, 1, 1,
     "  atrium stop NAME\n"
     "      Stop a workspace.\n"},
    {NULL, "delete", cmd_delete, F_YES | F_ORPHAN, 1, 1,
     "  atrium delete NAME [-y] [--orphan]\n"
     "      Delete a workspace and what it made (--orphan: leave that in\n"
     "      place). Asks first; without a terminal give -y.\n"},
    {NULL, "logs", cmd_logs, F_FOLLOW | F_BUILD, 1, 1,
     "  atrium logs NAME [-f] [--build N]\n"
     "      The logs of the latest build (or build N); -f follows them.\n"},
    {NULL, "cancel", cmd_cancel, 0, 1, 1,
     "  atrium cancel NAME\n"
     "      Cancel the workspace's running build and wait until it stops.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

bool atr_cli_builds_handles(const char *cmd) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].group ? commands[i].group : commands[i].name, cmd) ==
        0)
      return true;
  return false;
}

static const command_t *find_command(const char *group, const char *name) {
  for (size_t i = 0; i < NCOMMANDS; i++) {
    const command_t *c = &commands[i];
    bool same_group =
        group ? c->group && strcmp(c->group, group) == 0 : c->group == NULL;
    if (same_group && strcmp(c->name, name) == 0)
      return c;
  }
  return NULL;
}

static bool is_group(const char *cmd) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].group && strcmp(commands[i].group, cmd) == 0)
      return true;
  return false;
}

static const command_t *pick(const char *cmd, int *argc, char ***argv,
                             int *status) {
  if (!is_group(cmd))
    return find_command(NULL, cmd);
  const char *sub = *argc > 0 ? (*argv)[0] : NULL;
  bool help = sub && (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 ||
                      strcmp(sub, "help") == 0);
  const command_t *c = sub && !help ? find_command(cmd, sub) : NULL;
  if (c) {
    (*argc)--;
    (*argv)++;
    return c;
  }
  FILE *out = help ? stdout : stderr;
  if (sub && !help)
    fprintf(stderr, "atrium %s: unknown command \"%s\"\n", cmd, sub);
  else if (!sub)
    fprintf(stderr, "atrium %s: which command?\n", cmd);
  fputs("usage:\n", out);
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].group && strcmp(commands[i].group, cmd) == 0)
      fputs(commands[i].usage, out);
  *status = help ? 0 : 2;
  return NULL;
}

int atr_cli_builds(const char *cmd, int argc, char **argv) {
  int status = 2;
  const command_t *c = pick(cmd, &argc, &argv, &status);
  if (!c)
    return status;
  current = c;
  atr__cli_t cli = {0};
  snprintf(cli.what, sizeof cli.what, "atrium %s%s%s", c->group ? c->group : "",
           c->group ? " " : "", c->name);
  status = parse_args(&cli, argc, argv);
  if (status == 0 && cli.o.help) {
    printf("usage:\n%s%s", c->usage, usage_footer);
    return 0;
  }
  if (status != 0)
    return status;
  /* Unbuffered, so no copy of a typed secret lingers in stdio's buffer. */
  setvbuf(stdin, NULL, _IONBF, 0);
  status = c->run(&cli);
  atr_client_free(cli.client);
  fflush(stdout);
  return status;
}
