/* core/main.c — `atrium`: one binary, several subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "cli_builds.h"
#include "cli_client.h"
#include "cli_policy.h"
#include "cli_support.h"
#include "log.h"
#include "main_server.h"
#include "version.h"

static const char usage[] =
    "usage: atrium <command> [options]\n"
    "\n"
    "commands:\n"
    "  server [--print-config]        run the control plane\n"
    "  plugins list                   the plugins in the plugin directories\n"
    "  plugins describe NAME [--json] a plugin's description and options\n"
    "  db migrate|status              apply or list schema migrations\n"
    "  db backup|restore FILE         copy the database to or from FILE\n"
    "  docs config [--output FILE] [--plugin-dir DIR]...\n"
    "                                 write the configuration reference\n"
    "  login URL | logout | whoami    sign in to a server, sign out, who am I\n"
    "  users list|create|show|suspend|activate\n"
    "                                 manage users (--help for each)\n"
    "  tokens create|list|remove      manage your API tokens\n"
    "  templates push|list|versions|show\n"
    "                                 upload and inspect templates\n"
    "  create NAME --template T       create a workspace (and build it)\n"
    "  list | show NAME               your workspaces, one workspace\n"
    "  start|stop|delete NAME         build a workspace, following the logs\n"
    "  logs NAME [-f] | cancel NAME   a build's logs; cancel a build\n"
    "  policy test|eval POLICY.lua... run Lua policies offline (--help)\n"
    "  support bundle [WORKSPACE] [-o FILE]\n"
    "                                 collect a tar.gz for support (owners)\n"
    "  version                        print the version\n"
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

static const char *env_get(const char *name) {
  return getenv(name);
}

/* Pulls "--config FILE" / "--config=FILE" out of rest. */
static int take_config(int *argc, char **argv, const char **config) {
  int out = 0;
  for (int i = 0; i < *argc; i++) {
    if (strcmp(argv[i], "--config") == 0) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "atrium: --config needs a file name\n");
        return -1;
      }
      *config = argv[++i];
    } else if (strncmp(argv[i], "--config=", 9) == 0) {
      *config = argv[i] + 9;
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return 0;
}

static int has_flag(int argc, char **argv, const char *flag) {
  for (int i = 0; i < argc; i++)
    if (strcmp(argv[i], flag) == 0)
      return 1;
  return 0;
}

static int print_config(atr_app_t *app) {
  char *err = NULL;
  int rc = atr_app_load_plugins(app, false, NULL, &err);
  if (rc == 0)
    rc = atr_app_check_flags(app, &err);
  if (rc != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : atr_strerror(rc));
    free(err);
    return 1;
  }
  printf("# effective configuration of %s (secrets redacted)\n",
         app->config_path ? app->config_path : "the embedded default");
  atr_optset_write_yaml(&app->core_opts, 0, stdout);
  printf("plugins:%s\n", app->loader.nplugins ? "" : " {}");
  for (size_t i = 0; i < app->loader.nplugins; i++) {
    const atr_handle_t *h = app->loader.plugins[i];
    printf("  %s:\n    enabled: true\n    file: %s\n", h->name, h->file);
    atr_optset_write_yaml(&h->opts, 4, stdout);
  }
  return 0;
}

static int run_with_app(const char *cmd, int argc, char **argv) {
  const char *config = NULL;
  atr_overrides_t flags = {0};
  char **rest = NULL;
  int nrest = 0;
  char *err = NULL;
  if (take_config(&argc, argv, &config) != 0)
    return 2;
  if (atr_overrides_from_argv(argc, argv, &flags, &rest, &nrest, &err) != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : "bad arguments");
    free(err);
    return 2;
  }
  atr_app_t app;
  int rc = atr_app_load(&app, config, &flags, env_get, &err);
  atr_overrides_free(&flags);
  if (rc != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : atr_strerror(rc));
    free(err);
    atr_app_free(&app);
    free(rest);
    return 1;
  }
  int status;
  if (strcmp(cmd, "plugins") == 0)
    status = atr_cli_plugins(&app, nrest, rest);
  else if (strcmp(cmd, "db") == 0)
    status = atr_cli_db(&app, nrest, rest);
  else if (has_flag(nrest, rest, "--print-config"))
    status = print_config(&app);
  else if (nrest > 0) {
    fprintf(stderr, "atrium server: unexpected argument %s\n%s", rest[0],
            usage);
    status = 2;
  } else
    status = atr_server_run(&app);
  atr_app_free(&app);
  free(rest);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0 || strcmp(argv[1], "-h") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
    printf("atrium %s (commit %s, plugin ABI %d.%d)\n", ATR_VERSION, ATR_COMMIT,
           ATR_ABI_MAJOR, ATR_ABI_MINOR);
    return 0;
  }
  if (strcmp(cmd, "docs") == 0)
    return atr_cli_docs(argc - 2, argv + 2);
  if (strcmp(cmd, "policy") == 0)
    return atr_cli_policy(argc - 2, argv + 2);
  if (atr_cli_client_handles(cmd))
    return atr_cli_client(cmd, argc - 2, argv + 2);
  if (atr_cli_builds_handles(cmd))
    return atr_cli_builds(cmd, argc - 2, argv + 2);
  if (atr_cli_support_handles(cmd))
    return atr_cli_support(cmd, argc - 2, argv + 2);
  if (strcmp(cmd, "server") == 0 || strcmp(cmd, "plugins") == 0 ||
      strcmp(cmd, "db") == 0)
    return run_with_app(cmd, argc - 2, argv + 2);
  fprintf(stderr, "atrium: unknown command \"%s\"\n%s", cmd, usage);
  return 2;
}
