/* core/cli/cli_command.h — the one way `atrium` picks what to run.
 *
 * The binary has one table of top-level commands (core/main.c): each
 * entry names a command, carries its lines for `atrium --help`, and the
 * function that runs it with the arguments after its name. The help text
 * is written from that table, so a command cannot be runnable yet missing
 * from the help, or the other way round. A command with subcommands
 * (`users list`, `templates push`, `support bundle`) picks them from its
 * own table: of atr_cli_command_t for the commands that read the
 * configuration (`db`, `plugins`) or parse their own arguments (`docs`),
 * of atr__cli_command_t (cli_args.h) for those that talk to a server,
 * which adds each subcommand's flags and usage.
 *
 * Every function returns the process exit status: 0 done, 1 the work
 * failed, 2 the command line was wrong.
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_COMMAND_H
#define ATRIUM_CORE_CLI_COMMAND_H

#include <stdio.h>

#include "app.h"

/* Run command `name` with what follows it on the command line. */
typedef int (*atr_cli_run_fn)(const char *name, int argc, char **argv);
/* Run a command once the configuration is loaded (atr_cli_with_app): argv
 * is what follows its name, less --config and the --OPTION=VALUE flags. */
typedef int (*atr_cli_app_fn)(atr_app_t *app, int argc, char **argv);

typedef struct atr_cli_command {
  const char *name;
  /* Its lines in the help, or NULL when the lines of an entry before it
   * name it too ("  list | show NAME ..."). */
  const char *summary;
  atr_cli_run_fn run;     /* a command that reads its own arguments, */
  atr_cli_app_fn run_app; /* or one that needs the configuration */
} atr_cli_command_t;

/* The entry of table named name, or NULL. */
const atr_cli_command_t *atr_cli_find(const atr_cli_command_t *table,
                                      const char *name);
/* Every summary of table, in order. */
void atr_cli_write_summaries(const atr_cli_command_t *table, FILE *out);

/* `atrium argv[1] argv[2]...` from table (ended by an entry whose name is
 * NULL). Without a command: the usage on stderr, 2; with --help, -h or
 * help: the usage on stdout, 0; an unknown command: says so, then the
 * usage on stderr, 2. */
int atr_cli_dispatch(const atr_cli_command_t *table, int argc, char **argv);
/* `atrium --help`: the commands' summaries, then the options every
 * command that reads the configuration takes. */
void atr_cli_write_usage(const atr_cli_command_t *table, FILE *out);

/* `atrium version`: the version, commit and plugin ABI; arguments are
 * ignored. */
int atr_cli_version(const char *name, int argc, char **argv);

#endif
