/* show.c — the resources of a state, from `terraform show -json`.
 *
 * Every resource of mode "managed" in values.root_module and its
 * child_modules (at any depth) becomes one atr_prov_resource_t: its type,
 * its name, values.id as its id when that is a string, and metadata
 * "address" (terraform_data.home, module.x.aws_instance.y[0]) and
 * "provider". Attribute values are not copied: they may be secret.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct list {
  atr_prov_resource_t *v;
  size_t n, cap;
} list_t;

void tf_resources_free(atr_prov_resource_t *r, size_t n) {
  for (size_t i = 0; r != NULL && i < n; i++) {
    atr_mem_free(tf_host, r[i].type);
    atr_mem_free(tf_host, r[i].name);
    atr_mem_free(tf_host, r[i].id);
    for (size_t k = 0; k < r[i].nmetadata; k++) {
      atr_mem_free(tf_host, r[i].metadata[k].key);
      atr_mem_free(tf_host, r[i].metadata[k].value);
    }
    atr_mem_free(tf_host, r[i].metadata);
  }
  atr_mem_free(tf_host, r);
}

static char *dup_or_null(const char *s) {
  return atr_mem_strdup(tf_host, s);
}

static int add_meta(atr_prov_resource_t *r, const char *key,
                    const char *value) {
  if (value == NULL)
    return 0;
  atr_prov_metadata_t *m = (atr_prov_metadata_t *)atr_mem_realloc(
      tf_host, r->metadata, (r->nmetadata + 1) * sizeof *m);
  if (m == NULL)
    return ATR_ENOMEM;
  r->metadata = m;
  m[r->nmetadata] =
      (atr_prov_metadata_t){.struct_size = sizeof *m,
                            .key = atr_mem_strdup(tf_host, key),
                            .value = atr_mem_strdup(tf_host, value)};
  r->nmetadata++;
  if (m[r->nmetadata - 1].key == NULL || m[r->nmetadata - 1].value == NULL)
    return ATR_ENOMEM;
  return 0;
}

static int add_resource(list_t *l, const json_t *res) {
  const char *mode = json_string_value(json_object_get(res, "mode"));
  if (mode == NULL || strcmp(mode, "managed") != 0)
    return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    atr_prov_resource_t *v =
        (atr_prov_resource_t *)atr_mem_realloc(tf_host, l->v, cap * sizeof *v);
    if (v == NULL)
      return ATR_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  atr_prov_resource_t *r = &l->v[l->n++];
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  const json_t *values = json_object_get(res, "values");
  const char *type = json_string_value(json_object_get(res, "type"));
  const char *name = json_string_value(json_object_get(res, "name"));
  r->type = atr_mem_strdup(tf_host, type != NULL ? type : "");
  r->name = atr_mem_strdup(tf_host, name != NULL ? name : "");
  r->id = dup_or_null(json_string_value(json_object_get(values, "id")));
  if (r->type == NULL || r->name == NULL)
    return ATR_ENOMEM;
  int rc = add_meta(r, "address",
                    json_string_value(json_object_get(res, "address")));
  if (rc == 0)
    rc = add_meta(r, "provider",
                  json_string_value(json_object_get(res, "provider_name")));
  return rc;
}

static int add_module(list_t *l, const json_t *module) {
  const json_t *res = json_object_get(module, "resources");
  for (size_t i = 0; i < json_array_size(res); i++) {
    int rc = add_resource(l, json_array_get(res, i));
    if (rc != 0)
      return rc;
  }
  const json_t *children = json_object_get(module, "child_modules");
  for (size_t i = 0; i < json_array_size(children); i++) {
    int rc = add_module(l, json_array_get(children, i));
    if (rc != 0)
      return rc;
  }
  return 0;
}

int tf_show_resources(const char *json, size_t len,
                      atr_prov_apply_result_t *res, char **err) {
  json_error_t je;
  json_t *doc = json_loadb(json, len, 0, &je);
  if (!json_is_object(doc)) {
    json_decref(doc);
    return tf_failf(err, ATR_EIO,
                    "terraform show -json printed no JSON object (%s at "
                    "line %d); the state may be from another Terraform",
                    je.text, je.line);
  }
  list_t l = {0};
  int rc = add_module(
      &l, json_object_get(json_object_get(doc, "values"), "root_module"));
  json_decref(doc);
  if (rc != 0) {
    tf_resources_free(l.v, l.n);
    return tf_failf(err, rc, "out of memory");
  }
  res->resources = l.v;
  res->nresources = l.n;
  return 0;
}
