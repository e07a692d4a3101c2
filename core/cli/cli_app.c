/* core/cli/cli_app.c — loading the configuration for the commands that
 * need it, and `atrium server --print-config` (cli.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "plugin_facts.h"

static const char *env_get(const char *name) {
  return getenv(name);
}

/* Pulls "--config FILE" / "--config=FILE" out of argv. */
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

int atr_cli_with_app(int argc, char **argv, atr_cli_app_fn fn) {
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
  int status = 1;
  if (rc != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : atr_strerror(rc));
    free(err);
  } else {
    status = fn(&app, nrest, rest);
  }
  atr_app_free(&app);
  free(rest);
  return status;
}

int atr_cli_print_config(atr_app_t *app) {
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
  atr_plugin_facts_t f;
  bool any = atr_plugin_facts_at(&app->loader, 0, &f);
  printf("plugins:%s\n", any ? "" : " {}");
  for (size_t i = 0; atr_plugin_facts_at(&app->loader, i, &f); i++) {
    printf("  %s:\n    enabled: true\n    file: %s\n", f.name, f.file);
    atr_optset_write_yaml(f.values, 4, stdout);
  }
  return 0;
}
