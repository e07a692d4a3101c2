/* core/domain/login.c — the first user, signing in and signing out (see
 * users.h). A wrong email costs as much time as a wrong password, and a
 * refusal never says which of the two was wrong. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "session.h"
#include "users.h"
#include "users_internal.h"

bool atr_auth_password_enabled(const atr_domain_t *dom) {
  void *ctx = NULL;
  return atr__password_auth(dom, &ctx) != NULL;
}

int atr_auth_password_require(const atr_domain_t *dom, atr_fault_t *fault) {
  if (atr_auth_password_enabled(dom))
    return 0;
  return atr_fault_set(fault, ATR_ENOTSUP, "Password sign-in is not enabled.",
                       "Enable the auth_password plugin.");
}

/* ---- the first user ------------------------------------------------------ */

int atr_user_first_exists(const atr_domain_t *dom, const atr_actor_t *actor,
                          bool *exists, atr_fault_t *fault) {
  (void)actor; /* anyone may ask, before anyone can sign in */
  atr_db_t db;
  char *err = NULL;
  int64_t n = 0;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0)
    rc = atr_db_query_int(&db, "SELECT COUNT(*) FROM users", NULL, 0, &n, &err);
  atr_db_close(&db);
  *exists = n > 0;
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

typedef struct first_user {
  const char *email, *username, *name, *org_name, *hash;
  char user_id[37], org_id[37];
  bool exists;
} first_user_t;

static int insert_first(atr_db_t *db, void *ud, char **err) {
  first_user_t *f = ud;
  int64_t n = 0, now = atr_db_now_us();
  int rc = atr_db_query_int(db, "SELECT COUNT(*) FROM users", NULL, 0, &n, err);
  if (rc != 0 || (f->exists = n > 0))
    return rc;
  atr_value_t u[] = {atr_v_text(f->user_id),
                     atr_v_text(f->email),
                     atr_v_text(f->username),
                     atr_v_text(f->name),
                     atr_v_blob(f->hash, strlen(f->hash)),
                     atr_v_time(now),
                     atr_v_time(now)};
  atr_value_t o[] = {atr_v_text(f->org_id), atr_v_text(f->org_name),
                     atr_v_text(f->org_name), atr_v_time(now), atr_v_time(now)};
  atr_value_t m[] = {atr_v_text(f->user_id), atr_v_text(f->org_id),
                     atr_v_time(now), atr_v_time(now)};
  atr_value_t ro[] = {atr_v_text(f->user_id)};
  atr_value_t om[] = {atr_v_text(f->user_id), atr_v_text(f->org_id)};
  static const char *const sql[] = {
      "INSERT INTO users (id, email, username, name, hashed_password, "
      "created_at, updated_at, status, login_type) VALUES (?, ?, ?, ?, ?, "
      "?, ?, 'active', 'password')",
      "INSERT INTO organizations (id, name, display_name, created_at, "
      "updated_at, is_default) VALUES (?, ?, ?, ?, ?, TRUE)",
      "INSERT INTO organization_members (user_id, organization_id, "
      "created_at, updated_at) VALUES (?, ?, ?, ?)",
      "INSERT INTO user_roles (user_id, role) VALUES (?, 'owner')",
      "INSERT INTO organization_member_roles (user_id, organization_id, "
      "role) VALUES (?, ?, 'organization-admin')"};
  const atr_value_t *params[] = {u, o, m, ro, om};
  size_t counts[] = {7, 5, 4, 1, 2};
  for (size_t i = 0; rc == 0 && i < 5; i++)
    rc = atr_db_exec(db, sql[i], params[i], counts[i], NULL, err);
  return rc;
}

int atr_user_first_create(const atr_domain_t *dom, const atr_actor_t *actor,
                          const atr_user_new_t *in, char user_id[37],
                          char org_id[37], atr_fault_t *fault) {
  (void)actor; /* allowed to anyone while there is no user */
  void *ctx = NULL;
  const atr_auth_ops_t *ops = atr__password_auth(dom, &ctx);
  if (!ops)
    return atr_auth_password_require(dom, fault);
  if (!atr__user_new_check(ops, ctx, in->email, in->username, in->password,
                           fault))
    return ATR_EINVAL;
  first_user_t f = {.email = in->email,
                    .username = in->username,
                    .name = in->name ? in->name : "",
                    .org_name =
                        in->organization ? in->organization : "default"};
  char *hash = NULL, *err = NULL;
  int rc =
      ops->hash_secret(ctx, in->password, strlen(in->password), &hash, &err);
  f.hash = hash;
  atr_db_new_uuid(f.user_id);
  atr_db_new_uuid(f.org_id);
  if (rc == 0)
    rc = atr_db_tx(dom->store, ATR_TX_SERIALIZABLE, insert_first, &f, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else if (f.exists)
    rc = atr_fault_set(fault, ATR_EEXIST,
                       "The initial user has already been created.", "%s", "");
  if (rc == 0) {
    memcpy(user_id, f.user_id, 37);
    memcpy(org_id, f.org_id, 37);
  }
  atr__secret_free(hash);
  free(err);
  return rc;
}

/* ---- signing in ------------------------------------------------------------ */

typedef struct login_row {
  char user_id[37];
  char *hash;
  bool active;
} login_row_t;

static int find_login(atr_store_t *store, const char *email, login_row_t *out,
                      char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(email)};
  atr_db_rows_t *rows = NULL;
  rc = atr_db_query(&db,
                    "SELECT id, hashed_password, status FROM users WHERE "
                    "lower(email) = lower(?) AND deleted = FALSE",
                    p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    size_t len = 0;
    const char *h = atr_db_get_blob(&db, rows, 1, &len);
    snprintf(out->user_id, sizeof out->user_id, "%s",
             atr_db_get_text(&db, rows, 0));
    out->hash = h ? strndup(h, len) : NULL;
    const char *status = atr_db_get_text(&db, rows, 2);
    out->active = status && strcmp(status, "active") == 0;
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc;
}

/* A hash to verify against when the user does not exist, so that a wrong
 * email costs as much time as a wrong password. Made once, by the plugin
 * itself, so its parameters match real hashes. */
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char *dummy; /* guarded by dummy_lock until set, then read-only */

static const char *dummy_hash(const atr_auth_ops_t *ops, void *ctx) {
  pthread_mutex_lock(&dummy_lock);
  if (!dummy) {
    char *err = NULL;
    static const char input[] = "atrium-dummy-password-for-timing";
    if (ops->hash_secret(ctx, input, sizeof input - 1, &dummy, &err) != 0)
      dummy = NULL;
    free(err);
  }
  pthread_mutex_unlock(&dummy_lock);
  return dummy;
}

static bool password_matches(const atr_auth_ops_t *ops, void *ctx,
                             const char *password, const char *hash) {
  char *err = NULL;
  bool ok = hash && ops->verify_secret(ctx, password, strlen(password), hash,
                                       NULL, &err) == 0;
  free(err);
  return ok;
}

int atr_user_login(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *email, const char *password, char **key,
                   atr_fault_t *fault) {
  *key = NULL;
  void *ctx = NULL;
  const atr_auth_ops_t *ops = atr__password_auth(dom, &ctx);
  if (!ops)
    return atr_auth_password_require(dom, fault);
  login_row_t u = {0};
  char *err = NULL;
  int rc = find_login(dom->store, email, &u, &err);
  if (rc != 0 && rc != ATR_ENOENT) {
    atr_fault_internal(fault, rc, err);
    free(err);
    return rc;
  }
  bool known = rc == 0;
  const char *hash = known && u.hash ? u.hash : dummy_hash(ops, ctx);
  bool ok = password_matches(ops, ctx, password, hash);
  if (!ok || !known || !u.active)
    rc = atr_fault_set(fault, ATR_EACCES, "Incorrect email or password.", "%s",
                       "");
  else if ((rc = atr_session_create(dom->store, u.user_id, "",
                                    dom->session_lifetime_ms,
                                    actor ? actor->ip : NULL, key, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = rc == 0 ? "login" : "login_failed",
                           .resource_type = "user",
                           .resource_id = known ? u.user_id : NULL,
                           .resource_target = email,
                           .user_id = known ? u.user_id : NULL,
                           .status_code = rc == 0 ? 201
                                          : rc == ATR_EACCES
                                              ? 401
                                              : atr_fault_status(fault)});
  free(u.hash);
  free(err);
  return rc;
}

int atr_user_logout(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr_fault_t *fault) {
  if (!atr_actor_is_user(actor) || !actor->key_id[0])
    return atr_fault_set(fault, ATR_EPERM, "Forbidden.",
                         "Only a signed-in user can sign out.");
  char *err = NULL;
  int rc = atr_session_delete(dom->store, actor->key_id, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = "logout",
                           .resource_type = "user",
                           .resource_id = actor->user_id,
                           .resource_target = actor->username,
                           .status_code = atr_fault_status(fault)});
  free(err);
  return rc;
}
