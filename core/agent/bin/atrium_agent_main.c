/* core/agent/bin/atrium_agent_main.c — `atrium-agent`, the agent's own
 * small executable (core/agent + core/base), shipped in the agent bundle
 * with its libraries (docs/agent.md). `atrium agent` in the main binary
 * runs the same agent_command. */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "version.h"

int main(int argc, char **argv) {
  if (argc >= 2 &&
      (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)) {
    printf("atrium-agent %s (commit %s)\n", ATR_VERSION, ATR_COMMIT);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "agent") == 0)
    return agent_command("atrium-agent", argc - 2, argv + 2);
  FILE *out = argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
                            strcmp(argv[1], "help") == 0)
                  ? stdout
                  : stderr;
  fputs("usage: atrium-agent agent [--env-file FILE] [--log-dir DIR] "
        "[--init [-- CMD...]]\n"
        "       atrium-agent version\n",
        out);
  return out == stdout ? 0 : 2;
}
