/* core/domain/schedule.c — a workspace's schedule (workspaces.h):
 * autostart (a cron text) and autostop (ttl_ms after a start), as Coder's
 * PUT /workspaces/{id}/autostart and /ttl. Every change goes through the
 * `schedule` policy hook first: a deny refuses it, a policy may set
 * autostart or ttl_ms, and warnings come back with the answer.
 *
 * atrium stores the schedule; the scheduler that acts on it is not built
 * yet (README, "Not yet done"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "policy_hooks.h"
#include "workspaces.h"
#include "workspaces_rows.h"

#define MIN_TTL_MS 60000LL
#define MAX_TTL_MS (30LL * 24 * 3600 * 1000)
#define TTL_RULE                                                               \
  "Milliseconds from one minute to 30 days, or null for the template's "       \
  "default."

/* "[CRON_TZ=Area/City ]m h dom mon dow": five fields of digits, names and
 * * , - /. NULL when it looks right, else why not. */
static const char *cron_problem(const char *s) {
  if (strncmp(s, "CRON_TZ=", 8) == 0) {
    const char *sp = strchr(s, ' ');
    if (!sp || sp == s + 8)
      return "CRON_TZ= must be followed by a time zone and a space.";
    s = sp + 1;
  }
  int fields = 0;
  for (const char *p = s; *p;) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    fields++;
    for (; *p && *p != ' '; p++)
      if (!isalnum((unsigned char)*p) && !strchr("*,-/", *p))
        return "Fields may hold digits, names (MON, JAN), * , - and /.";
  }
  return fields == 5 ? NULL
                     : "A schedule has five fields: minute hour day-of-month "
                       "month day-of-week (e.g. \"30 8 * * 1-5\").";
}

static bool ttl_out_of_range(int64_t ttl) {
  return ttl < MIN_TTL_MS || ttl > MAX_TTL_MS;
}

typedef struct change {
  json_t *w;             /* the Workspace */
  const char *autostart; /* NULL: off */
  char *owned;           /* a value a policy set */
  bool ttl_null;
  int64_t ttl;
  json_t *warnings;
} change_t;

static json_t *schedule_json(const char *autostart, bool ttl_null,
                             int64_t ttl) {
  return json_pack("{s:o, s:o}", "autostart",
                   autostart ? json_string(autostart) : json_null(), "ttl_ms",
                   ttl_null ? json_null() : json_integer(ttl));
}

static json_t *policy_input(atr_db_t *db, const atr_actor_t *actor,
                            const change_t *c) {
  json_t *in = json_object(), *w = c->w;
  char *err = NULL;
  atr_policy_input_people(db, actor->user_id,
                          atr_json_str(w, "organization_id"), in, &err);
  free(err);
  json_t *old_ttl = json_object_get(w, "ttl_ms");
  json_t *old =
      schedule_json(json_string_value(json_object_get(w, "autostart_schedule")),
                    !json_is_integer(old_ttl), json_integer_value(old_ttl));
  json_object_set_new(
      in, "schedule",
      json_pack("{s:o, s:o}", "old", old, "new",
                schedule_json(c->autostart, c->ttl_null, c->ttl)));
  json_object_set_new(in, "template",
                      json_pack("{s:s, s:s}", "id",
                                atr_json_str(w, "template_id"), "name",
                                atr_json_str(w, "template_name")));
  json_object_set_new(in, "workspace",
                      json_pack("{s:s, s:s, s:s}", "id", atr_json_str(w, "id"),
                                "name", atr_json_str(w, "name"), "owner",
                                atr_json_str(w, "owner_name")));
  return in;
}

static void take_sets(change_t *c, const atr_decision_t *d) {
  const char *a = atr_decision_get_set(d, "autostart");
  const char *t = atr_decision_get_set(d, "ttl_ms");
  if (a) {
    free(c->owned);
    c->owned = *a ? strdup(a) : NULL;
    c->autostart = c->owned;
  }
  if (t) {
    c->ttl_null = !*t;
    c->ttl = strtoll(t, NULL, 10);
  }
}

/* The policies' say: a deny refuses, sets are applied to c, warnings
 * kept; the decision is recorded either way. */
static int decide(const atr_domain_t *dom, const atr_actor_t *actor,
                  atr_db_t *db, change_t *c, atr_fault_t *fault) {
  json_t *input = policy_input(db, actor, c);
  atr_decision_t d;
  int rc = atr_policy_hooks_eval("schedule", input, NULL, NULL, &d);
  json_decref(input);
  json_t *dj = rc == 0 && atr_policy_hooks_noteworthy(&d)
                   ? atr_decision_to_json(&d)
                   : NULL;
  bool ok = rc == 0 && !atr_decision_denied(&d);
  if (rc != 0) {
    atr_fault_internal(fault, rc, "the policies could not be evaluated");
  } else if (!ok) {
    rc = atr_policy_deny_fault(&d, fault);
  } else {
    take_sets(c, &d);
    c->warnings = json_incref(json_object_get(dj, "warnings"));
  }
  atr_policy_audit(dom->store, actor, dj, atr_json_str(c->w, "id"),
                   atr_json_str(c->w, "name"),
                   atr_json_str(c->w, "organization_id"), ok ? 200 : 403);
  json_decref(dj);
  atr_decision_clear(&d);
  return rc;
}

static int store(atr_db_t *db, void *ud, char **err) {
  const change_t *c = ud;
  atr_value_t p[] = {
      atr_v_text(c->autostart), c->ttl_null ? atr_v_null() : atr_v_int(c->ttl),
      atr_v_time(atr_db_now_us()), atr_v_text(atr_json_str(c->w, "id"))};
  return atr_db_exec(db,
                     "UPDATE workspaces SET autostart_schedule = ?, ttl = ?, "
                     "updated_at = ? WHERE id = ?",
                     p, 4, NULL, err);
}

/* What a policy set is checked like what the caller asked for. */
static int check_sets(const change_t *c, atr_fault_t *fault) {
  const char *bad = c->autostart ? cron_problem(c->autostart) : NULL;
  if (!bad && !c->ttl_null && ttl_out_of_range(c->ttl))
    bad = "ttl_ms must be between one minute and 30 days.";
  if (!bad)
    return 0;
  return atr_fault_set(fault, ATR_EPERM,
                       "A policy set a schedule that is not valid.", "%s", bad);
}

/* Decide, re-check what a policy set, store; *out the schedule. */
static int change(const atr_domain_t *dom, const atr_actor_t *actor,
                  atr_db_t *db, change_t *c, json_t **out, atr_fault_t *fault) {
  int rc = decide(dom, actor, db, c, fault);
  atr_db_close(db);
  if (rc == 0)
    rc = check_sets(c, fault);
  char *err = NULL;
  if (rc == 0 &&
      (rc = atr_db_tx(dom->store, ATR_TX_WRITE, store, c, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0) {
    *out = schedule_json(c->autostart, c->ttl_null, c->ttl);
    json_object_set_new(*out, "warnings",
                        c->warnings ? c->warnings : json_array());
    c->warnings = NULL;
  }
  json_decref(c->warnings);
  free(c->owned);
  free(err);
  return rc;
}

/* The workspace the actor may update, with the caller's problems and
 * ours (a validation `problem` for `field`) refused as `invalid`. db is
 * left open on success. */
static int start(const atr_domain_t *dom, const atr_actor_t *actor,
                 const char *id, atr_db_t *db, change_t *c, json_t *problems,
                 const char *field, const char *problem, const char *invalid,
                 atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_db_open(dom->store, db, &err);
  if (rc != 0) {
    atr_fault_internal(fault, rc, err);
    free(err);
    return rc;
  }
  rc = atr__workspace_for(db, actor, id, ATR_ACT_UPDATE, &c->w, fault);
  atr_fault_t v = {0};
  if (rc == 0 && problems)
    v.validations = json_deep_copy(problems);
  if (rc == 0 && problem)
    atr_fault_field(&v, field, "%s", problem);
  if (rc == 0 && atr_fault_has_fields(&v)) {
    rc = atr_fault_set(fault, ATR_EINVAL, invalid, "%s", "");
    fault->validations = v.validations;
    v.validations = NULL;
  }
  atr_fault_clear(&v);
  if (rc != 0)
    atr_db_close(db);
  return rc;
}

int atr_workspace_autostart_set(const atr_domain_t *dom,
                                const atr_actor_t *actor, const char *id,
                                const char *schedule, json_t *problems,
                                json_t **out, atr_fault_t *fault) {
  *out = NULL;
  change_t c = {.autostart = schedule && *schedule ? schedule : NULL};
  const char *bad = c.autostart ? cron_problem(c.autostart) : NULL;
  atr_db_t db;
  int rc = start(dom, actor, id, &db, &c, problems, "schedule", bad,
                 "Invalid schedule.", fault);
  if (rc == 0) {
    json_t *t = json_object_get(c.w, "ttl_ms"); /* kept */
    c.ttl_null = !json_is_integer(t);
    c.ttl = json_integer_value(t);
    rc = change(dom, actor, &db, &c, out, fault);
  }
  json_decref(c.w);
  return rc;
}

int atr_workspace_ttl_set(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *id, bool has_ttl, int64_t ttl_ms,
                          json_t *problems, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  change_t c = {.ttl_null = !has_ttl, .ttl = has_ttl ? ttl_ms : 0};
  const char *bad = has_ttl && ttl_out_of_range(ttl_ms) ? TTL_RULE : NULL;
  atr_db_t db;
  int rc = start(dom, actor, id, &db, &c, problems, "ttl_ms", bad,
                 "Invalid autostop.", fault);
  if (rc == 0) {
    c.autostart = json_string_value(json_object_get(c.w, "autostart_schedule"));
    rc = change(dom, actor, &db, &c, out, fault);
  }
  json_decref(c.w);
  return rc;
}
