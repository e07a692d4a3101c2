/* core/api_templates.c — template versions and templates.
 *
 * Creating a version queues its import job in the same transaction and
 * announces it after the commit; the import (jobrun_import.c) stores the
 * parameter schema. A template is made from a version whose import
 * succeeded. */
#include "api_templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_jobs.h"
#include "archive.h"
#include "atrium/error.h"
#include "audit.h"
#include "conf.h"
#include "events.h"
#include "params.h"
#include "provd.h"
#include "queue.h"

#define MANIFEST_MAX ((size_t)1024 * 1024)
#define DEFAULT_TTL_MS 604800000LL
#define MAX_TTL_MS (30LL * 24 * 3600 * 1000)

/* ---- template versions --------------------------------------------------- */

#define VERSION_SELECT                                                         \
  "SELECT v.id, v.template_id, v.organization_id, v.name, v.message, "         \
  "v.created_at, v.updated_at, v.created_by, u.username, v.archived, "         \
  "v.readme, " ATR_API_JOB_COLUMNS " FROM template_versions v JOIN users u "   \
  "ON u.id = v.created_by JOIN provisioner_jobs j ON j.id = v.job_id "
#define VERSION_NCOLS 11

static json_t *version_row(atr_db_t *db, atr_db_rows_t *rows) {
  const char *tid = atr_db_get_text(db, rows, 1);
  json_t *job = atr_api_job_row(db, rows, VERSION_NCOLS);
  return json_pack(
      "{s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:{s:s, s:s}, s:b, s:s, s:s, s:o}",
      "id", atr_row_text(db, rows, 0), "template_id",
      tid ? json_string(tid) : json_null(), "organization_id",
      atr_row_text(db, rows, 2), "name", atr_row_text(db, rows, 3), "message",
      atr_row_text(db, rows, 4), "created_at",
      atr_time_json(atr_db_get_time(db, rows, 5)), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 6)), "created_by", "id",
      atr_row_text(db, rows, 7), "username", atr_row_text(db, rows, 8),
      "archived", atr_db_get_bool(db, rows, 9), "readme",
      atr_row_text(db, rows, 10), "provisioner",
      json_string_value(json_object_get(job, "provisioner")), "job", job);
}

static int version_tags(atr_db_t *db, json_t *v, char **err) {
  return atr_api_job_add_tags(db, json_object_get(v, "job"), err);
}

static const atr_select_t versions = {VERSION_SELECT, version_row,
                                      version_tags};

static int load_version(atr_db_t *db, const char *id, json_t **out,
                        char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  return atr_select_one(db, &versions, "WHERE v.id = ?", p, 1, out, err);
}

/* o (a version or a template; NULL passes) when the actor may `act` on
 * templates of its organization; else NULL after answering. */
static json_t *authorized(atr_api_req_t *r, json_t *o, atr_action_t act) {
  if (o && !atr_api_authorize(r, atr_json_str(o, "organization_id"),
                              ATR_RES_TEMPLATE, act, false)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* {templateversion} → the version the actor may `act` on; NULL after
 * answering. */
static json_t *version_for(atr_api_req_t *r, atr_action_t act) {
  return authorized(r,
                    atr_api_load(r, &versions, "WHERE v.id = ?",
                                 "templateversion",
                                 "Template version not found."),
                    act);
}

typedef struct new_version {
  const char *org_id, *file_id, *name, *message, *template_id, *provisioner;
  const char *user_id;
  json_t *tags;
  char id[37];
  char job_id[37];
  char name_buf[64];
  json_t *answer; /* read in the transaction: its job as created, pending */
} new_version_t;

static int insert_version(atr_db_t *db, void *ud, char **err) {
  new_version_t *nv = ud;
  json_t *input = json_pack("{s:s}", "template_version_id", "");
  atr_db_new_uuid(nv->id);
  json_object_set_new(input, "template_version_id", json_string(nv->id));
  char *input_text = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  atr_job_new_t job = {.type = "template_version_import",
                       .provisioner = nv->provisioner,
                       .organization_id = nv->org_id,
                       .initiator_id = nv->user_id,
                       .file_id = nv->file_id,
                       .input = input_text,
                       .tags = nv->tags};
  int rc = atr_jobs_insert(db, &job, nv->job_id, err);
  free(input_text);
  if (rc != 0)
    return rc;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(nv->id),
                     atr_v_text(nv->template_id),
                     atr_v_text(nv->org_id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(nv->name),
                     atr_v_text(nv->message ? nv->message : ""),
                     atr_v_text(nv->job_id),
                     atr_v_text(nv->user_id)};
  rc = atr_db_exec(db,
                   "INSERT INTO template_versions (id, template_id, "
                   "organization_id, created_at, updated_at, name, message, "
                   "job_id, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   p, 9, NULL, err);
  json_decref(nv->answer);
  nv->answer = NULL;
  return rc == 0 ? load_version(db, nv->id, &nv->answer, err) : rc;
}

/* The provisioner named in the archive's template.yaml, into buf; a
 * validation when it cannot be read. */
static void provisioner_from_file(atr_db_t *db, const char *file_id, char *buf,
                                  size_t size, json_t *v) {
  atr_value_t p[] = {atr_v_uuid_or_null(file_id)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  int rc = atr_db_query(db, "SELECT data FROM files WHERE id = ?", p, 1, &rows,
                        &err);
  char *text = NULL;
  size_t len = 0;
  if (rc == 0 && (rc = atr_db_next(db, rows, &err)) == 1) {
    size_t dlen = 0;
    const void *data = atr_db_get_blob(db, rows, 0, &dlen);
    free(err);
    err = NULL;
    rc = atr_archive_read_file(data, dlen, "template.yaml", MANIFEST_MAX, &text,
                               &len, &err);
  } else if (rc == 0) {
    rc = ATR_ENOENT;
    err = strdup("No such file; upload it with POST /api/v2/files.");
  }
  atr_db_rows_close(db, rows);
  atr_conf_node_t *root = NULL;
  if (rc == 0)
    rc = atr_conf_parse("template.yaml", text, len, &root, &err);
  const atr_conf_node_t *n = root ? atr_conf_get(root, "provisioner") : NULL;
  if (rc == 0 && (!n || n->type != ATR_CONF_SCALAR || !*n->value)) {
    rc = ATR_EINVAL;
    err = strdup("template.yaml has no provisioner: (terraform, docker, ...)");
  }
  if (rc == 0)
    snprintf(buf, size, "%s", n->value);
  else
    atr_api_add_validation(v, "file_id",
                           err ? err : "Cannot read template.yaml.");
  atr_conf_free(root);
  free(text);
  free(err);
}

static void check_provisioner(const atr_api_req_t *r, const char *type,
                              json_t *v) {
  if (atr_provd_find(r->env->dom.loader, type))
    return;
  size_t n = 0;
  const char **types = atr_provd_types(r->env->dom.loader, &n);
  char list[512] = "";
  for (size_t i = 0; types && i < n; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
             i ? ", " : "", types[i]);
  free(types);
  char detail[700];
  snprintf(detail, sizeof detail,
           "No enabled provisioner plugin has type \"%s\"; enabled: %s.", type,
           n ? list : "none (enable one under plugins:)");
  atr_api_add_validation(v, "provisioner", detail);
}

static bool tags_ok(json_t *tags, json_t *v) {
  if (!tags || json_is_null(tags))
    return true;
  const char *key;
  json_t *val;
  bool ok = json_is_object(tags);
  json_object_foreach(tags, key, val) ok = ok && json_is_string(val) && *key;
  if (!ok)
    atr_api_add_validation(v, "tags", "Must be an object of string values.");
  return ok;
}

/* Does the template exist in the organization? */
static bool template_in_org(atr_db_t *db, const char *id, const char *org) {
  atr_value_t p[] = {atr_v_uuid_or_null(id), atr_v_text(org)};
  int64_t one = 0;
  char *err = NULL;
  int rc = atr_db_query_int(db,
                            "SELECT 1 FROM templates WHERE id = ? AND "
                            "organization_id = ? AND deleted = FALSE",
                            p, 2, &one, &err);
  free(err);
  return rc == 0;
}

static void random_name(char *buf, size_t size) {
  static const char *const a[] = {"brave", "calm",  "eager", "fond",
                                  "keen",  "lucid", "merry", "quiet"};
  static const char *const b[] = {"otter", "heron", "lynx",  "finch",
                                  "maple", "cedar", "comet", "delta"};
  unsigned char rnd[3];
  char uuid[37];
  atr_db_new_uuid(uuid);
  for (size_t i = 0; i < 3; i++)
    rnd[i] = (unsigned char)uuid[i * 2];
  snprintf(buf, size, "%s-%s-%.4s", a[rnd[0] % 8], b[rnd[1] % 8], uuid + 9);
}

static void read_version_body(atr_api_req_t *r, atr_db_t *db, json_t *body,
                              new_version_t *nv, char prov[64], json_t *v) {
  nv->file_id = atr_api_opt_string(body, "file_id", v);
  nv->name = atr_api_opt_string(body, "name", v);
  nv->message = atr_api_opt_string(body, "message", v);
  nv->template_id = atr_api_opt_string(body, "template_id", v);
  nv->provisioner = atr_api_opt_string(body, "provisioner", v);
  nv->tags = json_object_get(body, "tags");
  tags_ok(nv->tags, v);
  if (!nv->file_id || !atr_uuid_valid(nv->file_id))
    atr_api_add_validation(v, "file_id",
                           "Required: the id POST /api/v2/files answered.");
  else if (!nv->provisioner) {
    provisioner_from_file(db, nv->file_id, prov, 64, v);
    nv->provisioner = *prov ? prov : NULL;
  }
  if (nv->provisioner)
    check_provisioner(r, nv->provisioner, v);
  if (nv->template_id && !template_in_org(db, nv->template_id, r->org_id))
    atr_api_add_validation(v, "template_id",
                           "No such template in this organization.");
  if (nv->name && strlen(nv->name) > 64)
    atr_api_add_validation(v, "name", "At most 64 characters.");
  if (!nv->name || !*nv->name) {
    random_name(nv->name_buf, sizeof nv->name_buf);
    nv->name = nv->name_buf;
  }
}

int atr_api_template_version_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  new_version_t nv = {.org_id = r->org_id, .user_id = r->actor.user_id};
  char prov[64] = "";
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    read_version_body(r, &db, body, &nv, prov, v);
    atr_db_close(&db);
  }
  if (rc == 0 && json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid template version.", v);
    v = NULL;
  } else if (rc == 0) {
    rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, insert_version, &nv, &err);
    if (atr_db_unique_violation(rc, err))
      atr_api_error(r, 409, "A version of this template has that name.",
                    nv.name);
    else if (rc != 0)
      atr_api_fail(r, rc, err);
  } else {
    atr_api_fail(r, rc, err);
  }
  json_decref(v);
  free(err);
  err = NULL;
  if (r->status == 0) {
    atr_api_json(r, 201, nv.answer);
    nv.answer = NULL;
    atr_api_audit(r, "create", "template_version", nv.id, nv.name, r->org_id,
                  NULL);
    /* After the answer is made, so it shows the job as created: pending. */
    atr_events_job_posted(r->env->dom.events);
  }
  json_decref(nv.answer);
  free(err);
  json_decref(body);
  return 0;
}

int atr_api_template_version_get(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_READ);
  return v ? atr_api_json(r, 200, v) : 0;
}

int atr_api_template_version_params(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_READ);
  if (!v)
    return 0;
  atr_db_t db;
  char *err = NULL;
  atr_manifest_t m = {0};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_schema_load(&db, json_string_value(json_object_get(v, "id")), &m,
                         &err);
    atr_db_close(&db);
  }
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    json_t *a = json_array();
    for (size_t i = 0; i < m.nparams; i++)
      json_array_append_new(a, atr_schema_param_json(&m.params[i]));
    atr_api_json(r, 200, a);
  }
  atr_manifest_free(&m);
  json_decref(v);
  free(err);
  return 0;
}

static const char *job_id_of(json_t *v) {
  return json_string_value(json_object_get(json_object_get(v, "job"), "id"));
}

int atr_api_template_version_logs(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_READ);
  if (!v)
    return 0;
  atr_api_job_logs(r, job_id_of(v));
  json_decref(v);
  return 0;
}

int atr_api_template_version_cancel(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_UPDATE);
  if (!v)
    return 0;
  atr_api_job_cancel(r, job_id_of(v));
  json_decref(v);
  return 0;
}

/* ---- templates ----------------------------------------------------------- */

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

int atr_api_load_template(atr_db_t *db, const char *id, json_t **out,
                          char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  return atr_select_one(db, &templates, "AND t.id = ?", p, 1, out, err);
}

/* {template} → the template the actor may `act` on; NULL after
 * answering. */
static json_t *template_for(atr_api_req_t *r, atr_action_t act) {
  return authorized(r,
                    atr_api_load(r, &templates, "AND t.id = ?", "template",
                                 "Template not found."),
                    act);
}

/* default_ttl_ms when present: 0 .. 30 days. */
static bool read_ttl(json_t *body, int64_t *ttl, json_t *v) {
  json_t *j = json_object_get(body, "default_ttl_ms");
  if (!j || json_is_null(j))
    return false;
  if (!json_is_integer(j) || json_integer_value(j) < 0 ||
      json_integer_value(j) > MAX_TTL_MS) {
    atr_api_add_validation(
        v, "default_ttl_ms",
        "Must be a whole number of milliseconds from 0 to 30 "
        "days.");
    return false;
  }
  *ttl = json_integer_value(j);
  return true;
}

typedef struct new_template {
  const char *org_id, *name, *display_name, *description, *version_id;
  const char *user_id;
  int64_t ttl;
  char id[37];
  char provisioner[64];
  const char *problem; /* why the version cannot be used */
} new_template_t;

/* The version must be this organization's, imported, and free. */
static int check_version(atr_db_t *db, new_template_t *t, char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(t->version_id), atr_v_text(t->org_id)};
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
  t->problem = NULL;
  int rc = check_version(db, t, err);
  if (rc != 0 || t->problem)
    return rc;
  atr_db_new_uuid(t->id);
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(t->id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(t->org_id),
                     atr_v_text(t->name),
                     atr_v_text(t->display_name ? t->display_name : ""),
                     atr_v_text(t->description ? t->description : ""),
                     atr_v_text(t->provisioner),
                     atr_v_text(t->version_id),
                     atr_v_text(t->user_id),
                     atr_v_int(t->ttl)};
  rc = atr_db_exec(db,
                   "INSERT INTO templates (id, created_at, updated_at, "
                   "organization_id, name, display_name, description, "
                   "provisioner, active_version_id, created_by, default_ttl) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   p, 11, NULL, err);
  atr_value_t q[] = {atr_v_text(t->id), atr_v_time(now),
                     atr_v_text(t->version_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "UPDATE template_versions SET template_id = ?, "
                     "updated_at = ? WHERE id = ?",
                     q, 3, NULL, err);
  return rc;
}

int atr_api_template_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  new_template_t t = {
      .org_id = r->org_id, .user_id = r->actor.user_id, .ttl = DEFAULT_TTL_MS};
  t.name = atr_api_opt_string(body, "name", v);
  t.display_name = atr_api_opt_string(body, "display_name", v);
  t.description = atr_api_opt_string(body, "description", v);
  t.version_id = atr_api_opt_string(body, "template_version_id", v);
  read_ttl(body, &t.ttl, v);
  const char *bad = atr_name_problem(t.name);
  if (bad)
    atr_api_add_validation(v, "name", bad);
  if (!t.version_id || !atr_uuid_valid(t.version_id))
    atr_api_add_validation(v, "template_version_id",
                           "Required: a template version id.");
  if (t.description && strlen(t.description) > 1024)
    atr_api_add_validation(v, "description", "At most 1024 characters.");
  char *err = NULL;
  int rc = 0;
  if (json_array_size(v) == 0) {
    rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, insert_template, &t, &err);
    if (rc == 0 && t.problem)
      atr_api_add_validation(v, "template_version_id", t.problem);
  }
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid template.", v);
    v = NULL;
  } else if (atr_db_unique_violation(rc, err)) {
    atr_api_error(r, 409, "A template with this name exists.", t.name);
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    json_t *out = NULL;
    atr_db_t db;
    free(err);
    err = NULL;
    if (atr_db_open(r->env->dom.store, &db, &err) == 0) {
      atr_api_load_template(&db, t.id, &out, &err);
      atr_db_close(&db);
    }
    atr_api_json(r, 201, out ? out : json_pack("{s:s}", "id", t.id));
    atr_api_audit(r, "create", "template", t.id, t.name, r->org_id, NULL);
  }
  json_decref(v);
  json_decref(body);
  free(err);
  return 0;
}

int atr_api_templates_list(atr_api_req_t *r) {
  return atr_api_list_page(r, &templates,
                           "AND t.organization_id = ? ORDER BY lower(t.name) "
                           "LIMIT ? OFFSET ?",
                           r->org_id, 100);
}

int atr_api_template_by_name(atr_api_req_t *r) {
  const char *name = atr_api_param(r, "templatename");
  atr_db_t db;
  char *err = NULL;
  json_t *t = NULL;
  atr_value_t p[] = {atr_v_text(r->org_id), atr_v_text(name)};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_select_one(&db, &templates,
                        "AND t.organization_id = ? AND lower(t.name) = "
                        "lower(?)",
                        p, 2, &t, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "Template not found.", name);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 200, t);
  free(err);
  return 0;
}

int atr_api_template_get(atr_api_req_t *r) {
  json_t *t = template_for(r, ATR_ACT_READ);
  return t ? atr_api_json(r, 200, t) : 0;
}

typedef struct update {
  json_t *t;
  const char *name, *display_name, *description;
  bool has_ttl;
  int64_t ttl;
} update_t;

static int update_tx(atr_db_t *db, void *ud, char **err) {
  const update_t *u = ud;
  atr_value_t p[] = {
      atr_v_text(u->name ? u->name : atr_json_str(u->t, "name")),
      atr_v_text(u->display_name ? u->display_name
                                 : atr_json_str(u->t, "display_name")),
      atr_v_text(u->description ? u->description
                                : atr_json_str(u->t, "description")),
      atr_v_int(u->has_ttl ? u->ttl
                           : json_integer_value(
                                 json_object_get(u->t, "default_ttl_ms"))),
      atr_v_time(atr_db_now_us()),
      atr_v_text(atr_json_str(u->t, "id"))};
  return atr_db_exec(db,
                     "UPDATE templates SET name = ?, display_name = ?, "
                     "description = ?, default_ttl = ?, updated_at = ? WHERE "
                     "id = ?",
                     p, 6, NULL, err);
}

static json_t *update_diff(const update_t *u) {
  json_t *diff = NULL;
  if (u->name && strcmp(u->name, atr_json_str(u->t, "name")) != 0)
    atr_audit_diff_add(&diff, "name", atr_json_str(u->t, "name"), u->name,
                       false);
  if (u->display_name &&
      strcmp(u->display_name, atr_json_str(u->t, "display_name")) != 0)
    atr_audit_diff_add(&diff, "display_name",
                       atr_json_str(u->t, "display_name"), u->display_name,
                       false);
  if (u->description &&
      strcmp(u->description, atr_json_str(u->t, "description")) != 0)
    atr_audit_diff_add(&diff, "description", atr_json_str(u->t, "description"),
                       u->description, false);
  if (u->has_ttl) {
    char was[32], now[32];
    snprintf(
        was, sizeof was, "%lld",
        (long long)json_integer_value(json_object_get(u->t, "default_ttl_ms")));
    snprintf(now, sizeof now, "%lld", (long long)u->ttl);
    if (strcmp(was, now) != 0)
      atr_audit_diff_add(&diff, "default_ttl_ms", was, now, false);
  }
  return diff;
}

int atr_api_template_update(atr_api_req_t *r) {
  json_t *t = template_for(r, ATR_ACT_UPDATE);
  json_t *body = t ? atr_api_body(r) : NULL;
  if (!body) {
    json_decref(t);
    return 0;
  }
  json_t *v = json_array();
  update_t u = {.t = t};
  u.name = atr_api_opt_string(body, "name", v);
  u.display_name = atr_api_opt_string(body, "display_name", v);
  u.description = atr_api_opt_string(body, "description", v);
  u.has_ttl = read_ttl(body, &u.ttl, v);
  const char *bad = u.name ? atr_name_problem(u.name) : NULL;
  if (bad)
    atr_api_add_validation(v, "name", bad);
  char *err = NULL;
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid template.", v);
    v = NULL;
  } else {
    int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, update_tx, &u, &err);
    if (atr_db_unique_violation(rc, err)) {
      atr_api_error(r, 409, "A template with this name exists.", u.name);
    } else if (rc != 0) {
      atr_api_fail(r, rc, err);
    } else {
      json_t *out = NULL;
      atr_db_t db;
      if (atr_db_open(r->env->dom.store, &db, &err) == 0) {
        atr_api_load_template(&db, atr_json_str(t, "id"), &out, &err);
        atr_db_close(&db);
      }
      atr_api_json(r, 200, out);
      json_t *diff = update_diff(&u);
      atr_api_audit(r, "write", "template", atr_json_str(t, "id"),
                    u.name ? u.name : atr_json_str(t, "name"),
                    atr_json_str(t, "organization_id"), diff);
      json_decref(diff);
    }
  }
  json_decref(v);
  json_decref(body);
  json_decref(t);
  free(err);
  return 0;
}

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

int atr_api_template_delete(atr_api_req_t *r) {
  json_t *t = template_for(r, ATR_ACT_DELETE);
  if (!t)
    return 0;
  del_t d = {atr_json_str(t, "id"), 0};
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, delete_tx, &d, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else if (d.in_use > 0) {
    char detail[160];
    snprintf(detail, sizeof detail,
             "%lld workspace%s still use%s it; delete them first.",
             (long long)d.in_use, d.in_use == 1 ? "" : "s",
             d.in_use == 1 ? "s" : "");
    atr_api_error(r, 400, "The template is in use.", detail);
  } else {
    atr_api_no_content(r);
    atr_api_audit(r, "delete", "template", d.id, atr_json_str(t, "name"),
                  atr_json_str(t, "organization_id"), NULL);
  }
  json_decref(t);
  free(err);
  return 0;
}

int atr_api_template_versions_list(atr_api_req_t *r) {
  json_t *t = template_for(r, ATR_ACT_READ);
  if (!t)
    return 0;
  atr_api_list_page(r, &versions,
                    "WHERE v.template_id = ? ORDER BY v.created_at DESC, "
                    "v.id LIMIT ? OFFSET ?",
                    atr_json_str(t, "id"), 100);
  json_decref(t);
  return 0;
}

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

int atr_api_template_version_promote(atr_api_req_t *r) {
  json_t *t = template_for(r, ATR_ACT_UPDATE);
  json_t *body = t ? atr_api_body(r) : NULL;
  if (!body) {
    json_decref(t);
    return 0;
  }
  json_t *v = json_array();
  promote_t pr = {atr_json_str(t, "id"), atr_api_opt_string(body, "id", v),
                  NULL};
  char *err = NULL;
  int rc = 0;
  if (!pr.version_id)
    atr_api_add_validation(v, "id", "Required: the version to make active.");
  if (json_array_size(v) == 0) {
    rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, promote_tx, &pr, &err);
    if (rc == 0 && pr.problem)
      atr_api_add_validation(v, "id", pr.problem);
  }
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Cannot change the active version.", v);
    v = NULL;
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200,
                 json_pack("{s:s}", "message", "Updated the active version."));
    json_t *diff = NULL;
    atr_audit_diff_add(&diff, "active_version_id",
                       atr_json_str(t, "active_version_id"), pr.version_id,
                       false);
    atr_api_audit(r, "write", "template", pr.template_id,
                  atr_json_str(t, "name"), atr_json_str(t, "organization_id"),
                  diff);
    json_decref(diff);
  }
  json_decref(v);
  json_decref(body);
  json_decref(t);
  free(err);
  return 0;
}
