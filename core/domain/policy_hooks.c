/* core/policy_hooks.c — see policy_hooks.h. */
#include "policy_hooks.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "log.h"
#include "rbac.h"
#include "session.h"
#include "stats.h"

static pthread_mutex_t deployment_lock = PTHREAD_MUTEX_INITIALIZER;
static atr_policy_set_t deployment; /* guarded by deployment_lock */
static atr_policy_limits_t limits;  /* guarded by deployment_lock */
static bool configured;             /* guarded by deployment_lock */

static void swap_in(atr_policy_set_t *fresh, const atr_policy_limits_t *lim) {
  pthread_mutex_lock(&deployment_lock);
  if (!configured)
    atr_policy_set_init(&deployment);
  atr_policy_set_t old = deployment;
  deployment = *fresh;
  limits = lim ? *lim : (atr_policy_limits_t){0};
  configured = true;
  pthread_mutex_unlock(&deployment_lock);
  atr_policy_set_clear(&old);
}

int atr_policy_hooks_configure(const char *const *globs,
                               const atr_policy_limits_t *lim, char **err) {
  atr_policy_set_t fresh;
  atr_policy_set_init(&fresh);
  int rc = globs && globs[0]
               ? atr_policy_set_load_files(&fresh, globs, ATR_POLICY_DEPLOYMENT,
                                           lim, err)
               : 0;
  if (rc != 0) {
    atr_policy_set_clear(&fresh);
    return rc;
  }
  size_t n = fresh.n;
  swap_in(&fresh, lim);
  atr_log(ATR_LOG_INFO, "policy", "%zu deployment polic%s in force", n,
          n == 1 ? "y" : "ies");
  return 0;
}

int atr_policy_hooks_reload(const char *const *globs,
                            const atr_policy_limits_t *lim) {
  char *err = NULL;
  int rc = atr_policy_hooks_configure(globs, lim, &err);
  if (rc != 0)
    atr_log(ATR_LOG_ERROR, "policy",
            "reload failed, the previous policies stay in force: %s",
            err ? err : atr_strerror(rc));
  free(err);
  return rc;
}

void atr_policy_hooks_free(void) {
  pthread_mutex_lock(&deployment_lock);
  if (configured)
    atr_policy_set_clear(&deployment);
  configured = false;
  pthread_mutex_unlock(&deployment_lock);
}

/* A template policy that cannot load denies: the author must fix it. */
static void deny_load_error(atr_decision_t *out, const char *name,
                            const char *err) {
  atr_policy_msg_t *d = calloc(1, sizeof *d);
  if (!d)
    return;
  d->message = strdup(err ? err : "the template's policy cannot be loaded");
  d->policy = strdup(name);
  out->denies = d;
  out->ndenies = 1;
}

int atr_policy_hooks_eval(const char *hook, json_t *input,
                          const char *template_name,
                          const char *template_source, atr_decision_t *out) {
  atr_policy_set_t set;
  atr_policy_set_init(&set);
  atr_policy_limits_t lim;
  pthread_mutex_lock(&deployment_lock);
  int rc = configured ? atr_policy_set_add_all(&set, &deployment) : 0;
  lim = limits;
  pthread_mutex_unlock(&deployment_lock);
  atr_policy_t *tpl = NULL;
  char *err = NULL;
  if (rc == 0 && template_source) {
    const char *name = template_name ? template_name : "policy.lua";
    if (atr_policy_load(name, template_source, strlen(template_source), &lim,
                        &tpl, &err) != 0) {
      atr_decision_init(out);
      deny_load_error(out, name, err);
      atr_stats_policy_decision(hook, "deny");
      free(err);
      atr_policy_set_clear(&set);
      return 0;
    }
    rc = atr_policy_set_add(&set, tpl, ATR_POLICY_TEMPLATE);
    atr_policy_unref(tpl);
  }
  if (rc == 0)
    rc = atr_policy_set_eval(&set, hook, input, &lim, out);
  else
    atr_decision_init(out);
  if (rc == 0 && set.n > 0)
    atr_stats_policy_decision(hook, out->ndenies     ? "deny"
                                    : out->nsets     ? "set"
                                    : out->nwarnings ? "warn"
                                                     : "allow");
  atr_policy_set_clear(&set);
  return rc;
}

bool atr_policy_hooks_noteworthy(const atr_decision_t *d) {
  return d->ndenies > 0 || d->nwarnings > 0 || d->nsets > 0;
}

/* ---- inputs ---------------------------------------------------------------- */

static json_t *role_names(uint32_t roles) {
  json_t *a = json_array();
  for (uint32_t bit = 1; bit && bit <= ATR_ROLE_ORG_MEMBER; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      json_array_append_new(a, json_string(atr_role_name(bit)));
  return a;
}

int atr_policy_input_people(atr_db_t *db, const char *user_id,
                            const char *org_id, json_t *input, char **err) {
  atr_value_t k[] = {atr_v_text(user_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, "SELECT username, email FROM users WHERE id = ?", k,
                        1, &rows, err);
  json_t *user = json_pack("{s:s, s:s, s:s, s:[], s:[]}", "id", user_id, "name",
                           "", "email", "", "roles", "groups");
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *name = atr_db_get_text(db, rows, 0);
    const char *email = atr_db_get_text(db, rows, 1);
    json_object_set_new(user, "name", json_string(name ? name : ""));
    json_object_set_new(user, "email", json_string(email ? email : ""));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  uint32_t roles = 0, org_roles = 0;
  char resolved[37] = "";
  if (rc == 0)
    rc = atr_user_roles(db, user_id, &roles, err);
  if (rc == 0 && org_id &&
      atr_org_roles(db, org_id, user_id, resolved, &org_roles, err) != 0) {
    free(*err);
    *err = NULL; /* not a member: no organization roles */
  }
  json_object_set_new(user, "roles", role_names(roles | org_roles));
  json_object_set_new(input, "user", user);
  char *org_name = NULL;
  atr_value_t o[] = {atr_v_text(org_id)};
  if (rc == 0 && org_id &&
      atr_db_query_text(db, "SELECT name FROM organizations WHERE id = ?", o, 1,
                        &org_name, err) == 0)
    json_object_set_new(
        input, "organization",
        json_pack("{s:s, s:s}", "id", org_id, "name", org_name));
  free(org_name);
  return rc < 0 ? rc : 0;
}

/* ---- answers and audit ------------------------------------------------------ */

int atr_policy_deny_fault(const atr_decision_t *d, atr_fault_t *fault) {
  json_t *validations = json_array();
  json_t *denies = json_array();
  char *detail = strdup("");
  for (size_t i = 0; i < d->ndenies; i++) {
    const atr_policy_msg_t *m = &d->denies[i];
    char *next = NULL;
    if (detail && asprintf(&next, "%s%s%s: %s", detail, i ? "; " : "",
                           m->policy, m->message) < 0)
      next = NULL;
    free(detail);
    detail = next;
    if (m->parameter)
      json_array_append_new(
          validations,
          json_pack("{s:s, s:s}", "field", m->parameter, "detail", m->message));
    json_array_append_new(
        denies,
        json_pack("{s:s, s:o, s:s}", "message", m->message, "parameter",
                  m->parameter ? json_string(m->parameter) : json_null(),
                  "policy", m->policy));
  }
  /* validations go in the extra members: the answer has them even when
   * no deny names a parameter. */
  int rc = atr_fault_set(fault, ATR_EPERM, "Denied by policy.", "%s",
                         detail ? detail : "");
  if (fault && fault->code == ATR_EPERM && !fault->extra)
    fault->extra =
        json_pack("{s:o, s:o}", "validations", validations, "denies", denies);
  else {
    json_decref(validations);
    json_decref(denies);
  }
  free(detail);
  return rc;
}

void atr_policy_audit(atr_store_t *store, const atr_actor_t *actor,
                      json_t *decision, const char *workspace_id,
                      const char *workspace_name, const char *org_id,
                      int status) {
  if (!decision)
    return;
  char *text = json_dumps(decision, JSON_COMPACT | JSON_SORT_KEYS);
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "policy_decision", NULL, text, false);
  atr_audit_record(store, actor,
                   &(atr_audit_entry_t){.action = "policy",
                                        .resource_type = "workspace",
                                        .resource_id = workspace_id,
                                        .resource_target = workspace_name,
                                        .organization_id = org_id,
                                        .diff = diff,
                                        .status_code = status});
  json_decref(diff);
  free(text);
}
