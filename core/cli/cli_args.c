/* core/cli/cli_args.c — picking the command and parsing its flags and
 * arguments (cli_args.h). */
#include "cli_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

enum { KIND_VALUE, KIND_SWITCH, KIND_LIST };

typedef struct flag {
  const char *name;
  char short_name; /* -x, or 0 */
  size_t offset;   /* of a const char *, or a bool; KIND_LIST: params */
  unsigned bit;
  int kind;
} flag_t;

#define OPT(field) offsetof(atr__cli_opts_t, field)

static const flag_t flags[] = {
    {"output", 'o', OPT(output), ATR__CLI_OUTPUT, KIND_VALUE},
    {"name", 0, OPT(name), ATR__CLI_NAME, KIND_VALUE},
    {"org", 0, OPT(org), ATR__CLI_ORG, KIND_VALUE},
    {"template", 't', OPT(template_name), ATR__CLI_TEMPLATE, KIND_VALUE},
    {"build", 0, OPT(build), ATR__CLI_BUILD, KIND_VALUE},
    {"parameter", 0, OPT(params), ATR__CLI_PARAM, KIND_LIST},
    {"email", 0, OPT(email), ATR__CLI_EMAIL, KIND_VALUE},
    {"username", 0, OPT(username), ATR__CLI_USERNAME, KIND_VALUE},
    {"lifetime", 0, OPT(lifetime), ATR__CLI_LIFETIME, KIND_VALUE},
    {"activate", 0, OPT(activate), ATR__CLI_ACTIVATE, KIND_SWITCH},
    {"yes", 'y', OPT(yes), ATR__CLI_YES, KIND_SWITCH},
    {"all", 'a', OPT(all), ATR__CLI_ALL, KIND_SWITCH},
    {"follow", 'f', OPT(follow), ATR__CLI_FOLLOW, KIND_SWITCH},
    {"orphan", 0, OPT(orphan), ATR__CLI_ORPHAN, KIND_SWITCH},
    {"password-stdin", 0, OPT(password_stdin), ATR__CLI_PASSWORD_STDIN,
     KIND_SWITCH},
    {"first-user", 0, OPT(first_user), ATR__CLI_FIRST_USER, KIND_SWITCH},
    {"output", 'o', OPT(output_file), ATR__CLI_OUTPUT_FILE, KIND_VALUE},
    {"agent", 0, OPT(agent), ATR__CLI_AGENT, KIND_SWITCH},
    {"log-lines", 0, OPT(log_lines), ATR__CLI_LOG_LINES, KIND_VALUE},
};

int atr__cli_usage_error(const atr__cli_t *cli, const char *fmt,
                         const char *arg) {
  fprintf(stderr, "%s: ", cli->what);
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nusage:\n%s%s", cli->cmd->usage, cli->set->footer);
  return 2;
}

int atr__cli_oom(const atr__cli_t *cli) {
  fprintf(stderr, "%s: %s\n", cli->what, atr_strerror(ATR_ENOMEM));
  return 1;
}

/* The flag a names ("--name", "--name=value", "-y"), or NULL; *len: the
 * length of that name in a (all of a when there is no '='). A name two
 * flags share (-o: a format or a file) is the one among `taken`'s. */
static const flag_t *find_flag(const char *a, unsigned taken, size_t *len) {
  bool is_long = a[1] == '-';
  const char *eq = is_long ? strchr(a, '=') : NULL;
  *len = eq ? (size_t)(eq - a) : strlen(a);
  const flag_t *found = NULL;
  for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
    const flag_t *f = &flags[i];
    if (is_long ? strlen(f->name) == *len - 2 &&
                      strncmp(f->name, a + 2, *len - 2) == 0
                : f->short_name && a[1] == f->short_name && a[2] == '\0') {
      if (taken & f->bit)
        return f;
      found = found ? found : f;
    }
  }
  return found;
}

/* One flag at argv[*i] ("--name", "--name=value", "-y"); 0 or 2. */
static int take_flag(atr__cli_t *cli, int argc, char **argv, int *i) {
  const char *a = argv[*i];
  size_t len = 0;
  const flag_t *f = find_flag(a, cli->cmd->flags, &len);
  if (!f || !(cli->cmd->flags & f->bit)) {
    fprintf(stderr, "%s: unknown flag %.*s\n", cli->what, (int)len, a);
    fprintf(stderr, "usage:\n%s%s", cli->cmd->usage, cli->set->footer);
    return 2;
  }
  const char *eq = a[len] == '=' ? a + len + 1 : NULL;
  char *field = (char *)&cli->o + f->offset;
  if (f->kind == KIND_SWITCH) {
    if (eq)
      return atr__cli_usage_error(cli, "%s takes no value", a);
    *(bool *)field = true;
    return 0;
  }
  const char *value = eq ? eq : *i + 1 < argc ? argv[++*i] : NULL;
  if (!value)
    return atr__cli_usage_error(cli, "%s needs a value", a);
  if (f->kind == KIND_VALUE) {
    *(const char **)field = value;
    return 0;
  }
  if (cli->o.nparams >= ATR__CLI_MAX_PARAMS)
    return atr__cli_usage_error(cli, "%s", "too many --parameter flags");
  if (!strchr(value, '=') || value[0] == '=')
    return atr__cli_usage_error(cli, "--parameter %s is not NAME=VALUE", value);
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
    else if (o->nargs < cli->cmd->max_args)
      o->args[o->nargs++] = a;
    else
      rc = atr__cli_usage_error(cli, "unexpected argument %s", a);
    if (rc != 0)
      return rc;
  }
  if (o->help)
    return 0;
  if (o->nargs < cli->cmd->min_args)
    return atr__cli_usage_error(cli, "%s", "missing argument");
  if (o->output && strcmp(o->output, "json") != 0 &&
      strcmp(o->output, "table") != 0)
    return atr__cli_usage_error(cli, "--output is table or json, not \"%s\"",
                                o->output);
  cli->json = o->output && strcmp(o->output, "json") == 0;
  return 0;
}

/* ---- picking the command -------------------------------------------------- */

static bool in_group(const atr__cli_command_t *c, const char *group) {
  return c->group && strcmp(c->group, group) == 0;
}

static const atr__cli_command_t *find_command(const atr__cli_commands_t *set,
                                              const char *group,
                                              const char *name) {
  for (size_t i = 0; i < set->n; i++) {
    const atr__cli_command_t *c = &set->list[i];
    bool same_group = group ? in_group(c, group) : c->group == NULL;
    if (same_group && strcmp(c->name, name) == 0)
      return c;
  }
  return NULL;
}

static bool is_group(const atr__cli_commands_t *set, const char *cmd) {
  for (size_t i = 0; i < set->n; i++)
    if (in_group(&set->list[i], cmd))
      return true;
  return false;
}

/* The command for cmd and, in a group, its first argument (taken off
 * argv); NULL after printing the group's usage with *status. */
static const atr__cli_command_t *pick(const atr__cli_commands_t *set,
                                      const char *cmd, int *argc, char ***argv,
                                      int *status) {
  if (!is_group(set, cmd))
    return find_command(set, NULL, cmd);
  const char *sub = *argc > 0 ? (*argv)[0] : NULL;
  bool help = sub && (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 ||
                      strcmp(sub, "help") == 0);
  const atr__cli_command_t *c =
      sub && !help ? find_command(set, cmd, sub) : NULL;
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
  for (size_t i = 0; i < set->n; i++)
    if (in_group(&set->list[i], cmd))
      fputs(set->list[i].usage, out);
  fputs(set->group_footer, out);
  *status = help ? 0 : 2;
  return NULL;
}

int atr__cli_main(const atr__cli_commands_t *set, const char *cmd, int argc,
                  char **argv) {
  int status = 2;
  const atr__cli_command_t *c = pick(set, cmd, &argc, &argv, &status);
  if (!c)
    return status;
  atr__cli_t cli = {.cmd = c, .set = set};
  snprintf(cli.what, sizeof cli.what, "atrium %s%s%s", c->group ? c->group : "",
           c->group ? " " : "", c->name);
  status = parse_args(&cli, argc, argv);
  if (status == 0 && cli.o.help) {
    printf("usage:\n%s%s", c->usage, set->footer);
    return 0;
  }
  if (status != 0)
    return status;
  /* Unbuffered, so no copy of a typed password or secret value lingers in
   * stdio's buffer. */
  setvbuf(stdin, NULL, _IONBF, 0);
  status = c->run(&cli);
  atr_client_free(cli.client);
  fflush(stdout);
  return status;
}
