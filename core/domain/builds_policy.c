/* core/domain/builds_policy.c — the policies of a build (builds_make.h):
 * the hook's input, the version's own policy, and what a decision does to
 * the build. */
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "builds_make.h"
#include "policy_hooks.h"
#include "rows.h"

/* input.template, input.version and input.workspace. */
static int add_objects(atr_db_t *db, const atr__new_build_t *nb, json_t *in,
                       char **err) {
  atr_value_t k[] = {atr_v_text(nb->template_id), atr_v_text(nb->version_id),
                     atr_v_text(nb->owner_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT t.name, v.name, u.username FROM templates t, "
                        "template_versions v, users u WHERE t.id = ? AND v.id "
                        "= ? AND u.id = ?",
                        k, 3, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_object_set_new(in, "template",
                        json_pack("{s:s, s:s}", "id", nb->template_id, "name",
                                  atr_row_text(db, rows, 0)));
    json_object_set_new(in, "version",
                        json_pack("{s:s, s:s}", "id", nb->version_id, "name",
                                  atr_row_text(db, rows, 1)));
    json_t *ws = json_pack("{s:s, s:s}", "name", nb->ws_name, "owner",
                           atr_row_text(db, rows, 2));
    if (!nb->new_workspace_id[0])
      json_object_set_new(ws, "id", json_string(nb->workspace_id));
    json_object_set_new(in, "workspace", ws);
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int policy_input(atr_db_t *db, const atr__new_build_t *nb,
                        json_t *previous, json_t *resolved, json_t **out,
                        char **err) {
  json_t *in = json_object();
  int rc = atr_policy_input_people(db, nb->initiator_id, nb->org_id, in, err);
  if (rc == 0)
    rc = add_objects(db, nb, in, err);
  json_object_set_new(in, "transition", json_string(nb->transition));
  json_object_set_new(
      in, "parameters",
      json_pack("{s:O?, s:O}", "old", previous, "new", resolved));
  *out = in;
  return rc;
}

/* The template version's own policy (name and text), NULL when none. */
static int template_policy(atr_db_t *db, const char *version_id, char **name,
                           char **source, char **err) {
  atr_value_t k[] = {atr_v_text(version_id)};
  atr_db_rows_t *rows = NULL;
  *name = *source = NULL;
  int rc = atr_db_query(db,
                        "SELECT policy_name, policy_source FROM "
                        "template_versions WHERE id = ?",
                        k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1 &&
      !atr_db_is_null(db, rows, 1)) {
    *name = strdup(atr_row_text(db, rows, 0));
    *source = strdup(atr_row_text(db, rows, 1));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* Values a policy set are checked against the schema like the caller's. */
static void take_sets(atr__new_build_t *nb, const atr_manifest_t *m,
                      const atr_decision_t *d, json_t *previous,
                      json_t **resolved) {
  json_t *values = json_deep_copy(*resolved);
  for (size_t i = 0; i < d->nsets; i++)
    json_object_set_new(values, d->sets[i].name, json_string(d->sets[i].value));
  json_t *again = NULL, *errors = NULL;
  int rc = atr_manifest_check_values(m, values, previous, &again, &errors);
  json_decref(values);
  if (rc != 0) {
    atr_fault_set(&nb->refusal, ATR_EPERM,
                  "A policy set a parameter to a value the template does "
                  "not allow.",
                  "%s", "");
    nb->refusal.validations = errors;
    return;
  }
  json_decref(*resolved);
  *resolved = again;
}

/* The decision goes to the audit log: a value a policy set for a
 * sensitive parameter must not. */
static void mask_sensitive_sets(const atr_manifest_t *m, json_t *decision) {
  json_t *sets = json_object_get(decision, "sets");
  for (size_t i = 0; i < m->nparams; i++)
    if (m->params[i].sensitive && json_object_get(sets, m->params[i].name))
      json_object_set_new(sets, m->params[i].name, json_string("********"));
}

int atr__build_policies(atr_db_t *db, atr__new_build_t *nb,
                        const atr_manifest_t *m, json_t *previous,
                        json_t **resolved, char **err) {
  json_t *input = NULL;
  char *name = NULL, *source = NULL;
  int rc = policy_input(db, nb, previous, *resolved, &input, err);
  if (rc == 0)
    rc = template_policy(db, nb->version_id, &name, &source, err);
  atr_decision_t d;
  atr_decision_init(&d);
  if (rc == 0)
    rc = atr_policy_hooks_eval(nb->new_workspace_id[0] ? "workspace_create"
                                                       : "build",
                               input, name, source, &d);
  if (rc == 0 && atr_policy_hooks_noteworthy(&d)) {
    nb->decision = atr_decision_to_json(&d);
    mask_sensitive_sets(m, nb->decision);
  }
  if (rc == 0 && atr_decision_denied(&d))
    atr_policy_deny_fault(&d, &nb->refusal);
  else if (rc == 0 && d.nsets > 0)
    take_sets(nb, m, &d, previous, resolved);
  atr_decision_clear(&d);
  json_decref(input);
  free(name);
  free(source);
  return rc;
}
