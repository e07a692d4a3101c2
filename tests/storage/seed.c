/* tests/storage/seed.c — see seed.h. */
#include "seed.h"

#include <stdio.h>

const char atr_seed_org_id[] = "00000000-0000-4000-8000-000000000001";
const char atr_seed_user_id[] = "00000000-0000-4000-8000-000000000002";
const char atr_seed_file_id[] = "00000000-0000-4000-8000-000000000003";

void atr_seed_daemon_id(int i, char out[37]) {
  snprintf(out, 37, "00000000-0000-4000-8000-1%011d", i);
}

void atr_seed_job_id(int i, char out[37]) {
  snprintf(out, 37, "00000000-0000-4000-9000-%012d", i);
}

static int exec1(atr_store_t *store, const char *sql, const atr_value_t *p,
                 size_t n, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  rc = atr_db_exec(&db, sql, p, n, NULL, err);
  atr_db_close(&db);
  return rc;
}

int atr_seed_owners(atr_store_t *store, char **err) {
  int64_t now = atr_db_now_us();
  atr_value_t org[] = {atr_v_text(atr_seed_org_id), atr_v_time(now),
                       atr_v_time(now)};
  int rc = exec1(store,
                 "INSERT INTO organizations (id, name, display_name, "
                 "description, icon, created_at, updated_at, is_default) "
                 "VALUES (?, 'suite', 'Suite', '', '', ?, ?, TRUE)",
                 org, 3, err);
  if (rc != 0)
    return rc;
  atr_value_t user[] = {atr_v_text(atr_seed_user_id), atr_v_time(now),
                        atr_v_time(now)};
  rc = exec1(store,
             "INSERT INTO users (id, email, username, name, hashed_password, "
             "created_at, updated_at, status, login_type) VALUES (?, "
             "'suite@example.com', 'suite', 'Suite', ?, ?, ?, 'active', "
             "'password')",
             (atr_value_t[]){user[0], atr_v_blob("x", 1), user[1], user[2]}, 4,
             err);
  if (rc != 0)
    return rc;
  atr_value_t file[] = {atr_v_text(atr_seed_file_id), atr_v_time(now),
                        atr_v_text(atr_seed_user_id), atr_v_blob("tar", 3)};
  return exec1(store,
               "INSERT INTO files (id, hash, created_at, created_by, "
               "mimetype, data) VALUES (?, 'seed', ?, ?, 'application/x-tar', "
               "?)",
               file, 4, err);
}

int atr_seed_daemon(atr_store_t *store, int i, const char *tag_key,
                    const char *tag_value, char **err) {
  char id[37], name[32];
  atr_seed_daemon_id(i, id);
  snprintf(name, sizeof name, "daemon-%d", i);
  atr_value_t p[] = {atr_v_text(id), atr_v_time(atr_db_now_us()),
                     atr_v_text(name), atr_v_text(atr_seed_org_id)};
  int rc = exec1(store,
                 "INSERT INTO provisioner_daemons (id, created_at, name, "
                 "provisioners, organization_id) VALUES (?, ?, ?, '[]', ?)",
                 p, 4, err);
  if (rc != 0 || !tag_key)
    return rc;
  atr_value_t t[] = {atr_v_text(id), atr_v_text(tag_key),
                     atr_v_text(tag_value)};
  return exec1(store,
               "INSERT INTO provisioner_daemon_tags (daemon_id, key, value) "
               "VALUES (?, ?, ?)",
               t, 3, err);
}

typedef struct range {
  int first, count;
} range_t;

static int insert_jobs(atr_db_t *db, void *ud, char **err) {
  const range_t *r = ud;
  int64_t base = atr_db_now_us();
  for (int i = r->first; i < r->first + r->count; i++) {
    char id[37];
    atr_seed_job_id(i, id);
    atr_value_t p[] = {atr_v_text(id),
                       atr_v_time(base + i),
                       atr_v_time(base + i),
                       atr_v_text(atr_seed_org_id),
                       atr_v_text(atr_seed_user_id),
                       atr_v_text(atr_seed_file_id)};
    int rc = atr_db_exec(db,
                         "INSERT INTO provisioner_jobs (id, created_at, "
                         "updated_at, organization_id, initiator_id, "
                         "provisioner, storage_method, type, input, file_id) "
                         "VALUES (?, ?, ?, ?, ?, 'echo', 'file', "
                         "'workspace_build', '{}', ?)",
                         p, 6, NULL, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int atr_seed_jobs(atr_store_t *store, int first, int count, char **err) {
  range_t r = {first, count};
  return atr_db_tx(store, ATR_TX_WRITE, insert_jobs, &r, err);
}
