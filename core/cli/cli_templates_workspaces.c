/* core/cli/cli_templates_workspaces.c — the table of template and
 * workspace commands, with their flags and usage, and their entry point
 * (cli_templates_workspaces.h). */
#include "cli_templates_workspaces.h"

static const atr__cli_command_t commands[] = {
    {"templates", "push", atr__cli_templates_push,
     ATR__CLI_NAME | ATR__CLI_ORG | ATR__CLI_ACTIVATE | ATR__CLI_YES, 1, 1,
     "  atrium templates push DIR [--name N] [--activate] [--org ORG] [-y]\n"
     "      Upload DIR (with its template.yaml) as a new version of template\n"
     "      N (default: DIR's name) and show the import's logs. A new\n"
     "      template is created with it; an existing one only moves to it\n"
     "      with --activate.\n"},
    {"templates", "list", atr__cli_templates_list,
     ATR__CLI_OUTPUT | ATR__CLI_ORG, 0, 0,
     "  atrium templates list [--org ORG]\n"
     "      The organization's templates.\n"},
    {"templates", "versions", atr__cli_templates_versions,
     ATR__CLI_OUTPUT | ATR__CLI_ORG, 1, 1,
     "  atrium templates versions NAME [--org ORG]\n"
     "      A template's versions, newest first.\n"},
    {"templates", "show", atr__cli_templates_show,
     ATR__CLI_OUTPUT | ATR__CLI_ORG, 1, 1,
     "  atrium templates show NAME [--org ORG]\n"
     "      A template and the parameters of its active version.\n"},
    {NULL, "create", atr__cli_ws_create,
     ATR__CLI_TEMPLATE | ATR__CLI_PARAM | ATR__CLI_ORG | ATR__CLI_YES, 1, 1,
     "  atrium create NAME --template T [--parameter NAME=VALUE]... "
     "[--org ORG] [-y]\n"
     "      Create a workspace from template T and follow its first build.\n"
     "      Required parameters not given are asked for on a terminal.\n"},
    {NULL, "list", atr__cli_ws_list, ATR__CLI_OUTPUT | ATR__CLI_ALL, 0, 0,
     "  atrium list [--all] [--output json]\n"
     "      Your workspaces (--all: every one you can see).\n"},
    {NULL, "show", atr__cli_ws_show, ATR__CLI_OUTPUT | ATR__CLI_LOG_LINES, 1, 1,
     "  atrium show NAME [--log-lines N]\n"
     "      A workspace: its latest build, parameters, resources and agents\n"
     "      with the last N (20) lines of each agent's startup log.\n"},
    {NULL, "start", atr__cli_ws_start, ATR__CLI_PARAM, 1, 1,
     "  atrium start NAME [--parameter NAME=VALUE]...\n"
     "      Start a workspace (changing mutable parameters if given).\n"},
    {NULL, "stop", atr__cli_ws_stop, 0, 1, 1,
     "  atrium stop NAME\n"
     "      Stop a workspace.\n"},
    {NULL, "delete", atr__cli_ws_delete, ATR__CLI_YES | ATR__CLI_ORPHAN, 1, 1,
     "  atrium delete NAME [-y] [--orphan]\n"
     "      Delete a workspace and what it made (--orphan: leave that in\n"
     "      place). Asks first; without a terminal give -y.\n"},
    {NULL, "logs", atr__cli_ws_logs,
     ATR__CLI_FOLLOW | ATR__CLI_BUILD | ATR__CLI_AGENT, 1, 1,
     "  atrium logs NAME [-f] [--build N] [--agent]\n"
     "      The logs of the latest build (or build N); -f follows them.\n"
     "      --agent: the startup logs of the build's agent instead (-f:\n"
     "      until the agent writes no more).\n"},
    {NULL, "cancel", atr__cli_ws_cancel, 0, 1, 1,
     "  atrium cancel NAME\n"
     "      Cancel the workspace's running build and wait until it stops.\n"},
};

static const atr__cli_commands_t template_workspace_commands = {
    .list = commands,
    .n = sizeof commands / sizeof commands[0],
    .footer =
        "\n"
        "A workspace is NAME (yours) or OWNER/NAME. Commands that build "
        "follow\n"
        "the build's logs and exit 0 only when it succeeded; Ctrl-C stops\n"
        "following (the build goes on; `atrium cancel NAME` cancels it).\n",
    .group_footer = "",
};

int atr_cli_templates_workspaces(const char *name, int argc, char **argv) {
  return atr__cli_main(&template_workspace_commands, name, argc, argv);
}
