/* core/cli/cli_templates_workspaces.h — the commands for templates,
 * workspaces and their builds: `atrium templates push|list|versions|show`
 * (cli_templates.c) and `atrium create|list|show|start|stop|delete|logs|
 * cancel` (cli_workspaces.c), picked from the table in
 * cli_templates_workspaces.c. Each command returns
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
#ifndef ATRIUM_CORE_CLI_TEMPLATES_WORKSPACES_H
#define ATRIUM_CORE_CLI_TEMPLATES_WORKSPACES_H

#include <jansson.h>
#include <stdbool.h>

#include "cli_args.h"

/* Run `atrium name argv...` (name: templates, create, list, show, start,
 * stop, delete, logs or cancel); argv is what follows name. */
int atr_cli_templates_workspaces(const char *name, int argc, char **argv);

/* ---- the commands, for cli_templates_workspaces.c's table ---------------- */

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
