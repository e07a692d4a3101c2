/* core/main.c — `atrium`: one binary, several commands, picked from the
 * one table below (cli_command.h), which also writes `atrium --help`.
 * `atrium server` is the only command defined here: it is the one entry
 * into the server's layers (main_server.h); every other command lives in
 * core/cli/. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "cli.h"
#include "cli_agent.h"
#include "cli_command.h"
#include "cli_connect.h"
#include "cli_policy.h"
#include "cli_support.h"
#include "cli_templates_workspaces.h"
#include "cli_users.h"
#include "main_server.h"

static int cmd_server(atr_app_t *app, int argc, char **argv);

static const atr_cli_command_t commands[] = {
    {"server", "  server [--print-config]        run the control plane\n", NULL,
     cmd_server},
    {"plugins",
     "  plugins list                   the plugins in the plugin directories\n"
     "  plugins describe NAME [--json] a plugin's description and options\n",
     NULL, atr_cli_plugins},
    {"db",
     "  db migrate|status              apply or list schema migrations\n"
     "  db backup|restore FILE         copy the database to or from FILE\n",
     NULL, atr_cli_db},
    {"docs",
     "  docs config [--output FILE] [--plugin-dir DIR]...\n"
     "                                 write the configuration reference\n",
     atr_cli_docs, NULL},
    {"login",
     "  login URL | logout | whoami    sign in to a server, sign out, who am "
     "I\n",
     atr_cli_users, NULL},
    {"logout", NULL, atr_cli_users, NULL},
    {"whoami", NULL, atr_cli_users, NULL},
    {"users",
     "  users list|create|show|suspend|activate\n"
     "                                 manage users (--help for each)\n",
     atr_cli_users, NULL},
    {"tokens", "  tokens create|list|remove      manage your API tokens\n",
     atr_cli_users, NULL},
    {"templates",
     "  templates push|list|versions|show\n"
     "                                 upload and inspect templates\n",
     atr_cli_templates_workspaces, NULL},
    {"create",
     "  create NAME --template T       create a workspace (and build it)\n",
     atr_cli_templates_workspaces, NULL},
    {"list",
     "  list | show NAME               your workspaces, one workspace\n",
     atr_cli_templates_workspaces, NULL},
    {"show", NULL, atr_cli_templates_workspaces, NULL},
    {"start",
     "  start|stop|delete NAME         build a workspace, following the logs\n",
     atr_cli_templates_workspaces, NULL},
    {"stop", NULL, atr_cli_templates_workspaces, NULL},
    {"delete", NULL, atr_cli_templates_workspaces, NULL},
    {"logs",
     "  logs NAME [-f] | cancel NAME   a build's logs; cancel a build\n",
     atr_cli_templates_workspaces, NULL},
    {"cancel", NULL, atr_cli_templates_workspaces, NULL},
    {"ssh",
     "  ssh WORKSPACE [--stdio] [-- COMMAND...]\n"
     "                                 a shell or a command in a workspace\n",
     atr_cli_ssh, NULL},
    {"config-ssh",
     "  config-ssh [--dry-run] [--remove]\n"
     "                                 `ssh atrium.WORKSPACE` for OpenSSH\n",
     atr_cli_config_ssh, NULL},
    {"port-forward",
     "  port-forward WORKSPACE --tcp [ADDR:]LOCAL:REMOTE...\n"
     "                                 forward local ports into a workspace\n",
     atr_cli_port_forward, NULL},
    {"policy",
     "  policy test|eval POLICY.lua... run Lua policies offline (--help)\n",
     atr_cli_policy, NULL},
    {"support",
     "  support bundle [WORKSPACE] [-o FILE]\n"
     "                                 collect a tar.gz for support (owners)\n",
     atr_cli_support, NULL},
    {"agent",
     "  agent [--env-file F] [--init [-- CMD...]]\n"
     "                                 run the workspace agent\n",
     atr_cli_agent, NULL},
    {"version", "  version                        print the version\n",
     atr_cli_version, NULL},
    {"--version", NULL, atr_cli_version, NULL},
    {NULL, NULL, NULL, NULL},
};

static int has_flag(int argc, char **argv, const char *flag) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], flag) == 0)
      return 1;
  return 0;
}

static int cmd_server(atr_app_t *app, int argc, char **argv) {
  if (has_flag(argc, argv, "--print-config"))
    return atr_cli_print_config(app);
  if (argc > 0) {
    fprintf(stderr, "atrium server: unexpected argument %s\n", argv[0]);
    atr_cli_write_usage(commands, stderr);
    return 2;
  }
  return atr_server_run(app);
}

int main(int argc, char **argv) {
  return atr_cli_dispatch(commands, argc, argv);
}
