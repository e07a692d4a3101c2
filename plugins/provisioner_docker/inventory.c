/* inventory.c — what exists of a workspace on the engine, and the state
 * and resources a build returns.
 *
 * A workspace's containers and volumes carry the label
 * <label_prefix>.workspace_id=<id>; the engine lists them by it. The
 * prior state adds what it names that still exists (an object made under
 * another label_prefix), and start adds the volumes its plan names.
 *
 * The state is {"containers": [{"name", "id"}], "volumes": [{"name"}],
 * "image": "…"}, sorted by name: what exists after the build, also after
 * a failure or a cancel, so the next build starts from the truth.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int obj_push(dk_obj_t **v, size_t *n, const char *name, const char *id,
                    const char *image, const char *status) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*v)[i].id, id) == 0)
      return 0;
  }
  dk_obj_t *grown = realloc(*v, (*n + 1) * sizeof *grown);
  if (grown == NULL)
    return ATR_ENOMEM;
  *v = grown;
  dk_obj_t o = {strdup(name), strdup(id), image ? strdup(image) : NULL,
                status ? strdup(status) : NULL};
  if (o.name == NULL || o.id == NULL || (image && !o.image) ||
      (status && !o.status)) {
    free(o.name);
    free(o.id);
    free(o.image);
    free(o.status);
    return ATR_ENOMEM;
  }
  grown[(*n)++] = o;
  return 0;
}

static bool has_name(const dk_obj_t *v, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(v[i].name, name) == 0 || strcmp(v[i].id, name) == 0)
      return true;
  }
  return false;
}

/* ?filters={"label":["<prefix>.workspace_id=<id>"]}, escaped. */
static char *label_filter(dk_engine_t *e, const char *workspace_id) {
  char *label = dk_workspace_label(e->j->c, workspace_id);
  json_t *f = label ? json_pack("{s:[s]}", "label", label) : NULL;
  char *text = f ? json_dumps(f, JSON_COMPACT) : NULL;
  char *q = text ? dk_escape(e, text) : NULL;
  free(label);
  json_decref(f);
  free(text);
  return q;
}

static int list_containers(dk_engine_t *e, const char *filter, dk_inv_t *inv,
                           char **err) {
  char *path = NULL;
  if (asprintf(&path, "/containers/json?all=1&filters=%s", filter) < 0)
    return ATR_ENOMEM;
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, 60000, &r, err);
  free(path);
  if (rc == 0 && r.status != 200)
    rc = dk_engine_fail(e, &r, err, "listing the workspace's containers");
  size_t i;
  const json_t *c;
  json_array_foreach(rc == 0 ? r.json : NULL, i, c) {
    const char *id = json_string_value(json_object_get(c, "Id"));
    const char *name =
        json_string_value(json_array_get(json_object_get(c, "Names"), 0));
    if (id == NULL || name == NULL)
      continue;
    rc = obj_push(&inv->containers, &inv->ncontainers,
                  name[0] == '/' ? name + 1 : name, id,
                  json_string_value(json_object_get(c, "Image")),
                  json_string_value(json_object_get(c, "State")));
    if (rc != 0)
      break;
  }
  dk_resp_free(&r);
  return rc;
}

static int list_volumes(dk_engine_t *e, const char *filter, dk_inv_t *inv,
                        char **err) {
  char *path = NULL;
  if (asprintf(&path, "/volumes?filters=%s", filter) < 0)
    return ATR_ENOMEM;
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, 60000, &r, err);
  free(path);
  if (rc == 0 && r.status != 200)
    rc = dk_engine_fail(e, &r, err, "listing the workspace's volumes");
  size_t i;
  const json_t *v;
  json_array_foreach(rc == 0 ? json_object_get(r.json, "Volumes") : NULL, i,
                     v) {
    const char *name = json_string_value(json_object_get(v, "Name"));
    if (name != NULL && (rc = obj_push(&inv->volumes, &inv->nvolumes, name,
                                       name, NULL, NULL)) != 0)
      break;
  }
  dk_resp_free(&r);
  return rc;
}

/* A container the prior state names, when it still exists. */
static int add_container(dk_engine_t *e, const char *id, dk_inv_t *inv,
                         char **err) {
  if (has_name(inv->containers, inv->ncontainers, id))
    return 0;
  char *q = dk_escape(e, id);
  char *path = NULL;
  if (q == NULL || asprintf(&path, "/containers/%s/json", q) < 0) {
    free(q);
    return ATR_ENOMEM;
  }
  free(q);
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, 60000, &r, err);
  free(path);
  if (rc == 0 && r.status == 200) {
    const char *name = json_string_value(json_object_get(r.json, "Name"));
    const json_t *cfg = json_object_get(r.json, "Config");
    const json_t *st = json_object_get(r.json, "State");
    const char *cid = json_string_value(json_object_get(r.json, "Id"));
    if (name != NULL && cid != NULL)
      rc = obj_push(&inv->containers, &inv->ncontainers,
                    name[0] == '/' ? name + 1 : name, cid,
                    json_string_value(json_object_get(cfg, "Image")),
                    json_string_value(json_object_get(st, "Status")));
  } else if (rc == 0 && r.status != 404) {
    rc = dk_engine_fail(e, &r, err, "inspecting container %s", id);
  }
  dk_resp_free(&r);
  return rc;
}

static int add_volume(dk_engine_t *e, const char *name, dk_inv_t *inv,
                      char **err) {
  if (has_name(inv->volumes, inv->nvolumes, name))
    return 0;
  char *q = dk_escape(e, name);
  char *path = NULL;
  if (q == NULL || asprintf(&path, "/volumes/%s", q) < 0) {
    free(q);
    return ATR_ENOMEM;
  }
  free(q);
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, 60000, &r, err);
  free(path);
  if (rc == 0 && r.status == 200)
    rc = obj_push(&inv->volumes, &inv->nvolumes, name, name, NULL, NULL);
  else if (rc == 0 && r.status != 404)
    rc = dk_engine_fail(e, &r, err, "inspecting volume %s", name);
  dk_resp_free(&r);
  return rc;
}

/* What the prior state names (a state this plugin did not write is
 * ignored). */
static int add_prior(dk_engine_t *e, const atr_prov_apply_request_t *req,
                     dk_inv_t *inv, char **err) {
  if (req->prior_state == NULL || req->prior_state_len == 0)
    return 0;
  json_t *st = json_loadb(req->prior_state, req->prior_state_len, 0, NULL);
  const char *image = json_string_value(json_object_get(st, "image"));
  if (image != NULL && *image != '\0')
    inv->image = strdup(image);
  int rc = 0;
  size_t i;
  const json_t *o;
  json_array_foreach(json_object_get(st, "containers"), i, o) {
    const char *id = json_string_value(json_object_get(o, "id"));
    if (id != NULL && *id != '\0' && (rc = add_container(e, id, inv, err)) != 0)
      break;
  }
  json_array_foreach(rc == 0 ? json_object_get(st, "volumes") : NULL, i, o) {
    const char *name = json_string_value(json_object_get(o, "name"));
    if (name != NULL && *name != '\0' &&
        (rc = add_volume(e, name, inv, err)) != 0)
      break;
  }
  json_decref(st);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const dk_obj_t *)a)->name, ((const dk_obj_t *)b)->name);
}

int dk_inv_load(dk_engine_t *e, const atr_prov_apply_request_t *req,
                char *const *extra_volumes, size_t nextra, dk_inv_t *inv,
                char **err) {
  memset(inv, 0, sizeof *inv);
  char *filter = label_filter(e, req->workspace_id);
  if (filter == NULL)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  int rc = list_containers(e, filter, inv, err);
  if (rc == 0)
    rc = list_volumes(e, filter, inv, err);
  free(filter);
  if (rc == 0)
    rc = add_prior(e, req, inv, err);
  for (size_t i = 0; rc == 0 && i < nextra; i++)
    rc = add_volume(e, extra_volumes[i], inv, err);
  if (rc == ATR_ENOMEM && err != NULL && *err == NULL)
    *err = strdup("out of memory");
  if (rc != 0) {
    dk_inv_free(inv);
    return rc;
  }
  if (inv->ncontainers > 1)
    qsort(inv->containers, inv->ncontainers, sizeof *inv->containers, by_name);
  if (inv->nvolumes > 1)
    qsort(inv->volumes, inv->nvolumes, sizeof *inv->volumes, by_name);
  return 0;
}

static void objs_free(dk_obj_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].name);
    free(v[i].id);
    free(v[i].image);
    free(v[i].status);
  }
  free(v);
}

void dk_inv_free(dk_inv_t *inv) {
  objs_free(inv->containers, inv->ncontainers);
  objs_free(inv->volumes, inv->nvolumes);
  free(inv->image);
  memset(inv, 0, sizeof *inv);
}

/* ---- the result */

static int meta(atr_prov_resource_t *r, const char *key, const char *value) {
  size_t i = r->nmetadata++;
  r->metadata[i].struct_size = sizeof r->metadata[i];
  r->metadata[i].key = atr_mem_strdup(dk_host, key);
  r->metadata[i].value = atr_mem_strdup(dk_host, value ? value : "");
  return r->metadata[i].key && r->metadata[i].value ? 0 : ATR_ENOMEM;
}

static int resource(atr_prov_resource_t *r, const char *type,
                    const dk_obj_t *o) {
  memset(r, 0, sizeof *r);
  r->struct_size = sizeof *r;
  r->type = atr_mem_strdup(dk_host, type);
  r->name = atr_mem_strdup(dk_host, o->name);
  r->id = atr_mem_strdup(dk_host, o->id);
  if (r->type == NULL || r->name == NULL || r->id == NULL)
    return ATR_ENOMEM;
  if (strcmp(type, "docker_container") != 0)
    return 0;
  r->metadata =
      (atr_prov_metadata_t *)atr_mem_calloc(dk_host, 2, sizeof *r->metadata);
  if (r->metadata == NULL)
    return ATR_ENOMEM;
  int rc = meta(r, "image", o->image);
  return rc == 0 ? meta(r, "status", o->status) : rc;
}

static void resources_free(atr_prov_resource_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    atr_mem_free(dk_host, v[i].type);
    atr_mem_free(dk_host, v[i].name);
    atr_mem_free(dk_host, v[i].id);
    for (size_t k = 0; k < v[i].nmetadata; k++) {
      atr_mem_free(dk_host, v[i].metadata[k].key);
      atr_mem_free(dk_host, v[i].metadata[k].value);
    }
    atr_mem_free(dk_host, v[i].metadata);
  }
  atr_mem_free(dk_host, v);
}

static char *state_text(const dk_inv_t *inv, const char *image) {
  json_t *cs = json_array(), *vs = json_array();
  for (size_t i = 0; i < inv->ncontainers; i++)
    json_array_append_new(cs, json_pack("{s:s, s:s}", "name",
                                        inv->containers[i].name, "id",
                                        inv->containers[i].id));
  for (size_t i = 0; i < inv->nvolumes; i++)
    json_array_append_new(vs, json_pack("{s:s}", "name", inv->volumes[i].name));
  const char *img = image ? image : inv->image ? inv->image : "";
  json_t *st = json_pack("{s:o, s:o, s:s}", "containers", cs, "volumes", vs,
                         "image", img);
  char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
  json_decref(st);
  char *copy = atr_mem_strdup(dk_host, text); /* the host releases it */
  free(text);
  return copy;
}

int dk_inv_result(const dk_inv_t *inv, const char *image,
                  atr_prov_apply_result_t *res) {
  size_t n = inv->ncontainers + inv->nvolumes;
  atr_prov_resource_t *rs =
      (atr_prov_resource_t *)atr_mem_calloc(dk_host, n ? n : 1, sizeof *rs);
  char *state = state_text(inv, image);
  int rc = rs != NULL && state != NULL ? 0 : ATR_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; rc == 0 && i < inv->ncontainers; i++, k++)
    rc = resource(&rs[k], "docker_container", &inv->containers[i]);
  for (size_t i = 0; rc == 0 && i < inv->nvolumes; i++, k++)
    rc = resource(&rs[k], "docker_volume", &inv->volumes[i]);
  if (rc != 0) {
    resources_free(rs, rs ? n : 0);
    atr_mem_free(dk_host, state);
    return rc;
  }
  res->state = state;
  res->state_len = strlen(state);
  res->resources = rs;
  res->nresources = n;
  return 0;
}

void dk_result_from_engine(dk_engine_t *e, const atr_prov_apply_request_t *req,
                           const dk_plan_t *plan,
                           atr_prov_apply_result_t *res) {
  bool was = e->uncancelable;
  e->uncancelable = true;
  dk_inv_t inv;
  char *err = NULL;
  int rc = dk_inv_load(e, req, plan ? plan->volumes : NULL,
                       plan ? plan->nvolumes : 0, &inv, &err);
  if (rc == 0) {
    rc = dk_inv_result(&inv, plan ? plan->containers[0].image : NULL, res);
    dk_inv_free(&inv);
  }
  if (rc != 0)
    dk_logf(e->j, ATR_LOG_WARN,
            "cannot list what exists of the workspace now (%s); the build "
            "keeps the previous state",
            err ? err : atr_strerror(rc));
  free(err);
  e->uncancelable = was;
}
