/* core/domain/template_versions.c — see template_versions.h. */
#include "template_versions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "conf.h"
#include "events.h"
#include "files.h"
#include "job_view.h"
#include "manifest.h"
#include "params.h"
#include "provisioners.h"
#include "queue.h"
#include "rows.h"
#include "templates.h"

#define MANIFEST_MAX ((size_t)1024 * 1024)

/* ---- versions as JSON ------------------------------------------------------ */

#define VERSION_SELECT                                                         \
  "SELECT v.id, v.template_id, v.organization_id, v.name, v.message, "         \
  "v.created_at, v.updated_at, v.created_by, u.username, v.archived, "         \
  "v.readme, " ATR_JOB_COLUMNS " FROM template_versions v JOIN users u "       \
  "ON u.id = v.created_by JOIN provisioner_jobs j ON j.id = v.job_id "
#define VERSION_NCOLS 11

static json_t *version_row(atr_db_t *db, atr_db_rows_t *rows) {
  const char *tid = atr_db_get_text(db, rows, 1);
  json_t *job = atr_job_view_json(db, rows, VERSION_NCOLS);
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
  return atr_job_view_add_tags(db, json_object_get(v, "job"), err);
}

static const atr_select_t versions = {VERSION_SELECT, version_row,
                                      version_tags};

static int load_version(atr_db_t *db, const char *id, json_t **out,
                        char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  return atr_select_one(db, &versions, "WHERE v.id = ?", p, 1, out, err);
}

/* The version `id` the actor may `act` on, on db, into *out. */
static int version_for(atr_db_t *db, const atr_actor_t *actor, const char *id,
                       atr_action_t act, json_t **out, atr_fault_t *fault) {
  char *err = NULL;
  int rc = load_version(db, id, out, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "Template version not found.", "%s", id ? id : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else
    rc = atr__template_allowed(db, actor, atr_json_str(*out, "organization_id"),
                               act, fault);
  free(err);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* Open a connection, run version_for. */
static int version_for_in(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *id, atr_action_t act, json_t **out,
                          atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = version_for(&db, actor, id, act, out, fault);
  atr_db_close(&db);
  return rc;
}

int atr_template_version_get(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *id, atr_action_t act, json_t **out,
                             atr_fault_t *fault) {
  return version_for_in(dom, actor, id, act, out, fault);
}

int atr_template_version_params(const atr_domain_t *dom,
                                const atr_actor_t *actor, const char *id,
                                json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char *err = NULL;
  json_t *v = NULL;
  atr_manifest_t m = {0};
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0) {
    atr_fault_internal(fault, rc, err);
    free(err);
    return rc;
  }
  rc = version_for(&db, actor, id, ATR_ACT_READ, &v, fault);
  if (rc == 0 &&
      (rc = atr_schema_load(&db, atr_json_str(v, "id"), &m, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  if (rc == 0) {
    *out = json_array();
    for (size_t i = 0; i < m.nparams; i++)
      json_array_append_new(*out, atr_schema_param_json(&m.params[i]));
  }
  atr_manifest_free(&m);
  json_decref(v);
  free(err);
  return rc;
}

int atr_template_versions_list(const atr_domain_t *dom,
                               const atr_actor_t *actor,
                               const char *template_id, int64_t limit,
                               int64_t offset, json_t **out,
                               atr_fault_t *fault) {
  json_t *t = NULL;
  int rc = atr_template_get(dom, actor, template_id, &t, fault);
  *out = NULL;
  if (rc != 0)
    return rc;
  atr_db_t db;
  char *err = NULL;
  atr_value_t p[] = {atr_v_text(atr_json_str(t, "id")), atr_v_int(limit),
                     atr_v_int(offset)};
  rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0) {
    rc = atr_select_list(&db, &versions,
                         "WHERE v.template_id = ? ORDER BY v.created_at DESC, "
                         "v.id LIMIT ? OFFSET ?",
                         p, 3, out, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  json_decref(t);
  return rc;
}

/* ---- create ------------------------------------------------------------------ */

typedef struct new_version {
  const atr_template_version_new_t *in;
  const char *user_id;
  const char *name, *provisioner; /* as given, or chosen */
  char name_buf[64];
  char prov_buf[64];
  char id[37];
  char job_id[37];
  char *agent_spec; /* template.yaml's agent as JSON, or NULL */
  json_t *answer;   /* read in the transaction: its job as created, pending */
} new_version_t;

static int insert_version(atr_db_t *db, void *ud, char **err) {
  new_version_t *nv = ud;
  const atr_template_version_new_t *in = nv->in;
  atr_db_new_uuid(nv->id);
  json_t *input = json_pack("{s:s}", "template_version_id", nv->id);
  char *input_text = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  atr_job_new_t job = {.type = "template_version_import",
                       .provisioner = nv->provisioner,
                       .organization_id = in->organization_id,
                       .initiator_id = nv->user_id,
                       .file_id = in->file_id,
                       .input = input_text,
                       .tags = (json_t *)in->tags};
  int rc = atr_jobs_insert(db, &job, nv->job_id, err);
  free(input_text);
  if (rc != 0)
    return rc;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(nv->id),
                     atr_v_text(in->template_id),
                     atr_v_text(in->organization_id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(nv->name),
                     atr_v_text(in->message ? in->message : ""),
                     atr_v_text(nv->job_id),
                     atr_v_text(nv->user_id),
                     atr_v_text(nv->agent_spec)};
  rc = atr_db_exec(db,
                   "INSERT INTO template_versions (id, template_id, "
                   "organization_id, created_at, updated_at, name, message, "
                   "job_id, created_by, agent_spec) VALUES (?, ?, ?, ?, ?, ?, "
                   "?, ?, ?, ?)",
                   p, 10, NULL, err);
  json_decref(nv->answer);
  nv->answer = NULL;
  return rc == 0 ? load_version(db, nv->id, &nv->answer, err) : rc;
}

/* The provisioner named in the archive's template.yaml, into buf; a
 * validation when it cannot be read. */
static void provisioner_from_file(atr_db_t *db, const char *file_id, char *buf,
                                  size_t size, atr_fault_t *fault) {
  char *text = NULL, *err = NULL;
  size_t len = 0;
  int rc = atr_file_read_member(db, file_id, "template.yaml", MANIFEST_MAX,
                                &text, &len, &err);
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
    atr_fault_field(fault, "file_id", "%s",
                    err ? err : "Cannot read template.yaml.");
  atr_conf_free(root);
  free(text);
  free(err);
}

/* The agent spec of the archive's template.yaml (manifest.h), or NULL
 * when it declares none or cannot be read or parsed: then its import
 * fails and reports why, and the version never builds. */
static char *agent_from_file(atr_db_t *db, const char *file_id) {
  char *text = NULL, *err = NULL, *spec = NULL;
  size_t len = 0;
  atr_manifest_t m;
  json_t *errors = NULL;
  if (atr_file_read_member(db, file_id, "template.yaml", MANIFEST_MAX, &text,
                           &len, &err) == 0 &&
      atr_manifest_parse("template.yaml", text, len, &m, &errors) == 0) {
    spec = m.agent_spec;
    m.agent_spec = NULL;
    atr_manifest_free(&m);
  }
  json_decref(errors);
  free(text);
  free(err);
  return spec;
}

/* A validation unless an enabled provisioner plugin has this type. */
static void check_provisioner(const atr_loader_t *loader, const char *type,
                              atr_fault_t *fault) {
  if (atr_provisioner_find(loader, type))
    return;
  size_t n = 0;
  const char **types = atr_provisioner_types(loader, &n);
  char list[512] = "";
  for (size_t i = 0; types && i < n; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
             i ? ", " : "", types[i]);
  free(types);
  char detail[700];
  snprintf(detail, sizeof detail,
           "No enabled provisioner plugin has type \"%s\"; enabled: %s.", type,
           n ? list : "none (enable one under plugins:)");
  atr_fault_field(fault, "provisioner", "%s", detail);
}

static void check_tags(const json_t *tags, atr_fault_t *fault) {
  if (!tags || json_is_null(tags))
    return;
  const char *key;
  const json_t *val;
  bool ok = json_is_object(tags);
  json_object_foreach((json_t *)tags, key, val) ok =
      ok && json_is_string(val) && *key;
  if (!ok)
    atr_fault_field(fault, "tags", "%s", "Must be an object of string values.");
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

/* Every check before the write, as validations; the name and provisioner
 * to use in nv. */
static void check_new_version(const atr_domain_t *dom, atr_db_t *db,
                              new_version_t *nv, atr_fault_t *fault) {
  const atr_template_version_new_t *in = nv->in;
  atr__fault_fields_from(fault, in->invalid);
  check_tags(in->tags, fault);
  nv->provisioner = in->provisioner;
  if (!in->file_id || !atr_uuid_valid(in->file_id)) {
    atr_fault_field(fault, "file_id", "%s",
                    "Required: the id POST /api/v2/files answered.");
  } else {
    nv->agent_spec = agent_from_file(db, in->file_id);
    if (!in->provisioner) {
      provisioner_from_file(db, in->file_id, nv->prov_buf, sizeof nv->prov_buf,
                            fault);
      nv->provisioner = *nv->prov_buf ? nv->prov_buf : NULL;
    }
  }
  if (nv->provisioner)
    check_provisioner(dom->loader, nv->provisioner, fault);
  if (in->template_id &&
      !template_in_org(db, in->template_id, in->organization_id))
    atr_fault_field(fault, "template_id", "%s",
                    "No such template in this organization.");
  if (in->name && strlen(in->name) > 64)
    atr_fault_field(fault, "name", "%s", "At most 64 characters.");
  nv->name = in->name;
  if (!in->name || !*in->name) {
    random_name(nv->name_buf, sizeof nv->name_buf);
    nv->name = nv->name_buf;
  }
}

/* Permission, then the checks, on one connection. */
static int prepare(const atr_domain_t *dom, const atr_actor_t *actor,
                   new_version_t *nv, atr_fault_t *fault) {
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr__template_allowed(&db, actor, nv->in->organization_id,
                             ATR_ACT_CREATE, fault);
  if (rc == 0)
    check_new_version(dom, &db, nv, fault);
  atr_db_close(&db);
  if (rc == 0 && atr_fault_has_fields(fault))
    rc =
        atr_fault_set(fault, ATR_EINVAL, "Invalid template version.", "%s", "");
  return rc;
}

int atr_template_version_create(const atr_domain_t *dom,
                                const atr_actor_t *actor,
                                const atr_template_version_new_t *in,
                                json_t **out, atr_fault_t *fault) {
  *out = NULL;
  new_version_t nv = {.in = in, .user_id = actor->user_id};
  int rc = prepare(dom, actor, &nv, fault);
  if (rc != 0) {
    free(nv.agent_spec);
    return rc;
  }
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, insert_version, &nv, &err);
  free(nv.agent_spec);
  if (atr_db_unique_violation(rc, err))
    atr_fault_set(fault, rc, "A version of this template has that name.", "%s",
                  nv.name);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc != 0) {
    json_decref(nv.answer);
    return rc;
  }
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "create",
                                        .resource_type = "template_version",
                                        .resource_id = nv.id,
                                        .resource_target = nv.name,
                                        .organization_id = in->organization_id,
                                        .status_code = 201});
  /* After the answer was read, so it shows the job as created: pending. */
  atr_events_job_posted(dom->events);
  *out = nv.answer;
  return 0;
}
