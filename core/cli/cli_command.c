/* core/cli/cli_command.c — picking the top-level command from the table,
 * and the help written from it (cli_command.h). */
#include "cli_command.h"

#include <stdbool.h>
#include <string.h>

#include "atrium/plugin.h"
#include "cli.h"
#include "version.h"

static const char usage_footer[] =
    "\n"
    "common options:\n"
    "  --config FILE                  main config file (default: "
    "config/atrium.yaml,\n"
    "                                 else the embedded default); conf.d/ "
    "beside it is merged\n"
    "  --OPTION=VALUE                 set any option, e.g. "
    "--http.address=127.0.0.1:4000\n"
    "                                 or --plugins.NAME.OPTION=VALUE\n"
    "environment: ATRIUM_<OPTION> with dots as underscores, e.g. "
    "ATRIUM_HTTP_ADDRESS\n";

const atr_cli_command_t *atr_cli_find(const atr_cli_command_t *table,
                                      const char *name) {
  for (const atr_cli_command_t *c = table; c->name; c++)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

void atr_cli_write_summaries(const atr_cli_command_t *table, FILE *out) {
  for (const atr_cli_command_t *c = table; c->name; c++)
    if (c->summary)
      fputs(c->summary, out);
}

void atr_cli_write_usage(const atr_cli_command_t *table, FILE *out) {
  fputs("usage: atrium <command> [options]\n"
        "\n"
        "commands:\n",
        out);
  atr_cli_write_summaries(table, out);
  fputs(usage_footer, out);
}

static bool asks_for_help(const char *arg) {
  return strcmp(arg, "--help") == 0 || strcmp(arg, "help") == 0 ||
         strcmp(arg, "-h") == 0;
}

int atr_cli_dispatch(const atr_cli_command_t *table, int argc, char **argv) {
  if (argc < 2) {
    atr_cli_write_usage(table, stderr);
    return 2;
  }
  if (asks_for_help(argv[1])) {
    atr_cli_write_usage(table, stdout);
    return 0;
  }
  const atr_cli_command_t *c = atr_cli_find(table, argv[1]);
  if (c && c->run)
    return c->run(argv[1], argc - 2, argv + 2);
  if (c)
    return atr_cli_with_app(argc - 2, argv + 2, c->run_app);
  fprintf(stderr, "atrium: unknown command \"%s\"\n", argv[1]);
  atr_cli_write_usage(table, stderr);
  return 2;
}

int atr_cli_version(const char *name, int argc, char **argv) {
  (void)name, (void)argc, (void)argv;
  printf("atrium %s (commit %s, plugin ABI %d.%d)\n", ATR_VERSION, ATR_COMMIT,
         ATR_ABI_MAJOR, ATR_ABI_MINOR);
  return 0;
}
