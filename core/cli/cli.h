/* core/cli.h — subcommands other than `server`, each a function taking the
 * arguments after its name and returning the process exit status.
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_H
#define ATRIUM_CORE_CLI_H

#include "app.h"

/* `atrium plugins list|describe ...`; app is loaded, plugins not yet. */
int atr_cli_plugins(atr_app_t *app, int argc, char **argv);
/* `atrium db migrate|status|backup FILE|restore FILE`; app is loaded. */
int atr_cli_db(atr_app_t *app, int argc, char **argv);
/* `atrium docs config [--output FILE] [--plugin-dir DIR]...` */
int atr_cli_docs(int argc, char **argv);

#endif
