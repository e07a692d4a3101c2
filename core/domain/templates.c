/* core/domain/templates.c — see templates.h. */
#include "templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "rows.h"

#define DEFAULT_TTL_MS 604800000LL

/* ---- rows and checks every call shares ----------------------------------- */

#define TEMPLATE_SELECT                                                        \
  "SELECT t.id, t.organization_id, t.name, t.display_name, t.description, "    \
  "t.provisioner, t.active_version_id, t.created_at, t.updated_at, "           \
  "t.created_by, u.username, t.default_ttl, (SELECT COUNT(*) FROM "            \
  "workspaces w WHERE w.template_id = t.id AND w.deleted = FALSE) FROM "       \
  "templates t JOIN users u ON u.id = t.created_by WHERE t.deleted = FALSE "

static json_t *template_row(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:I, s:I}", "id",
      atr_row_text(db, rows, 0), "organization_id", atr_row_text(db, rows, 1),
      "name", atr_row_text(db, rows, 2), "display_name",
      atr_row_text(db, rows, 3), "description", atr_row_text(db, rows, 4),
      "provisioner", atr_row_text(db, rows, 5), "active_version_id",
      atr_row_text(db, rows, 6), "created_at",
      atr_time_json(atr_db_get_time(db, rows, 7)), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 8)), "created_by_id",
      atr_row_text(db, rows, 9), "created_by_name", atr_row_text(db, rows, 10),
      "default_ttl_ms", (json_int_t)atr_db_get_int(db, rows, 11),
      "workspace_count", (json_int_t)atr_db_get_int(db, rows, 12));
}

static const atr_select_t templates = {TEMPLATE_SELECT, template_row, NULL};

int atr_template_load(atr_db_t *db, const char *id, json_t **out, char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  return atr_select_one(db, &templates, "AND t.id = ?", p, 1, out, err);
}

int atr__template_allowed(atr_db_t *db, const atr_actor_t *actor,
                          const char *org_id, atr_action_t act,
                          atr_fault_t *fault) {
  char *err = NULL;
  int rc =
      atr_actor_allowed(db, actor, org_id, ATR_RES_TEMPLATE, act, false, &err);
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

int atr__template_allowed_in(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org_id, atr_action_t act,
                             atr_fault_t *fault) {
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr__template_allowed(&db, actor, org_id, act, fault);
  atr_db_close(&db);
  return rc;
}

void atr__fault_fields_from(atr_fault_t *fault, const json_t *invalid) {
  size_t i;
  const json_t *item;
  json_array_foreach(invalid, i, item) {
    atr_fault_field(fault, atr_json_str(item, "field"), "%s",
                    atr_json_str(item, "detail"));
  }
}

/* The template `id` the actor may `act` on, into *out. */
static int template_for(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, atr_action_t act, json_t **out,
                        atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0) {
    rc = atr_template_load(&db, id, out, &err);
    if (rc == ATR_ENOENT)
      atr_fault_set(fault, rc, "Template not found.", "%s", id ? id : "");
    else if (rc != 0)
      atr_fault_internal(fault, rc, err);
    else
      rc = atr__template_allowed(
          &db, actor, atr_json_str(*out, "organization_id"), act, fault);
    atr_db_close(&db);
  } else {
    atr_fault_internal(fault, rc, err);
  }
  free(err);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* A template as stored now; {"id"} when it cannot be read back. */
static json_t *reload(const atr_domain_t *dom, const char *id) {
  json_t *out = NULL;
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(dom->store, &db, &err) == 0) {
    atr_template_load(&db, id, &out, &err);
    atr_db_close(&db);
  }
  free(err);
  return out;
}

static bool ttl_ok(bool has_ttl, int64_t ttl, atr_fault_t *fault) {
  if (!has_ttl || (ttl >= 0 && ttl <= ATR_TEMPLATE_MAX_TTL_MS))
    return true;
  atr_fault_field(fault, "default_ttl_ms", "%s",
                  "Must be a whole number of milliseconds from 0 to 30 "
                  "days.");
  return false;
}

/* ---- create --------------------------------------------------------------- */

typedef struct new_template {
  const atr_template_new_t *in;
  const char *user_id;
  char id[37];
  char provisioner[64];
  const char *problem; /* why the version cannot be used */
} new_template_t;

/* The version must be this organization's, imported, and free. */
static int check_version(atr_db_t *db, new_template_t *t, char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(t->in->version_id),
                     atr_v_text(t->in->organization_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT v.template_id, j.completed_at, j.error, "
                        "j.canceled_at, j.provisioner FROM template_versions "
                        "v JOIN provisioner_jobs j ON j.id = v.job_id WHERE "
                        "v.id = ? AND v.organization_id = ?",
                        p, 2, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    if (!atr_db_is_null(db, rows, 0))
      t->problem = "This version already belongs to a template.";
    else if (atr_db_is_null(db, rows, 1))
      t->problem = "The version's import has not finished yet.";
    else if (!atr_db_is_null(db, rows, 2) || !atr_db_is_null(db, rows, 3))
      t->problem = "The version's import did not succeed; see its logs.";
    snprintf(t->provisioner, sizeof t->provisioner, "%s",
             atr_row_text(db, rows, 4));
  } else if (rc == 0) {
    t->problem = "No such template version in this organization.";
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static int insert_template(atr_db_t *db, void *ud, char **err) {
  new_template_t *t = ud;
  const atr_template_new_t *in = t->in;
  t->problem = NULL;
  int rc = check_version(db, t, err);
  if (rc != 0 || t->problem)
    return rc;
  atr_db_new_uuid(t->id);
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {
      atr_v_text(t->id),
      atr_v_time(now),
      atr_v_time(now),
      atr_v_text(in->organization_id),
      atr_v_text(in->name),
      atr_v_text(in->display_name ? in->display_name : ""),
      atr_v_text(in->description ? in->description : ""),
      atr_v_text(t->provisioner),
      atr_v_text(in->version_id),
      atr_v_text(t->user_id),
      atr_v_int(in->has_ttl ? in->default_ttl_ms : DEFAULT_TTL_MS)};
  rc = atr_db_exec(db,
                   "INSERT INTO templates (id, created_at, updated_at, "
                   "organization_id, name, display_name, description, "
                   "provisioner, active_version_id, created_by, default_ttl) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   p, 11, NULL, err);
  atr_value_t q[] = {atr_v_text(t->id), atr_v_time(now),
                     atr_v_text(in->version_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "UPDATE template_versions SET template_id = ?, "
                     "updated_at = ? WHERE id = ?",
                     q, 3, NULL, err);
  return rc;
}

static void check_new(const atr_template_new_t *in, atr_fault_t *fault) {
  atr__fault_fields_from(fault, in->invalid);
  ttl_ok(in->has_ttl, in->default_ttl_ms, fault);
  const char *bad = atr_name_problem(in->name);
  if (bad)
    atr_fault_field(fault, "name", "%s", bad);
  if (!in->version_id || !atr_uuid_valid(in->version_id))
    atr_fault_field(fault, "template_version_id", "%s",
                    "Required: a template version id.");
  if (in->description && strlen(in->description) > 1024)
    atr_fault_field(fault, "description", "%s", "At most 1024 characters.");
}

int atr_template_create(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr_template_new_t *in, json_t **out,
                        atr_fault_t *fault) {
  *out = NULL;
  int rc = atr__template_allowed_in(dom, actor, in->organization_id,
                                    ATR_ACT_CREATE, fault);
  if (rc != 0)
    return rc;
  new_template_t t = {.in = in, .user_id = actor->user_id};
  char *err = NULL;
  check_new(in, fault);
  if (!atr_fault_has_fields(fault)) {
    rc = atr_db_tx(dom->store, ATR_TX_WRITE, insert_template, &t, &err);
    if (rc == 0 && t.problem)
      atr_fault_field(fault, "template_version_id", "%s", t.problem);
  }
  if (atr_fault_has_fields(fault))
    rc = atr_fault_set(fault, ATR_EINVAL, "Invalid template.", "%s", "");
  else if (atr_db_unique_violation(rc, err))
    atr_fault_set(fault, rc, "A template with this name exists.", "%s",
                  in->name);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc != 0)
    return rc;
  *out = reload(dom, t.id);
  if (!*out)
    *out = json_pack("{s:s}", "id", t.id);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "create",
                                        .resource_type = "template",
                                        .resource_id = t.id,
                                        .resource_target = in->name,
                                        .organization_id = in->organization_id,
                                        .status_code = 201});
  return 0;
}

/* ---- read ------------------------------------------------------------------ */

int atr_templates_list(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *org_id, int64_t limit, int64_t offset,
                       json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr__template_allowed(&db, actor, org_id, ATR_ACT_READ, fault);
  atr_value_t p[] = {atr_v_text(org_id), atr_v_int(limit), atr_v_int(offset)};
  if (rc == 0) {
    rc = atr_select_list(&db, &templates,
                         "AND t.organization_id = ? ORDER BY lower(t.name) "
                         "LIMIT ? OFFSET ?",
                         p, 3, out, &err);
    if (rc != 0)
      atr_fault_internal(fault, rc, err);
  }
  atr_db_close(&db);
  free(err);
  return rc;
}

int atr_template_get(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, json_t **out, atr_fault_t *fault) {
  return template_for(dom, actor, id, ATR_ACT_READ, out, fault);
}

int atr_template_get_by_name(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org_id, const char *name, json_t **out,
                             atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr__template_allowed(&db, actor, org_id, ATR_ACT_READ, fault);
  atr_value_t p[] = {atr_v_text(org_id), atr_v_text(name)};
  if (rc == 0) {
    rc = atr_select_one(&db, &templates,
                        "AND t.organization_id = ? AND lower(t.name) = "
                        "lower(?)",
                        p, 2, out, &err);
    if (rc == ATR_ENOENT)
      atr_fault_set(fault, rc, "Template not found.", "%s", name ? name : "");
    else if (rc != 0)
      atr_fault_internal(fault, rc, err);
  }
  atr_db_close(&db);
  free(err);
  return rc;
}

/* ---- update ------------------------------------------------------------------ */

typedef struct update {
  const json_t *t; /* as it was */
  const atr_template_change_t *in;
} update_t;

/* What the change sets, or the template's current value. */
static const char *new_or(const char *set, const json_t *t, const char *key) {
  return set ? set : atr_json_str(t, key);
}

static int update_tx(atr_db_t *db, void *ud, char **err) {
  const update_t *u = ud;
  const atr_template_change_t *in = u->in;
  int64_t was_ttl = json_integer_value(json_object_get(u->t, "default_ttl_ms"));
  atr_value_t p[] = {atr_v_text(new_or(in->name, u->t, "name")),
                     atr_v_text(new_or(in->display_name, u->t, "display_name")),
                     atr_v_text(new_or(in->description, u->t, "description")),
                     atr_v_int(in->has_ttl ? in->default_ttl_ms : was_ttl),
                     atr_v_time(atr_db_now_us()),
                     atr_v_text(atr_json_str(u->t, "id"))};
  return atr_db_exec(db,
                     "UPDATE templates SET name = ?, display_name = ?, "
                     "description = ?, default_ttl = ?, updated_at = ? WHERE "
                     "id = ?",
                     p, 6, NULL, err);
}

static void diff_text(json_t **diff, const json_t *t, const char *key,
                      const char *set) {
  if (set && strcmp(set, atr_json_str(t, key)) != 0)
    atr_audit_diff_add(diff, key, atr_json_str(t, key), set, false);
}

/* The audit entry's diff: each field the change really changed. */
static json_t *update_diff(const update_t *u) {
  json_t *diff = NULL;
  diff_text(&diff, u->t, "name", u->in->name);
  diff_text(&diff, u->t, "display_name", u->in->display_name);
  diff_text(&diff, u->t, "description", u->in->description);
  if (u->in->has_ttl) {
    char was[32], now[32];
    snprintf(
        was, sizeof was, "%lld",
        (long long)json_integer_value(json_object_get(u->t, "default_ttl_ms")));
    snprintf(now, sizeof now, "%lld", (long long)u->in->default_ttl_ms);
    if (strcmp(was, now) != 0)
      atr_audit_diff_add(&diff, "default_ttl_ms", was, now, false);
  }
  return diff;
}

static void audit_write(const atr_domain_t *dom, const atr_actor_t *actor,
                        const json_t *t, const char *target, json_t *diff) {
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "write",
                                        .resource_type = "template",
                                        .resource_id = atr_json_str(t, "id"),
                                        .resource_target = target,
                                        .organization_id =
                                            atr_json_str(t, "organization_id"),
                                        .diff = diff,
                                        .status_code = 200});
}

/* Validations first, then the write; rc as the caller returns it. */
static int apply_update(const atr_domain_t *dom, const update_t *u,
                        atr_fault_t *fault) {
  const atr_template_change_t *in = u->in;
  atr__fault_fields_from(fault, in->invalid);
  ttl_ok(in->has_ttl, in->default_ttl_ms, fault);
  const char *bad = in->name ? atr_name_problem(in->name) : NULL;
  if (bad)
    atr_fault_field(fault, "name", "%s", bad);
  if (atr_fault_has_fields(fault))
    return atr_fault_set(fault, ATR_EINVAL, "Invalid template.", "%s", "");
  char *err = NULL;
  int rc = atr_db_tx(dom->store, ATR_TX_WRITE, update_tx, (void *)u, &err);
  if (atr_db_unique_violation(rc, err))
    atr_fault_set(fault, rc, "A template with this name exists.", "%s",
                  in->name ? in->name : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

int atr_template_update(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, const atr_template_change_t *in,
                        json_t **out, atr_fault_t *fault) {
  json_t *t = NULL;
  int rc = template_for(dom, actor, id, ATR_ACT_UPDATE, &t, fault);
  *out = NULL;
  if (rc != 0)
    return rc;
  update_t u = {t, in};
  rc = apply_update(dom, &u, fault);
  if (rc == 0) {
    *out = reload(dom, atr_json_str(t, "id"));
    json_t *diff = update_diff(&u);
    audit_write(dom, actor, t, new_or(in->name, t, "name"), diff);
    json_decref(diff);
    if (!*out)
      rc = atr_fault_internal(fault, ATR_EIO, "template not read back");
  }
  json_decref(t);
  return rc;
}

/* ---- delete ------------------------------------------------------------------ */

typedef struct del {
  const char *id;
  int64_t in_use;
} del_t;

static int delete_tx(atr_db_t *db, void *ud, char **err) {
  del_t *d = ud;
  atr_value_t p[] = {atr_v_text(d->id)};
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM workspaces WHERE "
                            "template_id = ? AND deleted = FALSE",
                            p, 1, &d->in_use, err);
  if (rc != 0 || d->in_use > 0)
    return rc;
  atr_value_t q[] = {atr_v_time(atr_db_now_us()), atr_v_text(d->id)};
  return atr_db_exec(db,
                     "UPDATE templates SET deleted = TRUE, updated_at = ? "
                     "WHERE id = ?",
                     q, 2, NULL, err);
}

int atr_template_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, atr_fault_t *fault) {
  json_t *t = NULL;
  int rc = template_for(dom, actor, id, ATR_ACT_DELETE, &t, fault);
  if (rc != 0)
    return rc;
  del_t d = {atr_json_str(t, "id"), 0};
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, delete_tx, &d, &err);
  if (rc != 0) {
    atr_fault_internal(fault, rc, err);
  } else if (d.in_use > 0) {
    rc = atr_fault_set(fault, ATR_EINVAL, "The template is in use.",
                       "%lld workspace%s still use%s it; delete them first.",
                       (long long)d.in_use, d.in_use == 1 ? "" : "s",
                       d.in_use == 1 ? "s" : "");
  } else {
    atr_audit_record(dom->store, actor,
                     &(atr_audit_entry_t){
                         .action = "delete",
                         .resource_type = "template",
                         .resource_id = d.id,
                         .resource_target = atr_json_str(t, "name"),
                         .organization_id = atr_json_str(t, "organization_id"),
                         .status_code = 204});
  }
  json_decref(t);
  free(err);
  return rc;
}

/* ---- the active version ------------------------------------------------------ */

typedef struct promote {
  const char *template_id, *version_id;
  const char *problem;
} promote_t;

static int promote_tx(atr_db_t *db, void *ud, char **err) {
  promote_t *pr = ud;
  atr_value_t p[] = {atr_v_uuid_or_null(pr->version_id),
                     atr_v_text(pr->template_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT j.completed_at, j.error, j.canceled_at FROM "
                        "template_versions v JOIN provisioner_jobs j ON j.id "
                        "= v.job_id WHERE v.id = ? AND v.template_id = ?",
                        p, 2, &rows, err);
  pr->problem = NULL;
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    if (atr_db_is_null(db, rows, 0) || !atr_db_is_null(db, rows, 1) ||
        !atr_db_is_null(db, rows, 2))
      pr->problem = "Only a version whose import succeeded can be active.";
  } else if (rc == 0) {
    pr->problem = "No such version of this template.";
  }
  atr_db_rows_close(db, rows);
  if (rc != 0 || pr->problem)
    return rc;
  atr_value_t q[] = {atr_v_text(pr->version_id), atr_v_time(atr_db_now_us()),
                     atr_v_text(pr->template_id)};
  return atr_db_exec(db,
                     "UPDATE templates SET active_version_id = ?, "
                     "updated_at = ? WHERE id = ?",
                     q, 3, NULL, err);
}

int atr_template_promote(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *id, const char *version_id,
                         const json_t *invalid, atr_fault_t *fault) {
  json_t *t = NULL;
  int rc = template_for(dom, actor, id, ATR_ACT_UPDATE, &t, fault);
  if (rc != 0)
    return rc;
  promote_t pr = {atr_json_str(t, "id"), version_id, NULL};
  char *err = NULL;
  atr__fault_fields_from(fault, invalid);
  if (!version_id)
    atr_fault_field(fault, "id", "%s", "Required: the version to make active.");
  if (!atr_fault_has_fields(fault)) {
    rc = atr_db_tx(dom->store, ATR_TX_WRITE, promote_tx, &pr, &err);
    if (rc == 0 && pr.problem)
      atr_fault_field(fault, "id", "%s", pr.problem);
  }
  if (atr_fault_has_fields(fault)) {
    rc = atr_fault_set(fault, ATR_EINVAL, "Cannot change the active version.",
                       "%s", "");
  } else if (rc != 0) {
    atr_fault_internal(fault, rc, err);
  } else {
    json_t *diff = NULL;
    atr_audit_diff_add(&diff, "active_version_id",
                       atr_json_str(t, "active_version_id"), version_id, false);
    audit_write(dom, actor, t, atr_json_str(t, "name"), diff);
    json_decref(diff);
  }
  json_decref(t);
  free(err);
  return rc;
}
