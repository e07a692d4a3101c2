/* core/cli/cli.h — the commands that run on this machine without a
 * server (`plugins`, `db`, `docs`), and the loading of the configuration
 * they share with `atrium server`. Each is an atr_cli_app_fn or an
 * atr_cli_run_fn (cli_command.h): it takes the arguments after its name
 * and returns the process exit status.
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_H
#define ATRIUM_CORE_CLI_H

#include "app.h"
#include "cli_command.h"

/* `atrium plugins list|describe ...` */
int atr_cli_plugins(atr_app_t *app, int argc, char **argv);
/* `atrium db migrate|status|backup FILE|restore FILE` */
int atr_cli_db(atr_app_t *app, int argc, char **argv);
/* `atrium docs config [--output FILE] [--plugin-dir DIR]...` */
int atr_cli_docs(const char *name, int argc, char **argv);

/* Take --config FILE and --OPTION=VALUE flags out of argv, load the
 * configuration (plugins not yet) and run fn on it; the exit status: fn's,
 * or 2 for bad flags, 1 for a configuration that does not load (the
 * reason on stderr). */
int atr_cli_with_app(int argc, char **argv, atr_cli_app_fn fn);
/* `atrium server --print-config`: every enabled plugin is configured (not
 * started), then the effective configuration is written on stdout as
 * YAML, secrets redacted. 0, or 1 with the reason on stderr. */
int atr_cli_print_config(atr_app_t *app);

#endif
