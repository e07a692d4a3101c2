/* core/cli/cli_agent.c — `atrium agent` (cli_agent.h). */
#include "cli_agent.h"

#include "agent.h"

int atr_cli_agent(const char *name, int argc, char **argv) {
  (void)name;
  return agent_command("atrium", argc, argv);
}
