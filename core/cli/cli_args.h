/* core/cli/cli_args.h — the command line of the commands that talk to a
 * server (cli_users.c's login, users, tokens …; cli_templates_workspaces.c's
 * templates and workspaces; cli_support.c's support bundle): a table of
 * subcommands with the flags each takes and its
 * usage, picking the command (`atrium users list`, `atrium create`),
 * parsing its flags and arguments into an atr__cli_t, and the messages for
 * a command line that is wrong.
 *
 * A command returns the process exit status: 0 done, 1 the server (or the
 * network) refused or the job did not succeed, 2 the arguments were wrong.
 * Every message starts with cli->what ("atrium users list: …").
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_ARGS_H
#define ATRIUM_CORE_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "http_client.h"

/* The flags, as bits of atr__cli_command_t.flags: those a command takes. */
enum {
  ATR__CLI_OUTPUT = 1u << 0,          /* -o, --output table|json */
  ATR__CLI_NAME = 1u << 1,            /* --name N */
  ATR__CLI_ORG = 1u << 2,             /* --org ORG */
  ATR__CLI_TEMPLATE = 1u << 3,        /* -t, --template T */
  ATR__CLI_BUILD = 1u << 4,           /* --build N */
  ATR__CLI_PARAM = 1u << 5,           /* --parameter NAME=VALUE, repeated */
  ATR__CLI_EMAIL = 1u << 6,           /* --email E */
  ATR__CLI_USERNAME = 1u << 7,        /* --username U */
  ATR__CLI_LIFETIME = 1u << 8,        /* --lifetime 720h */
  ATR__CLI_ACTIVATE = 1u << 9,        /* --activate */
  ATR__CLI_YES = 1u << 10,            /* -y, --yes */
  ATR__CLI_ALL = 1u << 11,            /* -a, --all */
  ATR__CLI_FOLLOW = 1u << 12,         /* -f, --follow */
  ATR__CLI_ORPHAN = 1u << 13,         /* --orphan */
  ATR__CLI_PASSWORD_STDIN = 1u << 14, /* --password-stdin */
  ATR__CLI_FIRST_USER = 1u << 15,     /* --first-user */
  ATR__CLI_OUTPUT_FILE = 1u << 16,    /* -o, --output FILE (instead of
                                         ATR__CLI_OUTPUT) */
  ATR__CLI_AGENT = 1u << 17,          /* --agent */
  ATR__CLI_LOG_LINES = 1u << 18,      /* --log-lines N */
};

#define ATR__CLI_MAX_PARAMS 64

/* What the command line gave; strings point into argv. */
typedef struct atr__cli_opts {
  const char *output, *name, *org, *template_name, *build;
  const char *email, *username, *lifetime, *output_file, *log_lines;
  const char *params[ATR__CLI_MAX_PARAMS]; /* "name=value", as given */
  size_t nparams;
  bool activate, yes, all, follow, orphan, password_stdin, first_user, help;
  bool agent;
  const char *args[2];
  int nargs;
} atr__cli_opts_t;

typedef struct atr__cli atr__cli_t;

typedef struct atr__cli_command {
  const char *group; /* "users", "templates", or NULL at the top level */
  const char *name;
  int (*run)(atr__cli_t *cli);
  unsigned flags;         /* ATR__CLI_* it takes; -h and --help always */
  int min_args, max_args; /* max_args at most 2 */
  const char *usage;
} atr__cli_command_t;

typedef struct atr__cli_commands {
  const atr__cli_command_t *list;
  size_t n;
  const char *footer;       /* printed after a command's usage */
  const char *group_footer; /* printed after a group's list of usages */
} atr__cli_commands_t;

struct atr__cli {
  char what[64]; /* "atrium templates push": the prefix of every message */
  const atr__cli_command_t *cmd;
  const atr__cli_commands_t *set;
  atr__cli_opts_t o;
  bool json;            /* --output json */
  atr_client_t *client; /* set by atr__cli_connect; freed after the run */
};

/* Run `atrium cmd argv...` from set (argv is what follows cmd); the exit
 * status. */
int atr__cli_main(const atr__cli_commands_t *set, const char *cmd, int argc,
                  char **argv);

/* "<what>: " fmt (with arg), then the command's usage, on stderr; 2. */
int atr__cli_usage_error(const atr__cli_t *cli, const char *fmt,
                         const char *arg);
/* "<what>: out of memory" on stderr; 1. */
int atr__cli_oom(const atr__cli_t *cli);

#endif
