/* core/cli/cli_docs.c — `atrium docs config`: the configuration reference,
 * generated from the core's option table and every plugin's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "loader.h"
#include "log.h"
#include "plugin_facts.h"
#include "strv.h"

static const char intro[] =
    "# Configuration reference\n"
    "\n"
    "<!-- Generated from the option tables by `atrium docs config` "
    "(`cmake --build build --target docs`). Do not edit by hand: "
    "the test suite fails when this file is out of date. -->\n"
    "\n"
    "atrium reads `config/atrium.yaml` (or the file given with `--config`; "
    "without either, the copy embedded in the binary), then every "
    "`conf.d/*.yaml` beside it in name order, each merged over the last: "
    "maps merge key by key, a value or a list replaces. Any option can be "
    "overridden, strongest first, by a flag (`--http.address=127.0.0.1:4000`) "
    "or an environment variable (`ATRIUM_HTTP_ADDRESS`). "
    "`atrium server --print-config` shows the result with secrets redacted.\n"
    "\n"
    "Value types: *size* takes a unit (`64MiB`, `1GB`, `512` bytes); "
    "*duration* takes units `ms`, `s`, `m`, `h`, `d` (`250ms`, `5m`, "
    "`1h30m`); *list* is a YAML list, or comma-separated in a flag or "
    "variable. *Reloadable* options take effect on SIGHUP; others need a "
    "restart.\n"
    "\n"
    "## Core\n"
    "\n";

static int write_plugin(atr_loader_t *l, const char *name, FILE *out) {
  atr_handle_t *h = NULL;
  char *err = NULL;
  if (atr_loader_open(l, name, NULL, &h, &err) != 0) {
    fprintf(stderr, "atrium docs: %s\n", err ? err : "cannot load");
    free(err);
    return 1;
  }
  atr_plugin_facts_t f;
  atr_plugin_facts(h, &f);
  char section[512];
  snprintf(section, sizeof section, "plugins.%s", f.name);
  fprintf(out,
          "### %s\n\n%s\n\nKind: %s. Enable with "
          "`plugins.%s.enabled: true`.\n\n",
          f.name, f.description ? f.description : "", f.kind, f.name);
  if (f.options && f.options[0].name)
    atr_options_write_markdown(f.options, section, out);
  else
    fputs("No options.\n", out);
  fputc('\n', out);
  return 0;
}

static int write_reference(const char *const *dirs, size_t ndirs, FILE *out) {
  fputs(intro, out);
  atr_options_write_markdown(atr_core_options, "", out);
  fputs("\n## Plugins\n\n"
        "Each plugin reads its options from `plugins.<name>` and also "
        "accepts `enabled` (load it) and `file` (an explicit path inside "
        "`plugin_dirs`).\n\n",
        out);
  int failed = 0;
  for (size_t i = 0; i < ndirs; i++) {
    atr_loader_t l = {0};
    char *err = NULL;
    if (atr_loader_init(&l, &dirs[i], 1, &err) != 0) {
      fprintf(stderr, "atrium docs: %s\n", err ? err : "bad directory");
      free(err);
      return 1;
    }
    atr_strv_t names = {0};
    failed |= atr_strv_add_plugin_files(&names, dirs[i]) != 0;
    atr_strv_sort_unique(&names);
    for (size_t k = 0; k < names.n; k++)
      failed |= write_plugin(&l, names.v[k], out);
    atr_strv_clear(&names);
    atr_loader_shutdown(&l);
  }
  return failed;
}

static int docs_config(const char *name, int argc, char **argv) {
  (void)name;
  const char *output = NULL;
  const char *dirs[16];
  size_t ndirs = 0;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--output") == 0 && i + 1 < argc)
      output = argv[++i];
    else if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc && ndirs < 16)
      dirs[ndirs++] = argv[++i];
    else {
      fprintf(stderr, "atrium docs: unexpected argument %s\n", argv[i]);
      return 2;
    }
  }
  atr_log_set_level(ATR_LOG_WARN);
  FILE *out = output ? fopen(output, "w") : stdout;
  if (!out) {
    perror(output);
    return 1;
  }
  int rc = write_reference(dirs, ndirs, out);
  if (output)
    fclose(out);
  return rc;
}

static const atr_cli_command_t docs_commands[] = {
    {"config",
     "usage: atrium docs config [--output FILE] [--plugin-dir DIR]...\n",
     docs_config, NULL},
    {NULL, NULL, NULL, NULL},
};

int atr_cli_docs(const char *name, int argc, char **argv) {
  (void)name;
  const atr_cli_command_t *c =
      argc > 0 ? atr_cli_find(docs_commands, argv[0]) : NULL;
  if (c)
    return c->run(argv[0], argc - 1, argv + 1);
  atr_cli_write_summaries(docs_commands, stderr);
  return 2;
}
