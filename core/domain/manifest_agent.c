/* core/domain/manifest_agent.c — template.yaml `agent:` into the agent spec.
 *
 * The spec starts as the defaults (docs/design/agent.md §4.1) and each key
 * written overwrites its part once it passes its check. Every value is
 * bounded here, at import, so what reaches the database, the provisioners
 * and the agent is small and well formed. All problems are collected; the
 * spec is returned only when there were none in this section. */
#include "manifest_agent.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "options.h"

#define SCRIPT_MAX ((size_t)64 * 1024)
#define METADATA_SCRIPT_MAX ((size_t)8 * 1024)
#define TEXT_MAX ((size_t)4096) /* paths, URLs, names shown to users */
#define ENV_MAX 64
#define ENV_NAME_MAX 128
#define ITEMS_MAX 32 /* metadata items, apps */
#define HOUR_S 3600

static const char *const agent_keys =
    "name, arch, directory, env, connection_timeout, startup_script, "
    "startup_script_behavior, startup_script_timeout, shutdown_script, "
    "shutdown_script_timeout, motd_file, troubleshooting_url, metadata, apps";
static const char *const metadata_keys =
    "key, display_name, script, interval, timeout";
static const char *const app_keys =
    "slug, display_name, url, icon, share, subdomain, healthcheck";
static const char *const healthcheck_keys = "url, interval, threshold";

#define err atr__manifest_error

/* ---- scalars ------------------------------------------------------------- */

/* The scalar's text if it is one and at most max bytes, else NULL. */
static const char *text(json_t *errs, const atr_conf_node_t *n,
                        const char *field, size_t max) {
  if (n->type != ATR_CONF_SCALAR || n->is_null) {
    err(errs, n, field, "must be a single value");
    return NULL;
  }
  size_t len = strlen(n->value);
  if (len > max) {
    err(errs, n, field, "is %zu bytes long; the limit is %zu", len, max);
    return NULL;
  }
  return n->value;
}

/* A duration in whole seconds from min_s to HOUR_S; range says so. */
static bool seconds(json_t *errs, const atr_conf_node_t *n, const char *field,
                    int64_t min_s, const char *range, int64_t *out) {
  const char *s = text(errs, n, field, 64);
  int64_t ms = 0;
  if (!s)
    return false;
  if (atr_parse_duration(s, &ms) == ATR_EINVAL) {
    err(errs, n, field,
        "\"%s\" is not a duration; use a number and a unit, like 30s, 5m "
        "or 1h",
        s);
    return false;
  }
  if (ms % 1000 == 0 && ms / 1000 >= min_s && ms / 1000 <= HOUR_S) {
    *out = ms / 1000;
    return true;
  }
  if (ms % 1000 != 0 && ms < (int64_t)HOUR_S * 1000)
    err(errs, n, field, "%s is not a whole number of seconds", s);
  else
    err(errs, n, field, "%s is out of range; use %s", s, range);
  return false;
}

bool atr__manifest_chars_ok(const char *s, size_t max, const char *extra) {
  size_t n = strlen(s);
  if (n < 1 || n > max)
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          strchr(extra, *p)))
      return false;
  return true;
}

static bool slug_ok(const char *s) {
  size_t n = strlen(s);
  return atr__manifest_chars_ok(s, 32, "-") && s[0] != '-' && s[n - 1] != '-' &&
         !strstr(s, "--");
}

static bool env_name_ok(const char *s) {
  if (!*s || strlen(s) > ENV_NAME_MAX || (*s >= '0' && *s <= '9'))
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '_'))
      return false;
  return true;
}

/* http:// (and https:// unless http_only) followed by a host; no spaces
 * or control characters anywhere. */
static bool url_ok(const char *s, bool http_only) {
  size_t skip = strncmp(s, "http://", 7) == 0                  ? 7
                : !http_only && strncmp(s, "https://", 8) == 0 ? 8
                                                               : 0;
  if (!skip || !s[skip] || s[skip] == '/')
    return false;
  for (const char *p = s; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return false;
  return true;
}

static bool one_of(const char *s, const char *const *words) {
  for (; *words; words++)
    if (strcmp(s, *words) == 0)
      return true;
  return false;
}

static void set_text(json_t *obj, const char *key, const char *s) {
  if (s)
    json_object_set_new(obj, key, json_string(s));
}

static void set_url(json_t *errs, const atr_conf_node_t *n, const char *field,
                    json_t *obj, const char *key, bool http_only) {
  const char *s = text(errs, n, field, TEXT_MAX);
  if (s && !url_ok(s, http_only))
    err(errs, n, field, "\"%s\" is not a URL; use %s", s,
        http_only ? "http://host:port/path" : "http:// or https:// and a host");
  else
    set_text(obj, key, s);
}

/* ---- top-level keys ------------------------------------------------------- */

typedef void (*key_fn)(json_t *errs, const atr_conf_node_t *n,
                       const char *field, json_t *spec, const char *key);

static void key_name(json_t *errs, const atr_conf_node_t *n, const char *field,
                     json_t *spec, const char *key) {
  const char *s = text(errs, n, field, 64);
  if (s && !atr__manifest_chars_ok(s, 64, "-"))
    err(errs, n, field,
        "\"%s\" is not a valid agent name; use 1-64 characters of a-z, 0-9 "
        "and -",
        s);
  else
    set_text(spec, key, s);
}

static void key_arch(json_t *errs, const atr_conf_node_t *n, const char *field,
                     json_t *spec, const char *key) {
  static const char *const arches[] = {"amd64", "arm64", NULL};
  const char *s = text(errs, n, field, 64);
  if (s && !one_of(s, arches))
    err(errs, n, field, "\"%s\" is not a supported arch; use amd64 or arm64",
        s);
  else
    set_text(spec, key, s);
}

static void key_directory(json_t *errs, const atr_conf_node_t *n,
                          const char *field, json_t *spec, const char *key) {
  const char *s = text(errs, n, field, TEXT_MAX);
  if (s && *s && s[0] != '/' && strcmp(s, "~") != 0 && strncmp(s, "~/", 2) != 0)
    err(errs, n, field,
        "\"%s\" is not a directory the agent can find; use an absolute path "
        "or one under ~/ (like /home/dev or ~/src)",
        s);
  else
    set_text(spec, key, s);
}

static void key_text(json_t *errs, const atr_conf_node_t *n, const char *field,
                     json_t *spec, const char *key) {
  set_text(spec, key, text(errs, n, field, TEXT_MAX));
}

static void key_script(json_t *errs, const atr_conf_node_t *n,
                       const char *field, json_t *spec, const char *key) {
  set_text(spec, key, text(errs, n, field, SCRIPT_MAX));
}

static void key_timeout(json_t *errs, const atr_conf_node_t *n,
                        const char *field, json_t *spec, const char *key) {
  int64_t s = 0;
  if (seconds(errs, n, field, 0, "0 (none) to 1h", &s))
    json_object_set_new(spec, key, json_integer(s));
}

static void key_behavior(json_t *errs, const atr_conf_node_t *n,
                         const char *field, json_t *spec, const char *key) {
  static const char *const behaviors[] = {"blocking", "non-blocking", NULL};
  const char *s = text(errs, n, field, 64);
  if (s && !one_of(s, behaviors))
    err(errs, n, field, "\"%s\" is not valid; use blocking or non-blocking", s);
  else
    set_text(spec, key, s);
}

static void key_url(json_t *errs, const atr_conf_node_t *n, const char *field,
                    json_t *spec, const char *key) {
  set_url(errs, n, field, spec, key, false);
}

static void key_env(json_t *errs, const atr_conf_node_t *n, const char *field,
                    json_t *spec, const char *key) {
  char f[256];
  if (n->type != ATR_CONF_MAP) {
    err(errs, n, field, "must be a map of NAME: value");
    return;
  }
  if (n->nchildren > ENV_MAX)
    err(errs, n, field, "has %zu variables; the limit is %d", n->nchildren,
        ENV_MAX);
  json_t *env = json_object_get(spec, key);
  for (size_t i = 0; i < n->nchildren && i < ENV_MAX; i++) {
    const atr_conf_node_t *e = n->children[i];
    snprintf(f, sizeof f, "%s.%.128s", field, e->key);
    const char *v = text(errs, e, f, TEXT_MAX);
    if (!env_name_ok(e->key))
      err(errs, e, f,
          "\"%.128s\" is not a valid variable name; use letters, digits and "
          "_, not starting with a digit",
          e->key);
    else if (strncmp(e->key, "ATRIUM_AGENT_", 13) == 0)
      err(errs, e, f,
          "%s is reserved: names starting ATRIUM_AGENT_ are set "
          "by atrium",
          e->key);
    else if (v)
      json_object_set_new(env, e->key, json_string(v));
  }
}

/* ---- metadata --------------------------------------------------------------- */

typedef struct item_nodes {
  const atr_conf_node_t *key, *script, *interval, *timeout, *url;
  bool interval_ok, timeout_ok;
} item_nodes_t;

static void metadata_key(json_t *errs, const atr_conf_node_t *e, const char *f,
                         json_t *item, item_nodes_t *in) {
  int64_t s = 0;
  if (strcmp(e->key, "key") == 0) {
    const char *k = text(errs, e, f, 64);
    in->key = e;
    if (k && !atr__manifest_chars_ok(k, 64, "_"))
      err(errs, e, f,
          "\"%s\" is not a valid key; use 1-64 characters of a-z, 0-9 and _",
          k);
    else
      set_text(item, "key", k);
  } else if (strcmp(e->key, "display_name") == 0) {
    set_text(item, "display_name", text(errs, e, f, TEXT_MAX));
  } else if (strcmp(e->key, "script") == 0) {
    in->script = e;
    set_text(item, "script", text(errs, e, f, METADATA_SCRIPT_MAX));
  } else if (strcmp(e->key, "interval") == 0) {
    in->interval = e;
    if ((in->interval_ok = seconds(errs, e, f, 1, "1s to 1h", &s)))
      json_object_set_new(item, "interval_s", json_integer(s));
  } else if (strcmp(e->key, "timeout") == 0) {
    in->timeout = e;
    if ((in->timeout_ok = seconds(errs, e, f, 1, "1s to 1h", &s)))
      json_object_set_new(item, "timeout_s", json_integer(s));
  } else {
    err(errs, e, f, "unknown key \"%s\"; valid keys: %s", e->key,
        metadata_keys);
  }
}

/* Field "<list>[i]" or "<list>[i].<sub>" into f. */
static const char *item_field(char *f, size_t size, const char *list, size_t i,
                              const char *sub) {
  snprintf(f, size, "%s[%zu]%s%.128s", list, i, sub ? "." : "", sub ? sub : "");
  return f;
}

/* An item's id (id_key: "key" or "slug") must differ from those of the
 * items before it in all. */
static void item_unique(json_t *errs, const item_nodes_t *in, const char *list,
                        size_t i, json_t *all, const char *id_key,
                        const char *id) {
  char f[256];
  for (size_t j = 0; *id && j < json_array_size(all); j++)
    if (strcmp(
            json_string_value(json_object_get(json_array_get(all, j), id_key)),
            id) == 0)
      err(errs, in->key, item_field(f, sizeof f, list, i, id_key),
          "duplicate %s \"%s\" (also %s[%zu])", id_key, id, list, j);
}

static json_t *metadata_item(json_t *errs, const atr_conf_node_t *n,
                             const char *list, size_t i, json_t *all) {
  char f[256];
  if (n->type != ATR_CONF_MAP) {
    err(errs, n, item_field(f, sizeof f, list, i, NULL),
        "must be a map with keys: %s", metadata_keys);
    return NULL;
  }
  json_t *item =
      json_pack("{s:s, s:s, s:s, s:i, s:i}", "key", "", "display_name", "",
                "script", "", "interval_s", 10, "timeout_s", 1);
  item_nodes_t in = {0};
  for (size_t k = 0; k < n->nchildren; k++)
    metadata_key(errs, n->children[k],
                 item_field(f, sizeof f, list, i, n->children[k]->key), item,
                 &in);
  const char *key = json_string_value(json_object_get(item, "key"));
  if (!in.key)
    err(errs, n, item_field(f, sizeof f, list, i, "key"), "key is required");
  if (!in.script)
    err(errs, n, item_field(f, sizeof f, list, i, "script"),
        "script is required");
  item_unique(errs, &in, list, i, all, "key", key);
  if (!*json_string_value(json_object_get(item, "display_name")))
    set_text(item, "display_name", key);
  json_int_t iv = json_integer_value(json_object_get(item, "interval_s"));
  json_int_t tv = json_integer_value(json_object_get(item, "timeout_s"));
  if (in.timeout_ok && (in.interval_ok || !in.interval) && tv > iv)
    err(errs, in.timeout, item_field(f, sizeof f, list, i, "timeout"),
        "%s is longer than the interval %s", in.timeout->value,
        in.interval ? in.interval->value : "10s");
  return item;
}

typedef json_t *(*item_fn)(json_t *errs, const atr_conf_node_t *n,
                           const char *list, size_t i, json_t *all);

/* A list section (metadata, apps): each item checked by fn, which sees
 * the items before it, and appended to spec[key]. */
static void item_list(json_t *errs, const atr_conf_node_t *n, const char *field,
                      json_t *spec, const char *key, item_fn fn,
                      const char *keys) {
  if (n->type != ATR_CONF_SEQ) {
    err(errs, n, field, "must be a list of {%s}", keys);
    return;
  }
  if (n->nchildren > ITEMS_MAX)
    err(errs, n, field, "has %zu items; the limit is %d", n->nchildren,
        ITEMS_MAX);
  json_t *all = json_object_get(spec, key);
  for (size_t i = 0; i < n->nchildren && i < ITEMS_MAX; i++) {
    json_t *item = fn(errs, n->children[i], field, i, all);
    if (item)
      json_array_append_new(all, item);
  }
}

static void key_metadata(json_t *errs, const atr_conf_node_t *n,
                         const char *field, json_t *spec, const char *key) {
  item_list(errs, n, field, spec, key, metadata_item, metadata_keys);
}

/* ---- apps ---------------------------------------------------------------------- */

static json_t *healthcheck(json_t *errs, const atr_conf_node_t *n,
                           const char *field) {
  char f[400];
  int64_t s = 0;
  if (n->type != ATR_CONF_MAP) {
    err(errs, n, field, "must be a map with keys: %s", healthcheck_keys);
    return NULL;
  }
  json_t *hc =
      json_pack("{s:s, s:i, s:i}", "url", "", "interval_s", 5, "threshold", 6);
  bool has_url = false;
  for (size_t k = 0; k < n->nchildren; k++) {
    const atr_conf_node_t *e = n->children[k];
    snprintf(f, sizeof f, "%s.%.128s", field, e->key);
    if (strcmp(e->key, "url") == 0) {
      has_url = true;
      set_url(errs, e, f, hc, "url", true);
    } else if (strcmp(e->key, "interval") == 0) {
      if (seconds(errs, e, f, 1, "1s to 1h", &s))
        json_object_set_new(hc, "interval_s", json_integer(s));
    } else if (strcmp(e->key, "threshold") == 0) {
      const char *t = text(errs, e, f, 16);
      char *end = NULL;
      long v = t ? strtol(t, &end, 10) : 0;
      if (t && (!*t || *end || v < 1 || v > 100))
        err(errs, e, f,
            "\"%s\" is not a valid threshold; use a whole number from 1 to "
            "100",
            t);
      else if (t)
        json_object_set_new(hc, "threshold", json_integer(v));
    } else {
      err(errs, e, f, "unknown key \"%s\"; valid keys: %s", e->key,
          healthcheck_keys);
    }
  }
  if (!has_url) {
    snprintf(f, sizeof f, "%s.url", field);
    err(errs, n, f, "url is required (http://host:port/path)");
  }
  return hc;
}

static void app_key(json_t *errs, const atr_conf_node_t *e, const char *f,
                    json_t *app, item_nodes_t *in) {
  static const char *const shares[] = {"owner", "authenticated", "public",
                                       NULL};
  const char *s = NULL;
  if (strcmp(e->key, "slug") == 0) {
    in->key = e;
    if ((s = text(errs, e, f, 64)) && !slug_ok(s))
      err(errs, e, f,
          "\"%s\" is not a valid slug; use 1-32 characters of a-z, 0-9 and - "
          "(like code-server)",
          s);
    else
      set_text(app, "slug", s);
  } else if (strcmp(e->key, "display_name") == 0) {
    set_text(app, "display_name", text(errs, e, f, TEXT_MAX));
  } else if (strcmp(e->key, "url") == 0) {
    in->url = e;
    set_url(errs, e, f, app, "url", false);
  } else if (strcmp(e->key, "icon") == 0) {
    set_text(app, "icon", text(errs, e, f, TEXT_MAX));
  } else if (strcmp(e->key, "share") == 0) {
    if ((s = text(errs, e, f, 64)) && !one_of(s, shares))
      err(errs, e, f, "\"%s\" is not valid; use owner, authenticated or public",
          s);
    else
      set_text(app, "share", s);
  } else if (strcmp(e->key, "subdomain") == 0) {
    if ((s = text(errs, e, f, 16)) && strcmp(s, "true") != 0 &&
        strcmp(s, "false") != 0)
      err(errs, e, f, "\"%s\" is not a bool; use true or false", s);
    else if (s)
      json_object_set_new(app, "subdomain", json_boolean(s[0] == 't'));
  } else if (strcmp(e->key, "healthcheck") == 0) {
    json_t *hc = healthcheck(errs, e, f);
    if (hc)
      json_object_set_new(app, "healthcheck", hc);
  } else {
    err(errs, e, f, "unknown key \"%s\"; valid keys: %s", e->key, app_keys);
  }
}

static json_t *app_item(json_t *errs, const atr_conf_node_t *n,
                        const char *list, size_t i, json_t *all) {
  char f[256];
  if (n->type != ATR_CONF_MAP) {
    err(errs, n, item_field(f, sizeof f, list, i, NULL),
        "must be a map with keys: %s", app_keys);
    return NULL;
  }
  json_t *app =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "slug", "", "display_name",
                "", "url", "", "icon", "", "share", "owner", "subdomain", 0);
  item_nodes_t in = {0};
  for (size_t k = 0; k < n->nchildren; k++)
    app_key(errs, n->children[k],
            item_field(f, sizeof f, list, i, n->children[k]->key), app, &in);
  const char *slug = json_string_value(json_object_get(app, "slug"));
  if (!in.key)
    err(errs, n, item_field(f, sizeof f, list, i, "slug"),
        "slug is required (like code-server)");
  if (!in.url)
    err(errs, n, item_field(f, sizeof f, list, i, "url"),
        "url is required (like http://localhost:13337/)");
  item_unique(errs, &in, list, i, all, "slug", slug);
  if (!*json_string_value(json_object_get(app, "display_name")))
    set_text(app, "display_name", slug);
  return app;
}

static void key_apps(json_t *errs, const atr_conf_node_t *n, const char *field,
                     json_t *spec, const char *key) {
  item_list(errs, n, field, spec, key, app_item, app_keys);
}

/* ---- the section -------------------------------------------------------------- */

static const struct {
  const char *yaml; /* key in template.yaml */
  const char *json; /* key in the spec */
  key_fn fn;
} agent_table[] = {
    {"name", "name", key_name},
    {"arch", "arch", key_arch},
    {"directory", "directory", key_directory},
    {"env", "env", key_env},
    {"connection_timeout", "connection_timeout_s", key_timeout},
    {"startup_script", "startup_script", key_script},
    {"startup_script_behavior", "startup_script_behavior", key_behavior},
    {"startup_script_timeout", "startup_script_timeout_s", key_timeout},
    {"shutdown_script", "shutdown_script", key_script},
    {"shutdown_script_timeout", "shutdown_script_timeout_s", key_timeout},
    {"motd_file", "motd_file", key_text},
    {"troubleshooting_url", "troubleshooting_url", key_url},
    {"metadata", "metadata", key_metadata},
    {"apps", "apps", key_apps},
};

static json_t *spec_defaults(void) {
  return json_pack("{s:s, s:s, s:s, s:o, s:i, s:s, s:s, s:i, s:s, s:i, s:s, "
                   "s:s, s:o, s:o}",
                   "name", "main", "arch", "amd64", "directory", "", "env",
                   json_object(), "connection_timeout_s", 120, "startup_script",
                   "", "startup_script_behavior", "non-blocking",
                   "startup_script_timeout_s", 300, "shutdown_script", "",
                   "shutdown_script_timeout_s", 300, "motd_file", "",
                   "troubleshooting_url", "", "metadata", json_array(), "apps",
                   json_array());
}

void atr__manifest_agent(json_t *errors, const atr_conf_node_t *n,
                         char **spec_out) {
  size_t before = json_array_size(errors);
  *spec_out = NULL;
  /* `agent:` written with nothing after it: an agent with the defaults. */
  if (n->type == ATR_CONF_SCALAR && n->is_null) {
    json_t *spec = spec_defaults();
    *spec_out = json_dumps(spec, JSON_COMPACT);
    json_decref(spec);
    return;
  }
  if (n->type != ATR_CONF_MAP) {
    err(errors, n, "agent", "must be a map with keys: %s", agent_keys);
    return;
  }
  json_t *spec = spec_defaults();
  for (size_t i = 0; i < n->nchildren; i++) {
    const atr_conf_node_t *e = n->children[i];
    char f[256];
    snprintf(f, sizeof f, "agent.%.128s", e->key);
    size_t k = 0;
    while (k < sizeof agent_table / sizeof agent_table[0] &&
           strcmp(agent_table[k].yaml, e->key) != 0)
      k++;
    if (k == sizeof agent_table / sizeof agent_table[0])
      err(errors, e, f, "unknown key \"%s\"; valid keys: %s", e->key,
          agent_keys);
    else
      agent_table[k].fn(errors, e, f, spec, agent_table[k].json);
  }
  if (json_array_size(errors) == before)
    *spec_out = json_dumps(spec, JSON_COMPACT);
  json_decref(spec);
}
