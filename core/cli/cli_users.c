/* core/cli/cli_users.c — `atrium login|logout|whoami|users …|tokens …`:
 * the commands, their table, and the server's JSON turned into tables.
 *
 * A password is read once (from the terminal without echo, otherwise the
 * first line of standard input), sent, and wiped. Neither a password nor a
 * session token is ever printed; the one exception is the new token that
 * `tokens create` exists to show, as Coder does. */
#include "cli_users.h"

#include <ctype.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "atrium/error.h"
#include "cli_args.h"
#include "cli_output.h"
#include "cli_prompt.h"
#include "cli_session.h"
#include "session_file.h"

#define SECRET_MAX 1024
#define FIELD_MAX 256

static const char usage_footer[] =
    "\n"
    "Every command takes --output table|json (json prints the server's "
    "answer).\n"
    "The session is kept in $ATRIUM_CONFIG_DIR, else "
    "$XDG_CONFIG_HOME/atrium,\n"
    "else ~/.config/atrium; $ATRIUM_URL and $ATRIUM_SESSION_TOKEN override "
    "it.\n";

/* ---- prompts and passwords ------------------------------------------------ */

static int input_error(const atr__cli_t *cli, int rc) {
  fprintf(stderr, "%s: %s\n", cli->what,
          rc == -2 ? "the line is too long" : "no input");
  return 2;
}

/* The password into buf: from a terminal without echo (twice when
 * confirm), otherwise standard input's first line. 0, or 2 said why. */
static int read_password(const atr__cli_t *cli, bool confirm, char *buf,
                         size_t size) {
  bool tty = isatty(STDIN_FILENO);
  int rc = tty ? atr__cli_read_hidden("Password: ", buf, size)
               : atr__cli_read_line(buf, size);
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
    rc = atr__cli_read_hidden("Confirm password: ", again, sizeof again);
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
static int ask(const atr__cli_t *cli, const char *flag, const char *given,
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
  int rc = atr__cli_read_line(buf, size);
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

/* Role names joined by ", "; entries are {"name": …} or plain strings. */
static void roles_text(const json_t *roles, char *buf, size_t size) {
  size_t i, n = 0;
  json_t *r;
  buf[0] = '\0';
  json_array_foreach(roles, i, r) {
    const char *name =
        json_is_string(r) ? json_string_value(r) : atr__cli_str(r, "name");
    if (name && n < size)
      n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
  }
  if (buf[0] == '\0')
    snprintf(buf, size, "none");
}

static const char *const user_head[] = {"USERNAME", "EMAIL", "STATUS", "ROLES",
                                        "CREATED AT"};

static int add_user_row(atr__cli_table_t *t, const json_t *u) {
  char roles[FIELD_MAX], created[32];
  roles_text(json_object_get(u, "roles"), roles, sizeof roles);
  const char *row[] = {
      atr__cli_str(u, "username"), atr__cli_str(u, "email"),
      atr__cli_str(u, "status"), roles,
      atr__cli_time(atr__cli_str(u, "created_at"), created, NULL)};
  return atr__cli_table_add(t, row);
}

/* Users (an array) as a table; 0, or 1 after an error message. */
static int print_users(const atr__cli_t *cli, const json_t *users) {
  atr__cli_table_t t = {.ncols = 5, .head = user_head};
  size_t i;
  json_t *u;
  int rc = 0;
  json_array_foreach(users, i, u) {
    if (rc == 0)
      rc = add_user_row(&t, u);
  }
  if (rc == 0)
    atr__cli_table_print(&t);
  else
    fprintf(stderr, "%s: %s\n", cli->what, atr_strerror(rc));
  atr__cli_table_free(&t);
  return rc == 0 ? 0 : 1;
}

/* ---- sessions ------------------------------------------------------------- */

static const char *env_value(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* ---- login, logout, whoami ---------------------------------------------- */

/* "host:3000" → "https://host:3000"; only http and https are spoken. */
static int base_url(const atr__cli_t *cli, const char *in, char **out) {
  int n;
  if (!strstr(in, "://"))
    n = asprintf(out, "https://%s", in);
  else if (strncasecmp(in, "http://", 7) == 0 ||
           strncasecmp(in, "https://", 8) == 0)
    n = asprintf(out, "%s", in);
  else
    return atr__cli_usage_error(cli, "%s is not an http:// or https:// URL",
                                in);
  return n < 0 ? atr__cli_oom(cli) : 0;
}

static int create_first_user(atr__cli_t *cli, const char *email,
                             const char *username, const char *password) {
  json_t *body = json_pack("{s:s, s:s, s:s}", "email", email, "username",
                           username, "password", password);
  if (body && cli->o.name)
    json_object_set_new(body, "name", json_string(cli->o.name));
  json_t *out = NULL;
  int rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                     "/api/v2/users/first", body, &out)
                : atr__cli_oom(cli);
  wipe_member(body, "password");
  json_decref(body);
  json_decref(out);
  if (rc == 0 && !cli->json)
    printf("Created the first user, %s.\n", username);
  return rc;
}

/* Log in, keep the session, and give the client its token. */
static int sign_in(atr__cli_t *cli, const char *email, const char *password) {
  json_t *body = json_pack("{s:s, s:s}", "email", email, "password", password);
  json_t *out = NULL;
  int rc = body ? atr_client_request(cli->client, cli->what, "POST",
                                     "/api/v2/users/login", body, &out)
                : atr__cli_oom(cli);
  wipe_member(body, "password");
  json_decref(body);
  const char *token = atr__cli_str(out, "session_token");
  if (rc == 0 && !token) {
    fprintf(stderr, "%s: the server's answer has no session_token\n",
            cli->what);
    rc = 1;
  }
  char *err = NULL;
  if (rc == 0 && atr_client_set_token(cli->client, token) != 0)
    rc = atr__cli_oom(cli);
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

static int cmd_login(atr__cli_t *cli) {
  const atr__cli_opts_t *o = &cli->o;
  const char *url = o->nargs > 0 ? o->args[0] : env_value("ATRIUM_URL");
  if (!url)
    return atr__cli_usage_error(cli, "%s", "which server? give its URL");
  if (!o->first_user && (o->username || o->name))
    return atr__cli_usage_error(cli, "%s",
                                "--username and --name go with --first-user");
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
    rc = atr__cli_oom(cli);
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
    rc = atr__cli_get(cli, "/api/v2/users/me", &me);
  if (rc == 0 && cli->json)
    atr__cli_print_json(me);
  else if (rc == 0)
    printf("Signed in to %s as %s\n", atr_client_url(cli->client),
           atr__cli_str(me, "username") ? atr__cli_str(me, "username") : "?");
  json_decref(me);
  return rc;
}

static int cmd_logout(atr__cli_t *cli) {
  /* A token from the environment is not the stored one: leave the file. */
  bool stored = env_value("ATRIUM_SESSION_TOKEN") == NULL;
  int rc = atr__cli_connect(cli);
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
    atr__cli_print_json(res.body);
  else if (gone)
    printf("Signed out of %s\n", atr_client_url(cli->client));
  atr_client_res_free(&res);
  return gone ? 0 : 1;
}

static int cmd_whoami(atr__cli_t *cli) {
  json_t *me = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, "/api/v2/users/me", &me);
  if (rc == 0 && cli->json) {
    atr__cli_print_json(me);
  } else if (rc == 0) {
    char roles[FIELD_MAX];
    roles_text(json_object_get(me, "roles"), roles, sizeof roles);
    printf("%s (%s) roles: %s\n", atr__cli_str(me, "username"),
           atr__cli_str(me, "email"), roles);
  }
  json_decref(me);
  return rc;
}

/* ---- users ---------------------------------------------------------------- */

/* Every user, a page at a time, as one answer: {"users": […], "count"}. */
static int list_users(atr__cli_t *cli, json_t **out) {
  json_t *all = NULL;
  json_int_t count = 0;
  /* 1000: the server's largest limit */
  int rc = atr__cli_get_all(cli, "/api/v2/users?", 1000, "users", &all, &count);
  *out = rc == 0 ? json_pack("{s:o, s:I}", "users", all, "count", count) : NULL;
  return rc == 0 && !*out ? atr__cli_oom(cli) : rc;
}

static int cmd_users_list(atr__cli_t *cli) {
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = list_users(cli, &out);
  if (rc == 0 && cli->json)
    atr__cli_print_json(out);
  else if (rc == 0)
    rc = print_users(cli, json_object_get(out, "users"));
  json_decref(out);
  return rc;
}

static int cmd_users_create(atr__cli_t *cli) {
  const atr__cli_opts_t *o = &cli->o;
  char emailbuf[FIELD_MAX], userbuf[FIELD_MAX], password[SECRET_MAX];
  const char *email = NULL, *username = NULL;
  int rc = atr__cli_connect(cli);
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
            : atr__cli_oom(cli);
  wipe_member(body, "password");
  json_decref(body);
  if (rc == 0 && cli->json)
    atr__cli_print_json(out);
  else if (rc == 0)
    printf("Created user %s (%s).\n",
           atr__cli_str(out, "username") ? atr__cli_str(out, "username")
                                         : username,
           atr__cli_str(out, "email") ? atr__cli_str(out, "email") : email);
  json_decref(out);
  return rc;
}

static int cmd_users_show(atr__cli_t *cli) {
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  char *path =
      rc == 0 ? atr__cli_path("/api/v2/users/%s", cli->o.args[0], NULL) : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, path, &out);
  free(path);
  json_t *one = json_array();
  json_array_append(one, out);
  if (rc == 0 && cli->json)
    atr__cli_print_json(out);
  else if (rc == 0)
    rc = print_users(cli, one);
  json_decref(one);
  json_decref(out);
  return rc;
}

/* PUT /api/v2/users/{user}/status/<action> */
static int set_status(atr__cli_t *cli, const char *action, const char *done) {
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  char *path = rc == 0 ? atr__cli_path("/api/v2/users/%s/status/%s",
                                       cli->o.args[0], action)
                       : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "PUT", path, NULL, &out);
  free(path);
  if (rc == 0 && cli->json)
    atr__cli_print_json(out);
  else if (rc == 0)
    printf("%s %s.\n", done,
           atr__cli_str(out, "username") ? atr__cli_str(out, "username")
                                         : cli->o.args[0]);
  json_decref(out);
  return rc;
}

static int cmd_users_suspend(atr__cli_t *cli) {
  return set_status(cli, "suspend", "Suspended");
}

static int cmd_users_activate(atr__cli_t *cli) {
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

static int cmd_tokens_create(atr__cli_t *cli) {
  int64_t lifetime = 0;
  if (cli->o.lifetime && parse_lifetime(cli->o.lifetime, &lifetime) != 0)
    return atr__cli_usage_error(
        cli,
        "--lifetime %s is not a duration like 90s, 30m, "
        "720h, 30d or 1h30m",
        cli->o.lifetime);
  int rc = atr__cli_connect(cli);
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
            : atr__cli_oom(cli);
  json_decref(body);
  const char *key = atr__cli_str(out, "key");
  if (rc == 0 && cli->json) {
    atr__cli_print_json(out);
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

static int cmd_tokens_list(atr__cli_t *cli) {
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  if (rc == 0)
    rc = atr__cli_get(cli, "/api/v2/users/me/keys/tokens", &out);
  if (rc == 0 && cli->json) {
    atr__cli_print_json(out);
    json_decref(out);
    return 0;
  }
  atr__cli_table_t t = {.ncols = 5, .head = token_head};
  size_t i;
  json_t *k;
  json_array_foreach(tokens_of(out), i, k) {
    char used[32], expires[32], created[32];
    const char *row[] = {
        atr__cli_str(k, "id"), atr__cli_str(k, "token_name"),
        atr__cli_time(atr__cli_str(k, "last_used"), used, "never"),
        atr__cli_time(atr__cli_str(k, "expires_at"), expires, NULL),
        atr__cli_time(atr__cli_str(k, "created_at"), created, NULL)};
    if (rc == 0 && atr__cli_table_add(&t, row) != 0)
      rc = atr__cli_oom(cli);
  }
  if (rc == 0)
    atr__cli_table_print(&t);
  atr__cli_table_free(&t);
  json_decref(out);
  return rc;
}

/* The server takes a token's id or its name in place of {keyid}. */
static int cmd_tokens_remove(atr__cli_t *cli) {
  const char *which = cli->o.args[0];
  json_t *out = NULL;
  int rc = atr__cli_connect(cli);
  char *path =
      rc == 0 ? atr__cli_path("/api/v2/users/me/keys/%s", which, NULL) : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  if (rc == 0)
    rc = atr_client_request(cli->client, cli->what, "DELETE", path, NULL, &out);
  if (rc == 0 && cli->json)
    atr__cli_print_json(out);
  else if (rc == 0)
    printf("Removed token %s.\n", which);
  free(path);
  json_decref(out);
  return rc;
}

/* ---- dispatch ------------------------------------------------------------- */

static const atr__cli_command_t commands[] = {
    {NULL, "login", cmd_login,
     ATR__CLI_OUTPUT | ATR__CLI_EMAIL | ATR__CLI_USERNAME | ATR__CLI_NAME |
         ATR__CLI_PASSWORD_STDIN | ATR__CLI_FIRST_USER,
     0, 1,
     "  atrium login [URL] [--email E] [--password-stdin]\n"
     "  atrium login [URL] --first-user --username U --email E [--name N]\n"
     "               [--password-stdin]\n"
     "      Sign in to the server at URL (default $ATRIUM_URL) and keep the\n"
     "      session; --first-user creates the first user (the owner) "
     "first.\n"
     "      The password is asked for without echo on a terminal, otherwise\n"
     "      read from the first line of standard input.\n"},
    {NULL, "logout", cmd_logout, ATR__CLI_OUTPUT, 0, 0,
     "  atrium logout\n"
     "      End the session on the server and forget it here.\n"},
    {NULL, "whoami", cmd_whoami, ATR__CLI_OUTPUT, 0, 0,
     "  atrium whoami\n"
     "      Who you are signed in as: USERNAME (EMAIL) roles: ROLES.\n"},
    {"users", "list", cmd_users_list, ATR__CLI_OUTPUT, 0, 0,
     "  atrium users list\n"
     "      Every user.\n"},
    {"users", "create", cmd_users_create,
     ATR__CLI_OUTPUT | ATR__CLI_EMAIL | ATR__CLI_USERNAME | ATR__CLI_NAME |
         ATR__CLI_PASSWORD_STDIN,
     0, 0,
     "  atrium users create --email E --username U [--name N] "
     "[--password-stdin]\n"
     "      Create a user; the password is read as for login.\n"},
    {"users", "show", cmd_users_show, ATR__CLI_OUTPUT, 1, 1,
     "  atrium users show USER\n"
     "      One user; USER is a username, an id or \"me\".\n"},
    {"users", "suspend", cmd_users_suspend, ATR__CLI_OUTPUT, 1, 1,
     "  atrium users suspend USER\n"
     "      Suspend a user: their sessions and tokens stop working.\n"},
    {"users", "activate", cmd_users_activate, ATR__CLI_OUTPUT, 1, 1,
     "  atrium users activate USER\n"
     "      Let a suspended user sign in again.\n"},
    {"tokens", "create", cmd_tokens_create,
     ATR__CLI_OUTPUT | ATR__CLI_NAME | ATR__CLI_LIFETIME, 0, 0,
     "  atrium tokens create [--name N] [--lifetime 720h]\n"
     "      Make an API token and print it; it is shown this once only.\n"
     "      Lifetimes look like 90s, 30m, 720h, 30d or 1h30m; the default and\n"
     "      the longest are the server's token lifetime limit.\n"},
    {"tokens", "list", cmd_tokens_list, ATR__CLI_OUTPUT, 0, 0,
     "  atrium tokens list\n"
     "      Your API tokens (never their secrets).\n"},
    {"tokens", "remove", cmd_tokens_remove, ATR__CLI_OUTPUT, 1, 1,
     "  atrium tokens remove NAME_OR_ID\n"
     "      Delete one of your API tokens.\n"},
};

static const atr__cli_commands_t user_commands = {
    .list = commands,
    .n = sizeof commands / sizeof commands[0],
    .footer = usage_footer,
    .group_footer = usage_footer,
};

int atr_cli_users(const char *name, int argc, char **argv) {
  return atr__cli_main(&user_commands, name, argc, argv);
}
