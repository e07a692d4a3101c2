/* core/cli_client.c — `atrium login|logout|whoami|users …|tokens …`:
 * arguments, prompts, and the server's JSON turned into tables.
 *
 * A password is read once (from the terminal without echo, otherwise the
 * first line of standard input), sent, and wiped. Neither a password nor a
 * session token is ever printed; the one exception is the new token that
 * `tokens create` exists to show, as Coder does. */
#include "cli_client.h"

#include <ctype.h>
#include <jansson.h>
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
#include "client.h"

#define SECRET_MAX 1024
#define FIELD_MAX 256

/* ---- arguments ------------------------------------------------------------ */

typedef struct opts {
  const char *output, *email, *username, *name, *lifetime;
  bool password_stdin, first_user, help;
  const char *args[2];
  int nargs;
} opts_t;

enum {
  F_OUTPUT = 1u << 0,
  F_EMAIL = 1u << 1,
  F_USERNAME = 1u << 2,
  F_NAME = 1u << 3,
  F_LIFETIME = 1u << 4,
  F_PASSWORD_STDIN = 1u << 5,
  F_FIRST_USER = 1u << 6,
};

typedef struct flag {
  const char *name;
  size_t offset; /* of a const char *, or of a bool for a switch */
  unsigned bit;
  bool is_switch;
} flag_t;

static const flag_t flags[] = {
    {"output", offsetof(opts_t, output), F_OUTPUT, false},
    {"email", offsetof(opts_t, email), F_EMAIL, false},
    {"username", offsetof(opts_t, username), F_USERNAME, false},
    {"name", offsetof(opts_t, name), F_NAME, false},
    {"lifetime", offsetof(opts_t, lifetime), F_LIFETIME, false},
    {"password-stdin", offsetof(opts_t, password_stdin), F_PASSWORD_STDIN,
     true},
    {"first-user", offsetof(opts_t, first_user), F_FIRST_USER, true},
};

typedef struct cli cli_t;

typedef struct command {
  const char *group; /* "users", "tokens", or NULL at the top level */
  const char *name;
  int (*run)(cli_t *cli);
  unsigned flags;
  int min_args, max_args;
  const char *usage;
} command_t;

struct cli {
  const command_t *cmd;
  char what[64]; /* "atrium users list": the prefix of every message */
  opts_t o;
  bool json;
  atr_client_t *client;
};

static const char usage_footer[] =
    "\n"
    "Every command takes --output table|json (json prints the server's "
    "answer).\n"
    "The session is kept in $ATRIUM_CONFIG_DIR, else "
    "$XDG_CONFIG_HOME/atrium,\n"
    "else ~/.config/atrium; $ATRIUM_URL and $ATRIUM_SESSION_TOKEN override "
    "it.\n";

static const flag_t *find_flag(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
      return &flags[i];
  return NULL;
}

static int usage_error(const cli_t *cli, const char *fmt, const char *arg) {
  fprintf(stderr, "%s: ", cli->what);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage:\n%s%s", cli->cmd->usage, usage_footer);
  return 2;
}

/* One flag at argv[*i] ("--name", "--name=value", "-o"); 0 or 2. */
static int take_flag(cli_t *cli, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  const char *name = strcmp(a, "-o") == 0 ? "output" : a + 2;
  if (a[1] != '-' && strcmp(a, "-o") != 0)
    return usage_error(cli, "unknown flag %s", a);
  const char *eq = strchr(name, '=');
  const flag_t *f = find_flag(name, eq ? (size_t)(eq - name) : strlen(name));
  if (!f || !(cli->cmd->flags & f->bit)) {
    fprintf(stderr, "%s: unknown flag %.*s\n", cli->what,
            (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    fprintf(stderr, "usage:\n%s%s", cli->cmd->usage, usage_footer);
    return 2;
  }
  char *field = (char *)&cli->o + f->offset;
  if (f->is_switch) {
    if (eq)
      return usage_error(cli, "%s takes no value", a);
    *(bool *)field = true;
    return 0;
  }
  const char *value = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
  if (!value)
    return usage_error(cli, "%s needs a value", a);
  *(const char **)field = value;
  return 0;
}

static int parse_args(cli_t *cli, int argc, char **argv) {
  opts_t *o = &cli->o;
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
    else if (o->nargs < cli->cmd->max_args)
      o->args[o->nargs++] = a;
    else
      rc = usage_error(cli, "unexpected argument %s", a);
    if (rc != 0)
      return rc;
  }
  if (o->help)
    return 0;
  if (o->nargs < cli->cmd->min_args)
    return usage_error(cli, "%s", "missing argument");
  if (o->output && strcmp(o->output, "json") != 0 &&
      strcmp(o->output, "table") != 0)
    return usage_error(cli, "--output is table or json, not \"%s\"", o->output);
  cli->json = o->output && strcmp(o->output, "json") == 0;
  return 0;
}

/* ---- prompts and passwords ------------------------------------------------ */

/* One line of standard input into buf, without its line ending.
 * 0; -1 at end of input; -2 when the line does not fit. */
static int read_line(char *buf, size_t size) {
  if (!fgets(buf, (int)size, stdin))
    return -1;
  size_t n = strlen(buf);
  bool whole = n > 0 && buf[n - 1] == '\n';
  if (!whole && !feof(stdin)) {
    OPENSSL_cleanse(buf, size);
    for (int c = getchar(); c != EOF && c != '\n'; c = getchar())
      ; /* drop the rest of the line */
    return -2;
  }
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  return 0;
}

/* Echo stays off only while a password is typed; a signal then puts the
 * terminal back before the process ends. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(int sig) {
  if (tty_changed)
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
  signal(sig, SIG_DFL);
  raise(sig);
}

static int read_hidden(const char *prompt, char *buf, size_t size) {
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
  fputs(prompt, stderr); /* after echo is off: typing ahead stays hidden */
  int rc = read_line(buf, size);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
  tty_changed = 0;
  for (size_t i = 0; i < 4; i++)
    sigaction(sigs[i], &old[i], NULL);
  fputc('\n', stderr);
  return rc;
}

static int input_error(const cli_t *cli, int rc) {
  fprintf(stderr, "%s: %s\n", cli->what,
          rc == -2 ? "the line is too long" : "no input");
  return 2;
}

/* The password into buf: from a terminal without echo (twice when
 * confirm), otherwise standard input's first line. 0, or 2 said why. */
static int read_password(const cli_t *cli, bool confirm, char *buf,
                         size_t size) {
  bool tty = isatty(STDIN_FILENO);
  int rc = tty ? read_hidden("Password: ", buf, size) : read_line(buf, size);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what,
            rc == -2 ? "the password is too long"
            : tty    ? "no password given"
                     : "no password on standard input (its first line is "
                       "the password)");
    return 2;
  }
  if (tty && confirm) {
    char again[SECRET_MAX];
    rc = read_hidden("Confirm password: ", again, sizeof again);
    bool same = rc == 0 && strcmp(again, buf) == 0;
    OPENSSL_cleanse(again, sizeof again);
    if (!same) {
      fprintf(stderr, "%s: the passwords do not match\n", cli->what);
      rc = 2;
    }
  }
  if (rc == 0 && buf[0] == '\0') {
    fprintf(stderr, "%s: the password is empty\n", cli->what);
    rc = 2;
  }
  if (rc != 0)
    OPENSSL_cleanse(buf, size);
  return rc;
}

/* The --flag's value, or on a terminal an answer to prompt (into buf). */
static int ask(const cli_t *cli, const char *flag, const char *given,
               const char *prompt, char *buf, size_t size, const char **out) {
  *out = given;
  if (given)
    return 0;
  if (!isatty(STDIN_FILENO)) {
    fprintf(stderr,
            "%s: give --%s (standard input is not a terminal to ask on)\n",
            cli->what, flag);
    return 2;
  }
  fputs(prompt, stderr);
  int rc = read_line(buf, size);
  if (rc != 0)
    return input_error(cli, rc);
  *out = buf;
  return 0;
}

/* jansson keeps its own copy of a string: wipe a secret's before the
 * object is freed. */
static void wipe_member(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  const char *s = json_string_value(v);
  if (s)
    OPENSSL_cleanse((void *)s, json_string_length(v));
}

/* ---- output --------------------------------------------------------------- */

static const char *jstr(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

static void print_json(const json_t *j) {
  if (!j)
    return;
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fputc('\n', stdout);
}

/* "2026-01-02T15:04:05.123456Z" → "2026-01-02T15:04:05Z"; NULL → none. */
static const char *short_time(const char *iso, char buf[32], const char *none) {
  if (!iso || !*iso)
    return none;
  if (strlen(iso) < 19)
    return iso;
  snprintf(buf, 32, "%.19sZ", iso);
  return buf;
}

/* Role names joined by ", "; entries are {"name": …} or plain strings. */
static void roles_text(const json_t *roles, char *buf, size_t size) {
  size_t i, n = 0;
  json_t *r;
  buf[0] = '\0';
  json_array_foreach(roles, i, r) {
    const char *name =
        json_is_string(r) ? json_string_value(r) : jstr(r, "name");
    if (name && n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
  }
  if (buf[0] == '\0')
    snprintf(buf, size, "none");
}

typedef struct table {
  size_t ncols, nrows;
  const char *const *head;
  char **cells; /* nrows * ncols, owned */
} table_t;

static int table_add(table_t *t, const char *const *row) {
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

static void table_print(const table_t *t) {
  size_t width[8] = {0};
  for (size_t c = 0; c < t->ncols && c < 8; c++) {
    width[c] = strlen(t->head[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t n = strlen(t->cells[r * t->ncols + c]);
      width[c] = n > width[c] ? n : width[c];
    }
  }
  for (size_t r = 0; r <= t->nrows; r++)
    for (size_t c = 0; c < t->ncols && c < 8; c++) {
      const char *v = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
      if (c + 1 < t->ncols)
        printf("%-*s  ", (int)width[c], v);
      else
        printf("%s\n", v);
    }
}

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
}

static const char *const user_head[] = {"USERNAME", "EMAIL", "STATUS", "ROLES",
                                        "CREATED AT"};

static int add_user_row(table_t *t, const json_t *u) {
  char roles[FIELD_MAX], created[32];
  roles_text(json_object_get(u, "roles"), roles, sizeof roles);
  const char *row[] = {jstr(u, "username"), jstr(u, "email"), jstr(u, "status"),
                       roles, short_time(jstr(u, "created_at"), created, NULL)};
  return table_add(t, row);
}

/* Users (an array) as a table; 0, or 1 after an error message. */
static int print_users(const cli_t *cli, const json_t *users) {
  table_t t = {.ncols = 5, .head = user_head};
  size_t i;
  json_t *u;
  int rc = 0;
  json_array_foreach(users, i, u) {
    if (rc == 0)
      rc = add_user_row(&t, u);
  }
  if (rc == 0)
    table_print(&t);
  else
    fprintf(stderr, "%s: %s\n", cli->what, atr_strerror(rc));
  table_free(&t);
  return rc == 0 ? 0 : 1;
}

/* ---- sessions ------------------------------------------------------------- */

static const char *env_value(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static int out_of_memory(const cli_t *cli) {
  fprintf(stderr, "%s: %s\n", cli->what, atr_strerror(ATR_ENOMEM));
  return 1;
}

/* A client for the stored (or overridden) session; 0, or 1 said why. */
static int connect_session(cli_t *cli) {
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
  return cli->client ? 0 : out_of_memory(cli);
}

/* GET path; prints the answer as JSON when asked, else gives it back. */
static int get(cli_t *cli, const char *path, json_t **out) {
  return atr_client_request(cli->client, cli->what, "GET", path, NULL, out);
}

/* ---- login, logout, whoami ---------------------------------------------- */

/* "host:3000" → "https://host:3000"; only http and https are spoken. */
static int base_url(const cli_t *cli, const char *in, char **out) {
  int n;
  if (!strstr(in, "://"))
    n = asprintf(out, "https://%s", in);
  else if (strncasecmp(in, "http://", 7) == 0 ||
           strncasecmp(in, "https://", 8) == 0)
    n = asprintf(out, "%s", in);
  else
    return usage_error(cli, "%s is not an http:// or https:// URL", in);
  return n < 0 ? out_of_memory(cli) : 0;
}

static int create_first_user(cli_t *cli, const char *email,
                             const char *username, const char *password) {
  json_t *body = json_pack("{s:s, s:s, s:s}", "email", email, "username",
                           username, "password", password);
  if (body && cli->o.name)
    json_object_set_new(body, "name", json_string(cli->o.name));
  json_t *out = NULL;
  int rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                     "/api/v2/users/first", body, &out)
                : out_of_memory(cli);
  wipe_member(body, "password");
  json_decref(body);
  json_decref(out);
  if (rc == 0 && !cli->json)
    printf("Created the first user, %s.\n", username);
  return rc;
}

/* Log in, keep the session, and give the client its token. */
static int sign_in(cli_t *cli, const char *email, const char *password) {
  json_t *body = json_pack("{s:s, s:s}", "email", email, "password", password);
  json_t *out = NULL;
  int rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                     "/api/v2/users/login", body, &out)
                : out_of_memory(cli);
  wipe_member(body, "password");
  json_decref(body);
  const char *token = jstr(out, "session_token");
  if (rc == 0 && !token) {
    fprintf(stderr, "%s: the server's answer has no session_token\n",
            cli->what);
    rc = 1;
  }
  char *err = NULL;
  if (rc == 0 && atr_client_set_token(cli->client, token) != 0)
    rc = out_of_memory(cli);
  else if (rc == 0 && atr_client_session_save(atr_client_url(cli->client),
                                              token, &err) != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : "cannot save");
    rc = 1;
  }
  free(err);
  wipe_member(out, "session_token");
  json_decref(out);
  return rc;
}

static int cmd_login(cli_t *cli) {
  const opts_t *o = &cli->o;
  const char *url = o->nargs > 0 ? o->args[0] : env_value("ATRIUM_URL");
  if (!url)
    return usage_error(cli, "%s", "which server? give its URL");
  if (!o->first_user && (o->username || o->name))
    return usage_error(cli, "%s", "--username and --name go with --first-user");
  char emailbuf[FIELD_MAX], userbuf[FIELD_MAX], password[SECRET_MAX];
  const char *email = NULL, *username = NULL;
  char *base = NULL;
  int rc = base_url(cli, url, &base);
  if (rc == 0)
    rc = ask(cli, "email", o->email, "Email: ", emailbuf, sizeof emailbuf,
             &email);
  if (rc == 0 && o->first_user)
    rc = ask(cli, "username", o->username, "Username: ", userbuf,
             sizeof userbuf, &username);
  if (rc == 0)
    rc = read_password(cli, o->first_user, password, sizeof password);
  if (rc == 0 && !(cli->client = atr_client_new(base, NULL)))
    rc = out_of_memory(cli);
  free(base);
  if (rc != 0)
    return rc;
  if (o->first_user)
    rc = create_first_user(cli, email, username, password);
  if (rc == 0)
    rc = sign_in(cli, email, password);
  OPENSSL_cleanse(password, sizeof password);
  json_t *me = NULL;
  if (rc == 0)
    rc = get(cli, "/api/v2/users/me", &me);
  if (rc == 0 && cli->json)
    print_json(me);
  else if (rc == 0)
    printf("Signed in to %s as %s\n", atr_client_url(cli->client),
           jstr(me, "username") ? jstr(me, "username") : "?");
  json_decref(me);
  return rc;
}

static int cmd_logout(cli_t *cli) {
  /* A token from the environment is not the stored one: leave the file. */
  bool stored = env_value("ATRIUM_SESSION_TOKEN") == NULL;
  int rc = connect_session(cli);
  if (rc != 0)
    return rc;
  atr_client_res_t res;
  char *err = NULL;
  rc = atr_client_call(cli->client, "POST", "/api/v2/users/logout", NULL, &res,
                       &err);
  bool ended = rc == 0 && res.status >= 200 && res.status <= 299;
  /* 401: the server had already ended this session. */
  bool gone = ended || (rc == 0 && res.status == 401);
  if (rc != 0)
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
  else if (!gone)
    atr_client_print_error(cli->what, &res);
  free(err);
  err = NULL;
  bool removed = false;
  if (stored && atr_client_session_remove(&removed, &err) != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : "cannot remove");
    gone = false;
  }
  free(err);
  if (gone && cli->json && ended)
    print_json(res.body);
  else if (gone)
    printf("Signed out of %s\n", atr_client_url(cli->client));
  atr_client_res_free(&res);
  return gone ? 0 : 1;
}

static int cmd_whoami(cli_t *cli) {
  json_t *me = NULL;
  int rc = connect_session(cli);
  if (rc == 0)
    rc = get(cli, "/api/v2/users/me", &me);
  if (rc == 0 && cli->json) {
    print_json(me);
  } else if (rc == 0) {
    char roles[FIELD_MAX];
    roles_text(json_object_get(me, "roles"), roles, sizeof roles);
    printf("%s (%s) roles: %s\n", jstr(me, "username"), jstr(me, "email"),
           roles);
  }
  json_decref(me);
  return rc;
}

/* ---- users ---------------------------------------------------------------- */

/* Every user, a page at a time, as one answer: {"users": […], "count"}. */
static int list_users(cli_t *cli, json_t **out) {
  enum { PAGE = 1000 }; /* the server's largest limit */
  json_t *all = json_array();
  json_int_t count = 0;
  int rc = all ? 0 : out_of_memory(cli);
  for (size_t offset = 0; rc == 0;) {
    char path[80];
    snprintf(path, sizeof path, "/api/v2/users?limit=%d&offset=%zu", PAGE,
             offset);
    json_t *page = NULL;
    rc = get(cli, path, &page);
    json_t *users = json_object_get(page, "users");
    count = json_integer_value(json_object_get(page, "count"));
    size_t n = json_array_size(users);
    json_array_extend(all, users);
    json_decref(page);
    offset += n;
    if (n == 0 || (json_int_t)offset >= count)
      break;
  }
  *out = rc == 0 ? json_pack("{s:o, s:I}", "users", all, "count", count) : NULL;
  if (rc != 0)
    json_decref(all);
  return rc == 0 && !*out ? out_of_memory(cli) : rc;
}

static int cmd_users_list(cli_t *cli) {
  json_t *out = NULL;
  int rc = connect_session(cli);
  if (rc == 0)
    rc = list_users(cli, &out);
  if (rc == 0 && cli->json)
    print_json(out);
  else if (rc == 0)
    rc = print_users(cli, json_object_get(out, "users"));
  json_decref(out);
  return rc;
}

static int cmd_users_create(cli_t *cli) {
  const opts_t *o = &cli->o;
  char emailbuf[FIELD_MAX], userbuf[FIELD_MAX], password[SECRET_MAX];
  const char *email = NULL, *username = NULL;
  int rc = connect_session(cli);
  if (rc == 0)
    rc = ask(cli, "email", o->email, "Email: ", emailbuf, sizeof emailbuf,
             &email);
  if (rc == 0)
    rc = ask(cli, "username", o->username, "Username: ", userbuf,
             sizeof userbuf, &username);
  if (rc == 0)
    rc = read_password(cli, true, password, sizeof password);
  if (rc != 0)
    return rc;
  json_t *body = json_pack("{s:s, s:s, s:s}", "email", email, "username",
                           username, "password", password);
  OPENSSL_cleanse(password, sizeof password);
  if (body && o->name)
    json_object_set_new(body, "name", json_string(o->name));
  json_t *out = NULL;
  rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                 "/api/v2/users", body, &out)
            : out_of_memory(cli);
  wipe_member(body, "password");
  json_decref(body);
  if (rc == 0 && cli->json)
    print_json(out);
  else if (rc == 0)
    printf("Created user %s (%s).\n",
           jstr(out, "username") ? jstr(out, "username") : username,
           jstr(out, "email") ? jstr(out, "email") : email);
  json_decref(out);
  return rc;
}

/* "/api/v2/users/<USER escaped><suffix>" (malloc'd), or NULL. */
static char *user_path(const char *user, const char *suffix) {
  char *escaped = atr_client_escape(user), *path = NULL;
  if (escaped && asprintf(&path, "/api/v2/users/%s%s", escaped, suffix) < 0)
    path = NULL;
  free(escaped);
  return path;
}

static int cmd_users_show(cli_t *cli) {
  json_t *out = NULL;
  int rc = connect_session(cli);
  char *path = rc == 0 ? user_path(cli->o.args[0], "") : NULL;
  if (rc == 0 && !path)
    rc = out_of_memory(cli);
  if (rc == 0)
    rc = get(cli, path, &out);
  free(path);
  json_t *one = json_array();
  json_array_append(one, out);
  if (rc == 0 && cli->json)
    print_json(out);
  else if (rc == 0)
    rc = print_users(cli, one);
  json_decref(one);
  json_decref(out);
  return rc;
}

/* PUT /api/v2/users/{user}/status/<action> */
static int set_status(cli_t *cli, const char *action, const char *done) {
  json_t *out = NULL;
  char suffix[32];
  snprintf(suffix, sizeof suffix, "/status/%s", action);
  int rc = connect_session(cli);
  char *path = rc == 0 ? user_path(cli->o.args[0], suffix) : NULL;
  if (rc == 0 && !path)
    rc = out_of_memory(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "PUT", path, NULL, &out);
  free(path);
  if (rc == 0 && cli->json)
    print_json(out);
  else if (rc == 0)
    printf("%s %s.\n", done,
           jstr(out, "username") ? jstr(out, "username") : cli->o.args[0]);
  json_decref(out);
  return rc;
}

static int cmd_users_suspend(cli_t *cli) {
  return set_status(cli, "suspend", "Suspended");
}

static int cmd_users_activate(cli_t *cli) {
  return set_status(cli, "activate", "Activated");
}

/* ---- tokens --------------------------------------------------------------- */

/* "90s", "30m", "720h", "30d", "1h30m" → seconds. -1 when not a
 * positive duration. */
static int parse_lifetime(const char *s, int64_t *secs) {
  int64_t total = 0;
  if (!*s)
    return -1;
  while (*s) {
    if (!isdigit((unsigned char)*s))
      return -1;
    char *end = NULL;
    unsigned long long n = strtoull(s, &end, 10);
    int64_t unit = *end == 'd'   ? 86400
                   : *end == 'h' ? 3600
                   : *end == 'm' ? 60
                   : *end == 's' ? 1
                                 : 0;
    if (unit == 0 || n > (unsigned long long)((INT64_MAX - total) / unit))
      return -1;
    total += (int64_t)n * unit;
    s = end + 1;
  }
  if (total == 0)
    return -1;
  *secs = total;
  return 0;
}

static int cmd_tokens_create(cli_t *cli) {
  int64_t lifetime = 0;
  if (cli->o.lifetime && parse_lifetime(cli->o.lifetime, &lifetime) != 0)
    return usage_error(cli,
                       "--lifetime %s is not a duration like 90s, 30m, "
                       "720h, 30d or 1h30m",
                       cli->o.lifetime);
  int rc = connect_session(cli);
  if (rc != 0)
    return rc;
  /* The server wants a name; Coder's CLI makes one up too. */
  char made_up[32];
  time_t now = time(NULL);
  struct tm tm;
  strftime(made_up, sizeof made_up, "cli-%Y%m%d-%H%M%S", gmtime_r(&now, &tm));
  json_t *body =
      json_pack("{s:s}", "token_name", cli->o.name ? cli->o.name : made_up);
  json_t *out = NULL;
  if (body && cli->o.lifetime)
    json_object_set_new(body, "lifetime", json_integer(lifetime));
  rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                 "/api/v2/users/me/keys/tokens", body, &out)
            : out_of_memory(cli);
  json_decref(body);
  const char *key = jstr(out, "key");
  if (rc == 0 && cli->json) {
    print_json(out);
  } else if (rc == 0 && key) {
    printf("%s\n", key);
  } else if (rc == 0) {
    fprintf(stderr, "%s: the server's answer has no key\n", cli->what);
    rc = 1;
  }
  wipe_member(out, "key");
  json_decref(out);
  return rc;
}

/* The token list: the answer is an array (as Coder's) or {"tokens": […]}. */
static json_t *tokens_of(json_t *answer) {
  return json_is_array(answer) ? answer : json_object_get(answer, "tokens");
}

static const char *const token_head[] = {"ID", "NAME", "LAST USED",
                                         "EXPIRES AT", "CREATED AT"};

static int cmd_tokens_list(cli_t *cli) {
  json_t *out = NULL;
  int rc = connect_session(cli);
  if (rc == 0)
    rc = get(cli, "/api/v2/users/me/keys/tokens", &out);
  if (rc == 0 && cli->json) {
    print_json(out);
    json_decref(out);
    return 0;
  }
  table_t t = {.ncols = 5, .head = token_head};
  size_t i;
  json_t *k;
  json_array_foreach(tokens_of(out), i, k) {
    char used[32], expires[32], created[32];
    const char *row[] = {jstr(k, "id"), jstr(k, "token_name"),
                         short_time(jstr(k, "last_used"), used, "never"),
                         short_time(jstr(k, "expires_at"), expires, NULL),
                         short_time(jstr(k, "created_at"), created, NULL)};
    if (rc == 0 && table_add(&t, row) != 0)
      rc = out_of_memory(cli);
  }
  if (rc == 0)
    table_print(&t);
  table_free(&t);
  json_decref(out);
  return rc;
}

/* The server takes a token's id or its name in place of {keyid}. */
static int cmd_tokens_remove(cli_t *cli) {
  const char *which = cli->o.args[0];
  json_t *out = NULL;
  int rc = connect_session(cli);
  char *escaped = rc == 0 ? atr_client_escape(which) : NULL, *path = NULL;
  if (rc == 0 &&
      (!escaped || asprintf(&path, "/api/v2/users/me/keys/%s", escaped) < 0))
    rc = out_of_memory(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "DELETE", path, NULL, &out);
  if (rc == 0 && cli->json)
    print_json(out);
  else if (rc == 0)
    printf("Removed token %s.\n", which);
  free(escaped);
  free(path);
  json_decref(out);
  return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

#define F_ANY F_OUTPUT

static const command_t commands[] = {
    {NULL, "login", cmd_login,
     F_ANY | F_EMAIL | F_USERNAME | F_NAME | F_PASSWORD_STDIN | F_FIRST_USER, 0,
     1,
     "  atrium login [URL] [--email E] [--password-stdin]\n"
     "  atrium login [URL] --first-user --username U --email E [--name N]\n"
     "               [--password-stdin]\n"
     "      Sign in to the server at URL (default $ATRIUM_URL) and keep the\n"
     "      session; --first-user creates the first user (the owner) "
     "first.\n"
     "      The password is asked for without echo on a terminal, otherwise\n"
     "      read from the first line of standard input.\n"},
    {NULL, "logout", cmd_logout, F_ANY, 0, 0,
     "  atrium logout\n"
     "      End the session on the server and forget it here.\n"},
    {NULL, "whoami", cmd_whoami, F_ANY, 0, 0,
     "  atrium whoami\n"
     "      Who you are signed in as: USERNAME (EMAIL) roles: ROLES.\n"},
    {"users", "list", cmd_users_list, F_ANY, 0, 0,
     "  atrium users list\n"
     "      Every user.\n"},
    {"users", "create", cmd_users_create,
     F_ANY | F_EMAIL | F_USERNAME | F_NAME | F_PASSWORD_STDIN, 0, 0,
     "  atrium users create --email E --username U [--name N] "
     "[--password-stdin]\n"
     "      Create a user; the password is read as for login.\n"},
    {"users", "show", cmd_users_show, F_ANY, 1, 1,
     "  atrium users show USER\n"
     "      One user; USER is a username, an id or \"me\".\n"},
    {"users", "suspend", cmd_users_suspend, F_ANY, 1, 1,
     "  atrium users suspend USER\n"
     "      Suspend a user: their sessions and tokens stop working.\n"},
    {"users", "activate", cmd_users_activate, F_ANY, 1, 1,
     "  atrium users activate USER\n"
     "      Let a suspended user sign in again.\n"},
    {"tokens", "create", cmd_tokens_create, F_ANY | F_NAME | F_LIFETIME, 0, 0,
     "  atrium tokens create [--name N] [--lifetime 720h]\n"
     "      Make an API token and print it; it is shown this once only.\n"
     "      Lifetimes look like 90s, 30m, 720h, 30d or 1h30m; the default and\n"
     "      the longest are the server's token lifetime limit.\n"},
    {"tokens", "list", cmd_tokens_list, F_ANY, 0, 0,
     "  atrium tokens list\n"
     "      Your API tokens (never their secrets).\n"},
    {"tokens", "remove", cmd_tokens_remove, F_ANY, 1, 1,
     "  atrium tokens remove NAME_OR_ID\n"
     "      Delete one of your API tokens.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static bool is_group(const char *cmd) {
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].group && strcmp(commands[i].group, cmd) == 0)
      return true;
  return false;
}

bool atr_cli_client_handles(const char *cmd) {
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

static void group_usage(const char *group, FILE *out) {
  fputs("usage:\n", out);
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (commands[i].group && strcmp(commands[i].group, group) == 0)
      fputs(commands[i].usage, out);
  fputs(usage_footer, out);
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
  if (sub && !help)
    fprintf(stderr, "atrium %s: unknown command \"%s\"\n", cmd, sub);
  else if (!sub)
    fprintf(stderr, "atrium %s: which command?\n", cmd);
  group_usage(cmd, help ? stdout : stderr);
  *status = help ? 0 : 2;
  return NULL;
}

int atr_cli_client(const char *cmd, int argc, char **argv) {
  int status = 2;
  const command_t *c = pick(cmd, &argc, &argv, &status);
  if (!c)
    return status;
  cli_t cli = {.cmd = c};
  snprintf(cli.what, sizeof cli.what, "atrium %s%s%s", c->group ? c->group : "",
           c->group ? " " : "", c->name);
  status = parse_args(&cli, argc, argv);
  if (status == 0 && cli.o.help) {
    printf("usage:\n%s%s", c->usage, usage_footer);
    return 0;
  }
  if (status != 0)
    return status;
  /* Unbuffered, so no copy of a password lingers in stdio's buffer. */
  setvbuf(stdin, NULL, _IONBF, 0);
  status = c->run(&cli);
  atr_client_free(cli.client);
  fflush(stdout);
  return status;
}
