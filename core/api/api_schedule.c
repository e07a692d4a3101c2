/* core/api_schedule.c — a workspace's schedule: autostart (a cron text)
 * and autostop (ttl_ms after a start), as Coder's PUT
 * /workspaces/{id}/autostart and /ttl. Every change goes through the
 * `schedule` policy hook first: a deny refuses it (403), a policy may set
 * autostart or ttl_ms, and warnings come back in the answer.
 *
 * atrium stores the schedule; the scheduler that acts on it is not built
 * yet (README, "Not yet done"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_policy.h"
#include "api_workspaces.h"
#include "atrium/error.h"
#include "policy_hooks.h"

#define MIN_TTL_MS 60000LL
#define MAX_TTL_MS (30LL * 24 * 3600 * 1000)

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

typedef struct change {
  json_t *w;
  const char *autostart; /* NULL: off */
  char *owned;           /* a value a policy set, freed by change() */
  bool ttl_null;
  int64_t ttl;
} change_t;

static json_t *schedule_json(const char *autostart, bool ttl_null,
                             int64_t ttl) {
  return json_pack("{s:o, s:o}", "autostart",
                   autostart ? json_string(autostart) : json_null(), "ttl_ms",
                   ttl_null ? json_null() : json_integer(ttl));
}

static json_t *policy_input(atr_api_req_t *r, json_t *w, const change_t *c) {
  json_t *in = json_object();
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(r->env->dom.store, &db, &err) == 0) {
    atr_policy_input_people(&db, r->actor.user_id,
                            atr_json_str(w, "organization_id"), in, &err);
    atr_db_close(&db);
  }
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

/* A deny answers 403 here; sets are applied to c. false when refused. */
static bool decide(atr_api_req_t *r, change_t *c, json_t **warnings) {
  json_t *input = policy_input(r, c->w, c);
  atr_decision_t d;
  int rc = atr_policy_hooks_eval("schedule", input, NULL, NULL, &d);
  json_decref(input);
  json_t *dj = rc == 0 && atr_policy_hooks_noteworthy(&d)
                   ? atr_decision_to_json(&d)
                   : NULL;
  bool ok = rc == 0 && !atr_decision_denied(&d);
  if (rc != 0) {
    atr_api_fail(r, rc, "the policies could not be evaluated");
  } else if (!ok) {
    atr_api_json(r, 403, atr_api_policy_denied(&d));
  } else {
    const char *a = atr_decision_get_set(&d, "autostart");
    const char *t = atr_decision_get_set(&d, "ttl_ms");
    if (a) {
      free(c->owned);
      c->owned = *a ? strdup(a) : NULL;
      c->autostart = c->owned;
    }
    if (t) {
      c->ttl_null = !*t;
      c->ttl = strtoll(t, NULL, 10);
    }
    *warnings = json_incref(json_object_get(dj, "warnings"));
  }
  atr_api_policy_audit(r, dj, atr_json_str(c->w, "id"),
                       atr_json_str(c->w, "name"),
                       atr_json_str(c->w, "organization_id"), ok ? 200 : 403);
  json_decref(dj);
  atr_decision_clear(&d);
  return ok;
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

/* Decide, re-check what a policy set, store, answer. */
static int change(atr_api_req_t *r, change_t *c) {
  json_t *warnings = NULL;
  if (!decide(r, c, &warnings)) {
    free(c->owned);
    return 0;
  }
  const char *bad = c->autostart ? cron_problem(c->autostart) : NULL;
  if (!bad && !c->ttl_null && (c->ttl < MIN_TTL_MS || c->ttl > MAX_TTL_MS))
    bad = "ttl_ms must be between one minute and 30 days.";
  char *err = NULL;
  if (bad) {
    atr_api_error(r, 403, "A policy set a schedule that is not valid.", bad);
  } else {
    int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, store, c, &err);
    if (rc != 0)
      atr_api_fail(r, rc, err);
    else
      atr_api_json(
          r, 200,
          json_pack("{s:o, s:o, s:o}", "autostart",
                    c->autostart ? json_string(c->autostart) : json_null(),
                    "ttl_ms", c->ttl_null ? json_null() : json_integer(c->ttl),
                    "warnings", warnings ? warnings : json_array()));
    warnings = NULL;
  }
  free(c->owned);
  c->owned = NULL;
  json_decref(warnings);
  free(err);
  return 0;
}

static void keep_ttl(change_t *c) {
  json_t *t = json_object_get(c->w, "ttl_ms");
  c->ttl_null = !json_is_integer(t);
  c->ttl = json_integer_value(t);
}

int atr_api_workspace_autostart(atr_api_req_t *r) {
  json_t *w = atr__api_workspace_for(r, ATR_ACT_UPDATE);
  json_t *body = w ? atr_api_body(r) : NULL;
  if (!body) {
    json_decref(w);
    return 0;
  }
  json_t *v = json_array();
  change_t c = {.w = w};
  c.autostart = atr_api_opt_string(body, "schedule", v);
  if (c.autostart && !*c.autostart)
    c.autostart = NULL; /* "" turns autostart off */
  const char *bad = c.autostart ? cron_problem(c.autostart) : NULL;
  if (bad)
    atr_api_add_validation(v, "schedule", bad);
  keep_ttl(&c);
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid schedule.", v);
    v = NULL;
  } else {
    change(r, &c);
  }
  json_decref(v);
  json_decref(body);
  json_decref(w);
  return 0;
}

int atr_api_workspace_ttl(atr_api_req_t *r) {
  json_t *w = atr__api_workspace_for(r, ATR_ACT_UPDATE);
  json_t *body = w ? atr_api_body(r) : NULL;
  if (!body) {
    json_decref(w);
    return 0;
  }
  json_t *v = json_array();
  change_t c = {
      .w = w,
      .autostart = json_string_value(json_object_get(w, "autostart_schedule"))};
  json_t *t = json_object_get(body, "ttl_ms");
  c.ttl_null = !t || json_is_null(t);
  if (!c.ttl_null &&
      (!json_is_integer(t) || json_integer_value(t) < MIN_TTL_MS ||
       json_integer_value(t) > MAX_TTL_MS))
    atr_api_add_validation(v, "ttl_ms",
                           "Milliseconds from one minute to 30 days, or null "
                           "for the template's default.");
  c.ttl = json_integer_value(t);
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid autostop.", v);
    v = NULL;
  } else {
    change(r, &c);
  }
  json_decref(v);
  json_decref(body);
  json_decref(w);
  return 0;
}
