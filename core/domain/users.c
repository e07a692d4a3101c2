/* core/domain/users.c — reading users and making new ones (see users.h). */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "rows.h"
#include "session.h"
#include "users_internal.h"

static bool valid_email(const char *s) {
  const char *at = s ? strchr(s, '@') : NULL;
  return at && at != s && strchr(at + 1, '.') && !strchr(at + 1, '@') &&
         strlen(s) <= 254;
}

bool atr__user_new_check(const atr_auth_ops_t *ops, void *ctx,
                         const char *email, const char *username,
                         const char *password, atr_fault_t *fault) {
  if (!valid_email(email))
    atr_fault_field(fault, "email", "Must be a valid email address.");
  if (!atr__username_valid(username))
    atr_fault_field(fault, "username",
                    "Must be 1 to 32 letters, digits or single hyphens, "
                    "not starting or ending with a hyphen, and not one of "
                    "first, login, logout, authmethods or me.");
  char *why = NULL;
  if (!password || !*password)
    atr_fault_field(fault, "password", "Required.");
  else if (ops->check_secret_policy &&
           ops->check_secret_policy(ctx, password, strlen(password), username,
                                    email, &why) != 0)
    atr_fault_field(fault, "password", "%s", why ? why : "Not accepted.");
  free(why);
  if (!atr_fault_has_fields(fault))
    return true;
  atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  return false;
}

/* ---- reading ----------------------------------------------------------------- */

int atr_user_get(const atr_domain_t *dom, const atr_actor_t *actor,
                 const char *who, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char *err = NULL;
  atr__user_ref_t t;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0) {
    rc = atr__user_find(&db, actor, who, &t, &err);
    if (rc == ATR_ENOENT)
      atr_fault_set(fault, rc, "User not found.", "%s", who);
  }
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_USER, ATR_ACT_READ,
                      strcmp(t.id, actor->user_id) == 0, fault);
  if (rc == 0)
    rc = atr__user_json(&db, t.id, out, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "User not found.", "%s", who);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* A LIKE pattern matching text anywhere, with the text's own '%', '_' and
 * '!' escaped ('!' is the ESCAPE character), so "q=_" finds underscores
 * rather than everyone. Longer searches are cut; they match fewer. */
static void like_contains(const char *text, char *out, size_t size) {
  size_t o = 0;
  out[o++] = '%';
  for (const char *t = text; *t && o + 3 < size; t++) {
    if (*t == '%' || *t == '_' || *t == '!')
      out[o++] = '!';
    out[o++] = *t;
  }
  out[o++] = '%';
  out[o] = '\0';
}

/* The ids of one page of users matching like. */
static int page_ids(atr_db_t *db, const atr_value_t *p, json_t *ids,
                    char **err) {
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id FROM users WHERE deleted = FALSE AND "
                        "(lower(username) LIKE lower(?) ESCAPE '!' OR "
                        "lower(email) LIKE lower(?) ESCAPE '!') ORDER BY "
                        "lower(username) LIMIT ? OFFSET ?",
                        p, 4, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_array_append_new(ids, json_string(atr_row_text(db, rows, 0)));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_user_list(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *search, int64_t limit, int64_t offset,
                  json_t **out, atr_fault_t *fault) {
  *out = NULL;
  char like[280];
  like_contains(search ? search : "", like, sizeof like);
  atr_value_t p[] = {atr_v_text(like), atr_v_text(like), atr_v_int(limit),
                     atr_v_int(offset)};
  atr_db_t db;
  char *err = NULL;
  int64_t count = 0;
  json_t *ids = json_array(), *users = json_array();
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_USER, ATR_ACT_READ, false,
                      fault);
  if (rc == 0 && (rc = atr_db_query_int(&db,
                                        "SELECT COUNT(*) FROM users WHERE "
                                        "deleted = FALSE AND (lower(username) "
                                        "LIKE lower(?) ESCAPE '!' OR "
                                        "lower(email) LIKE lower(?) "
                                        "ESCAPE '!')",
                                        p, 2, &count, &err)) == 0)
    rc = page_ids(&db, p, ids, &err);
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id) {
    json_t *user = NULL;
    char *skip = NULL; /* a user deleted meanwhile is left out */
    if (atr__user_json(&db, json_string_value(id), &user, &skip) == 0)
      json_array_append_new(users, user);
    free(skip);
  }
  atr_db_close(&db);
  json_decref(ids);
  if (rc == 0)
    *out = json_pack("{s:o, s:I}", "users", users, "count", (json_int_t)count);
  else
    json_decref(users);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

int atr_user_roles_get(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *who, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char *err = NULL;
  atr__user_ref_t t;
  uint32_t roles = 0;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__user_target(&db, actor, who, &t, fault);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_ROLE_ASSIGNMENT, ATR_ACT_READ,
                      strcmp(t.id, actor->user_id) == 0, fault);
  if (rc == 0 && (rc = atr_user_roles(&db, t.id, &roles, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  if (rc == 0)
    *out = json_pack("{s:o}", "roles", atr__role_names(roles));
  free(err);
  return rc;
}

/* ---- creating --------------------------------------------------------------- */

typedef struct new_user {
  const char *email, *username, *name, *hash, *org_id;
  char id[37];
} new_user_t;

static int insert_user(atr_db_t *db, void *ud, char **err) {
  new_user_t *u = ud;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(u->id),
                     atr_v_text(u->email),
                     atr_v_text(u->username),
                     atr_v_text(u->name),
                     atr_v_blob(u->hash, strlen(u->hash)),
                     atr_v_time(now),
                     atr_v_time(now)};
  int rc = atr_db_exec(db,
                       "INSERT INTO users (id, email, username, name, "
                       "hashed_password, created_at, updated_at, status, "
                       "login_type) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', "
                       "'password')",
                       p, 7, NULL, err);
  if (rc != 0 || !u->org_id)
    return rc;
  atr_value_t m[] = {atr_v_text(u->id), atr_v_text(u->org_id), atr_v_time(now),
                     atr_v_time(now)};
  return atr_db_exec(db,
                     "INSERT INTO organization_members (user_id, "
                     "organization_id, created_at, updated_at) VALUES (?, ?, "
                     "?, ?)",
                     m, 4, NULL, err);
}

/* The organization a new user joins: the one named, else the default. */
static int member_org(atr_db_t *db, const char *wanted, char out[37],
                      char **err) {
  char *id = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(wanted), atr_v_text(wanted)};
  int rc = wanted ? atr_db_query_text(db,
                                      "SELECT id FROM organizations WHERE "
                                      "deleted = FALSE AND (id = ? OR "
                                      "lower(name) = lower(?))",
                                      p, 2, &id, err)
                  : atr_db_query_text(db,
                                      "SELECT id FROM organizations WHERE "
                                      "is_default = TRUE AND deleted = FALSE",
                                      NULL, 0, &id, err);
  if (rc == 0)
    snprintf(out, 37, "%s", id);
  free(id);
  return rc;
}

/* Permission, then the fields, then the organization to join (org_id ""
 * when there is none to join). */
static int check_create(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr_user_new_t *in, const atr_auth_ops_t *ops,
                        void *ctx, char org_id[37], atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_USER, ATR_ACT_CREATE, false,
                      fault);
  if (rc == 0 && !atr__user_new_check(ops, ctx, in->email, in->username,
                                      in->password, fault))
    rc = ATR_EINVAL;
  /* Only a named organization that is not there refuses; without a
   * default one, or when it cannot be read, the user joins none. */
  if (rc == 0 &&
      member_org(&db, in->organization, org_id, &err) == ATR_ENOENT &&
      in->organization) {
    atr_fault_field(fault, "organization_id", "No such organization.");
    rc = atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  }
  atr_db_close(&db);
  free(err);
  return rc;
}

int atr_user_create(const atr_domain_t *dom, const atr_actor_t *actor,
                    const atr_user_new_t *in, json_t **out,
                    atr_fault_t *fault) {
  *out = NULL;
  void *ctx = NULL;
  const atr_auth_ops_t *ops = atr__password_auth(dom, &ctx);
  char org[37] = "", *err = NULL, *hash = NULL;
  if (!ops)
    return atr_auth_password_require(dom, fault);
  int rc = check_create(dom, actor, in, ops, ctx, org, fault);
  if (rc != 0)
    return rc;
  new_user_t u = {.email = in->email,
                  .username = in->username,
                  .name = in->name ? in->name : "",
                  .org_id = org[0] ? org : NULL};
  atr_db_new_uuid(u.id);
  rc = ops->hash_secret(ctx, in->password, strlen(in->password), &hash, &err);
  u.hash = hash;
  if (rc == 0)
    rc = atr_db_tx(dom->store, ATR_TX_WRITE, insert_user, &u, &err);
  bool made = rc == 0;
  atr_db_t db;
  if (rc == 0 && (rc = atr_db_open(dom->store, &db, &err)) == 0) {
    rc = atr__user_json(&db, u.id, out, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ECONSTRAINT && !made)
    atr_fault_set(fault, rc,
                  "A user with this username or email already exists.", "%s",
                  u.username);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){
                       .action = "create",
                       .resource_type = "user",
                       .resource_id = made ? u.id : NULL,
                       .resource_target = u.username,
                       .status_code = rc == 0 ? 201 : atr_fault_status(fault)});
  atr__secret_free(hash);
  free(err);
  return rc;
}
