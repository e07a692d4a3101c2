/* core/cli_builds.h — the commands for templates, workspaces and their
 * builds: `atrium templates push|list|versions|show` (cli_templates.c) and
 * `atrium create|list|show|start|stop|delete|logs|cancel`
 * (cli_workspaces.c), dispatched from cli_builds.c. Each command returns
 * the process exit status: 0 done, 1 the server (or the network) refused
 * or the job did not succeed, 2 the arguments were wrong, 130 interrupted
 * while following a job (the job goes on).
 *
 * Values of sensitive parameters and the session token are never
 * printed; what the server sends is shown as it comes (it masks
 * sensitive values itself).
 *
 * Threads: main thread only (following a job installs a SIGINT handler
 * for its duration; prompts read the terminal). */
#ifndef ATRIUM_CORE_CLI_BUILDS_H
#define ATRIUM_CORE_CLI_BUILDS_H

#include <jansson.h>
#include <stdbool.h>

#include "cli_args.h"

/* Whether `cmd` (argv[1]) is one of these commands. */
bool atr_cli_builds_handles(const char *cmd);
/* Run `atrium cmd argv...`; argv is what follows cmd. */
int atr_cli_builds(const char *cmd, int argc, char **argv);

/* ---- the commands, for cli_builds.c's table ------------------------------ */

int atr__cli_templates_push(atr__cli_t *cli);
int atr__cli_templates_list(atr__cli_t *cli);
int atr__cli_templates_versions(atr__cli_t *cli);
int atr__cli_templates_show(atr__cli_t *cli);

int atr__cli_ws_create(atr__cli_t *cli);
int atr__cli_ws_list(atr__cli_t *cli);
int atr__cli_ws_show(atr__cli_t *cli);
int atr__cli_ws_start(atr__cli_t *cli);
int atr__cli_ws_stop(atr__cli_t *cli);
int atr__cli_ws_delete(atr__cli_t *cli);
int atr__cli_ws_logs(atr__cli_t *cli);
int atr__cli_ws_cancel(atr__cli_t *cli);

/* The template by name in the organization (cli_templates.c); *tpl
 * owned. 0, or 1 after printing why. */
int atr__cli_template_get(atr__cli_t *cli, const char *org, const char *name,
                          json_t **tpl);

#endif
