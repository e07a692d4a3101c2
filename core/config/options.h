/* core/config/options.h — resolving option tables against the configuration.
 *
 * The core's own options and every plugin's are atr_option_t tables (see
 * atrium/option.h). A table is resolved against one section of the config
 * tree — the root for the core, plugins.<name> for a plugin — into an
 * atr_optset_t: one typed value per option, with where it came from. The
 * value of an option comes, strongest first, from
 *   a --flag          --http.address=127.0.0.1:4000 (or "--http.address V")
 *   the environment   ATRIUM_HTTP_ADDRESS  (ATRIUM_ + full dotted key in
 *                     upper case, dots and dashes as underscores)
 *   the config tree   http: { address: ... }
 *   the default       from the table
 * Options whose name has dots ("http.address") are nested maps in YAML.
 *
 * Error messages (one line, no trailing newline, exact formats — tests
 * assert them):
 *   unknown key:    "<where>: <full.key>: unknown option; valid options: a, b, c"
 *   wrong type:     "<where>: <full.key>: \"abc\" is not an integer; expected ..."
 *   out of range:   "<where>: <full.key>: 0 is out of range; expected ..."
 *   missing:        "<where>: <full.key>: required option is missing; set it in
 *                    the config file, with ATRIUM_X or with --full.key"
 * where <where> is "file:line:col" for the config, "environment ATRIUM_X" or
 * "flag --full.key".
 *
 * Ownership: an optset owns its values; strings handed out by
 * atr_optset_fill() point into it and live until atr_optset_free().
 * Threads: an optset is built on one thread; after that, reads are safe from
 * any thread as long as nobody resolves into it again.
 */
#ifndef ATRIUM_CORE_OPTIONS_H
#define ATRIUM_CORE_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "atrium/option.h"
#include "conf.h"

/* A --flag from the command line: key without the dashes, and its value. */
typedef struct atr_override {
  char *key;
  char *value;
  int used; /* set by resolve when an option took it */
} atr_override_t;

typedef struct atr_overrides {
  atr_override_t *items;
  size_t n;
} atr_overrides_t;

/* Collect "--key=value" and "--key value" arguments for keys that contain a
 * dot or are a known top-level option; anything else is left for the caller
 * (returned in *rest / *nrest, borrowed from argv). */
int atr_overrides_from_argv(int argc, char **argv, atr_overrides_t *out,
                            char ***rest, int *nrest, char **err);
void atr_overrides_free(atr_overrides_t *o);
/* An error naming the first flag no option took, or NULL when all were used
 * ("flag --htp.address: unknown option; valid options: ..." is produced by
 * the caller who knows the tables; this returns the key). */
const char *atr_overrides_first_unused(const atr_overrides_t *o);

typedef const char *(*atr_getenv_fn)(const char *name);

typedef struct atr_optval {
  const atr_option_t *opt;
  bool set;  /* has a value (default included) */
  char *raw; /* the value as text, lists joined with ", " */
  char *
      source; /* "default", "file:line:col", "environment ATRIUM_X", "flag --x" */
  union {
    char *s;     /* STRING, ENUM, SECRET */
    int64_t i;   /* INT; DURATION in milliseconds */
    bool b;      /* BOOL */
    double d;    /* DOUBLE */
    uint64_t u;  /* SIZE in bytes */
    char **list; /* LIST, NULL-terminated */
  } v;
} atr_optval_t;

typedef struct atr_optset {
  const atr_option_t *table;
  char *section; /* "" for the core, "plugins.provisioner_echo" */
  size_t n;
  atr_optval_t *vals; /* same order as table */
} atr_optset_t;

/* Parse text as the option's type into `out` (v and raw; not source). On
 * failure *why is "\"abc\" is not an integer; expected ..." (no location). */
int atr_option_parse(const atr_option_t *opt, const char *text,
                     atr_optval_t *out, char **why);
int atr_parse_size(const char *text, uint64_t *bytes);
int atr_parse_duration(const char *text, int64_t *ms);
int atr_parse_bool(const char *text, bool *out);
/* "64MiB", "5m", "1h30m" — the shortest exact spelling. Caller frees. */
char *atr_format_size(uint64_t bytes);
char *atr_format_duration(int64_t ms);
const char *atr_option_type_name(atr_option_type_t type);

/* The environment variable for a full dotted key: "ATRIUM_HTTP_ADDRESS". */
char *atr_option_env_name(const char *full_key);

/* Resolve `table` against the map at `section` in `root` (the root itself
 * when section is ""); a missing section counts as empty. Keys of the
 * section listed in `reserved` (NULL-terminated, may be NULL) are skipped,
 * and so are sub-maps named in `skip_maps` (the core skips "plugins").
 * On error returns ATR_ECONFIG with *err set. */
int atr_optset_resolve(atr_optset_t *set, const atr_option_t *table,
                       const char *section, const atr_conf_node_t *root,
                       const char *const *reserved,
                       const char *const *skip_maps, atr_overrides_t *flags,
                       atr_getenv_fn env, char **err);
void atr_optset_free(atr_optset_t *set);

/* Write every option with an offset into ctx (see atrium/option.h). */
void atr_optset_fill(const atr_optset_t *set, void *ctx);
const atr_optval_t *atr_optset_find(const atr_optset_t *set, const char *name);

/* The effective values as a JSON object keyed by option name:
 * {"value": ..., "source": "..."}; secrets are "(redacted)". */
json_t *atr_optset_to_json(const atr_optset_t *set);
/* Append the effective values as YAML under `indent` spaces (nested by the
 * dots in names), secrets redacted, each line commented with its source. */
void atr_optset_write_yaml(const atr_optset_t *set, int indent, FILE *out);

/* The table as JSON (for describe --json and docs): an array of
 * {name, type, default, required, reloadable, deprecated, secret,
 *  description, choices?, min?, max?, env}. `section` prefixes env names. */
json_t *atr_options_describe_json(const atr_option_t *table,
                                  const char *section);
/* The table as a Markdown table (docs/configuration.md). */
void atr_options_write_markdown(const atr_option_t *table, const char *section,
                                FILE *out);

/* Compare two resolved sets of the same table. For each option whose raw
 * value differs, call cb(ud, old, new). */
void atr_optset_diff(const atr_optset_t *old_set, const atr_optset_t *new_set,
                     void (*cb)(void *ud, const atr_optval_t *old_val,
                                const atr_optval_t *new_val),
                     void *ud);

/* How a value is shown to people: raw text, or "(redacted)" for secrets. */
const char *atr_optval_display(const atr_optval_t *val);

#endif
