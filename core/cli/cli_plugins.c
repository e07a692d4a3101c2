/* core/cli/cli_plugins.c — `atrium plugins list` and `atrium plugins describe`. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "loader.h"
#include "plugin_facts.h"
#include "strv.h"

static int open_loader(atr_app_t *app) {
  char *err = NULL;
  int rc = atr_app_open_loader(app, NULL, &err);
  if (rc != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : atr_strerror(rc));
    free(err);
  }
  return rc;
}

typedef struct row {
  char *name;
  char *kind;
  char *version;
  char *file;
  char *state;
  char *error;
} row_t;

static void row_free(row_t *r) {
  free(r->name);
  free(r->kind);
  free(r->version);
  free(r->file);
  free(r->state);
  free(r->error);
}

/* Open (and for enabled plugins, configure) one plugin into a row. */
static void inspect(atr_app_t *app, const char *name, row_t *r) {
  char *err = NULL;
  atr_handle_t *h = NULL;
  bool enabled = atr_app_plugin_enabled(app, name);
  int rc = atr_loader_open(&app->loader, name, atr_app_plugin_file(app, name),
                           &h, &err);
  if (rc == 0 && enabled)
    rc = atr_loader_configure(h, app->root, &app->flags, app->env, &err);
  atr_plugin_facts_t f = {.file = ""};
  if (h)
    atr_plugin_facts(h, &f);
  r->name = strdup(name);
  r->kind = strdup(f.described ? f.kind : "-");
  r->version = strdup(f.described && f.version ? f.version : "-");
  r->file = strdup(f.file[0] ? f.file : "-");
  r->state = strdup(rc != 0 ? "failed" : enabled ? "loaded" : "disabled");
  r->error = err;
}

/* Plugin names: every <name>.so in the plugin directories, plus every
 * plugin the config names, sorted, without duplicates. */
static int plugin_names(const atr_app_t *app, atr_strv_t *names) {
  const atr_conf_node_t *p = atr_conf_get(app->root, "plugins");
  int rc = 0;
  for (size_t i = 0; p && p->type == ATR_CONF_MAP && i < p->nchildren; i++)
    rc |= atr_strv_take(names, strdup(p->children[i]->key));
  const char *dir;
  for (size_t d = 0; (dir = atr_plugin_dir_at(&app->loader, d)); d++)
    rc |= atr_strv_add_plugin_files(names, dir);
  atr_strv_sort_unique(names);
  return rc;
}

static int cmd_list(atr_app_t *app) {
  atr_strv_t names = {0};
  row_t *rows = NULL;
  if (plugin_names(app, &names) != 0 ||
      !(rows = calloc(names.n + 1, sizeof *rows))) {
    fprintf(stderr, "atrium: out of memory\n");
    atr_strv_clear(&names);
    return 1;
  }
  size_t n = names.n;
  int failed = 0;
  printf("%-24s  %-12s  %-10s  %-9s  %s\n", "NAME", "KIND", "VERSION", "STATE",
         "FILE");
  for (size_t i = 0; i < n; i++) {
    inspect(app, names.v[i], &rows[i]);
    printf("%-24s  %-12s  %-10s  %-9s  %s\n", rows[i].name, rows[i].kind,
           rows[i].version, rows[i].state, rows[i].file);
  }
  for (size_t i = 0; i < n; i++) {
    if (rows[i].error && strcmp(rows[i].state, "failed") == 0) {
      fprintf(stderr, "%s\n", rows[i].error);
      failed = 1;
    }
    row_free(&rows[i]);
  }
  free(rows);
  atr_strv_clear(&names);
  return failed;
}

static json_t *describe_json(const atr_plugin_facts_t *f) {
  char section[512];
  snprintf(section, sizeof section, "plugins.%s", f->name);
  json_t *options = f->options ? atr_options_describe_json(f->options, section)
                               : json_array();
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:{s:i, s:i}, s:o}", "name", f->name, "kind",
      f->kind, "version", f->version ? f->version : "", "description",
      f->description ? f->description : "", "file", f->file, "abi", "major",
      (int)f->abi_major, "minor", (int)f->abi_minor, "options", options);
}

static void describe_text(const atr_plugin_facts_t *f) {
  printf("%s %s — %s plugin\n%s\nfile: %s\nABI: %u.%u\n\n", f->name,
         f->version ? f->version : "", f->kind,
         f->description ? f->description : "", f->file, f->abi_major,
         f->abi_minor);
  char section[512];
  snprintf(section, sizeof section, "plugins.%s", f->name);
  if (f->options && f->options[0].name)
    atr_options_write_markdown(f->options, section, stdout);
  else
    printf("This plugin has no options.\n");
}

static int cmd_describe(atr_app_t *app, const char *name, bool as_json) {
  char *err = NULL;
  atr_handle_t *h = NULL;
  int rc = atr_loader_open(&app->loader, name, atr_app_plugin_file(app, name),
                           &h, &err);
  if (rc != 0) {
    fprintf(stderr, "atrium: %s\n", err ? err : atr_strerror(rc));
    free(err);
    return 1;
  }
  atr_plugin_facts_t f;
  atr_plugin_facts(h, &f);
  if (as_json) {
    json_t *j = describe_json(&f);
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(j);
  } else {
    describe_text(&f);
  }
  return 0;
}

/* A subcommand's argv: the words after its name, then "--json" when it
 * was given anywhere. */
static bool json_asked(int argc, char **argv) {
  return argc > 0 && strcmp(argv[argc - 1], "--json") == 0;
}

static int usage(void);

static int plugins_list(atr_app_t *app, int argc, char **argv) {
  return argc - json_asked(argc, argv) == 0 ? cmd_list(app) : usage();
}

static int plugins_describe(atr_app_t *app, int argc, char **argv) {
  bool as_json = json_asked(argc, argv);
  if (argc - as_json != 1)
    return usage();
  return cmd_describe(app, argv[0], as_json);
}

static const atr_cli_command_t plugin_commands[] = {
    {"list", "usage: atrium plugins list\n", NULL, plugins_list},
    {"describe", "       atrium plugins describe NAME [--json]\n", NULL,
     plugins_describe},
    {NULL, NULL, NULL, NULL},
};

static int usage(void) {
  atr_cli_write_summaries(plugin_commands, stderr);
  return 2;
}

int atr_cli_plugins(atr_app_t *app, int argc, char **argv) {
  char *words[4] = {0}; /* at most 3, then "--json" */
  int nwords = 0;
  bool as_json = false;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      as_json = true;
    else if (argv[i][0] == '-' || nwords == 3) {
      fprintf(stderr, "atrium plugins: unexpected argument %s\n", argv[i]);
      return 2;
    } else
      words[nwords++] = argv[i];
  }
  if (open_loader(app) != 0)
    return 1;
  const atr_cli_command_t *c =
      nwords > 0 ? atr_cli_find(plugin_commands, words[0]) : NULL;
  if (!c)
    return usage();
  if (as_json)
    words[nwords++] = (char *)"--json";
  return c->run_app(app, nwords - 1, words + 1);
}
