/* Getting into a workspace through the domain, without HTTP
 * (core/domain/connect*.c): the workspace's owner and site owners may open
 * a tunnel, anyone else is refused and the refusal audited; an unknown
 * agent is 404; a workspace that is not running or an agent that is not
 * connected is 409 with a message naming the workspace and the status;
 * the opening and the end are audited with one connection id; each
 * workspace's SSH host key is made once, stays the same across manifests
 * and rebuilds, differs between workspaces, is sealed when the
 * deployment has an encryption key, and never reaches the audit log.
 *
 *   test_connect_domain                 a fresh SQLite file in a temp dir
 *   test_connect_domain postgres PGDIR  the throwaway cluster of PGDIR/dsn
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libssh/libssh.h>

#include "agents.h"
#include "atrium/error.h"
#include "connect.h"
#include "dbcrypt.h"
#include "domain_fixture.h"
#include "workspaces.h"

#define SPEC                                                                   \
  "{\"name\":\"main\",\"arch\":\"amd64\",\"directory\":\"\",\"env\":{},"       \
  "\"connection_timeout_s\":120,\"startup_script\":\"\","                      \
  "\"startup_script_behavior\":\"non-blocking\","                              \
  "\"startup_script_timeout_s\":300,\"shutdown_script\":\"\","                 \
  "\"shutdown_script_timeout_s\":300,\"motd_file\":\"\","                      \
  "\"troubleshooting_url\":\"\",\"metadata\":[],\"apps\":[]}"
#define KEY_A "OBoKCKTkI7bhOWytuyvKdclZHDOsSNJjbzUT583a83M="
#define PEM_HEAD "-----BEGIN OPENSSH PRIVATE KEY-----\n"

static char org_id[37], alice_id[37], bob_id[37], carol_id[37], tad_id[37],
    version_id[37], template_id[37], workspace_id[37], other_ws[37];
/* An agent of an earlier build of dev1 (the_host_key_... makes it so). */
static char earlier_agent[37];
/* The live agent's token, per workspace. */
static char token[ATR_AGENT_TOKEN_LEN + 1],
    other_token[ATR_AGENT_TOKEN_LEN + 1];

/* ---- set-up ------------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  if (fixture_open("connect", NULL) != 0)
    return -1;
  add_org(org_id, "default", true);
  add_user(alice_id, "alice", 0);
  add_member(alice_id, org_id, 0);
  add_user(bob_id, "bob", 0);
  add_member(bob_id, org_id, 0);
  add_user(carol_id, "carol", ATR_ROLE_OWNER);
  /* reads every workspace, may get into none but her own */
  add_user(tad_id, "tad", ATR_ROLE_TEMPLATE_ADMIN);
  add_member(tad_id, org_id, ATR_ROLE_ORG_ADMIN);
  char file_id[37];
  add_file(file_id, alice_id);
  add_template(template_id, version_id, org_id, file_id, alice_id);
  atr_value_t p[] = {atr_v_text(SPEC), atr_v_text(version_id)};
  exec_ok("UPDATE template_versions SET agent_spec = ? WHERE id = ?", p, 2);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* ---- helpers --------------------------------------------------------------- */

typedef struct made {
  const char *ws, *build_id, *job_id;
  char digest[37];
} made_t;

static int make_tx(atr_db_t *db, void *ud, char **err) {
  made_t *m = ud;
  char res[37];
  atr_db_new_uuid(res);
  atr_value_t p[] = {atr_v_text(res), atr_v_time(atr_db_now_us()),
                     atr_v_text(m->job_id)};
  int rc = atr_db_exec(db,
                       "INSERT INTO workspace_resources (id, created_at, "
                       "job_id, transition, type, name) VALUES (?, ?, ?, "
                       "'start', 'echo_instance', 'dev')",
                       p, 3, NULL, err);
  if (rc == 0)
    rc = atr_agents_make_for_build(db, m->ws, m->build_id, res, SPEC, m->digest,
                                   err);
  return rc;
}

/* The build b of workspace ws ends with an agent whose token goes into
 * tok. */
static void agent_for(const char *ws, json_t *b, char *tok) {
  made_t m = {.ws = ws,
              .build_id = str(b, "id"),
              .job_id = str(json_object_get(b, "job"), "id")};
  atr_agent_token_new(tok);
  atr_dbcrypt_token_digest(tok, m.digest);
  char *err = NULL;
  must(atr_db_tx(&store, ATR_TX_WRITE, make_tx, &m, &err), &err);
  end_build_jobs();
}

/* A start build of alice's "dev1" (made by the first call), with an agent. */
static void start_build_with_agent(void) {
  json_t *b = add_build(workspace_id, template_id, "start");
  agent_for(workspace_id, b, token);
  json_decref(b);
}

static atr_actor_t agent_of(const char *tok) {
  atr_actor_t a;
  atr_fault_t fault = {0};
  if (atr_agent_authenticate(&dom, tok, &a, &fault) != 0)
    fail_msg("authenticate: %s", fault.message ? fault.message : "");
  return a;
}

static void agent_connects(const char *tok) {
  atr_actor_t a = agent_of(tok);
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_connected(&dom, &a, "v1", &fault), 0);
}

static int authorize(const atr_actor_t *who, const char *agent_id,
                     const char *kind, int port, atr_connect_t *c,
                     atr_fault_t *fault) {
  *c = (atr_connect_t){.port = port};
  snprintf(c->kind, sizeof c->kind, "%s", kind);
  if (strcmp(kind, "pty") == 0)
    snprintf(c->reconnect, sizeof c->reconnect,
             "6c0f8a3e-2b1d-4e5f-9a8b-7c6d5e4f3a2b");
  return atr_connect_authorize(&dom, who, agent_id, c, fault);
}

/* The fault's status and message, cleared. */
static void assert_refused(int rc, atr_fault_t *f, int status,
                           const char *message) {
  assert_int_not_equal(rc, 0);
  assert_int_equal(atr_fault_status(f), status);
  if (message)
    assert_string_equal(f->message, message);
  atr_fault_clear(f);
}

static json_t *manifest(const char *tok) {
  atr_actor_t a = agent_of(tok);
  atr_fault_t fault = {0};
  json_t *m = NULL;
  int rc = atr_agent_manifest(&dom, &a, &m, &fault);
  if (rc != 0)
    fail_msg("manifest: %s %s", fault.message ? fault.message : "",
             fault.detail ? fault.detail : "");
  return m;
}

/* The newest audit entry's column col (malloc'd). */
static char *last_entry(const char *col, const char *where) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT %s FROM audit_logs WHERE %s ORDER BY time DESC, id DESC "
           "LIMIT 1",
           col, where);
  atr_db_t db;
  char *err = NULL, *out = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_db_query_text(&db, sql, NULL, 0, &out, &err), &err);
  atr_db_close(&db);
  return out;
}

static json_t *last_extra(const char *where) {
  char *text = last_entry("additional_fields", where);
  json_t *j = json_loads(text, 0, NULL);
  free(text);
  assert_non_null(j);
  return j;
}

/* 40 base64 characters of the key's private seed (bytes 161–192 of
 * OpenSSH's format: what no log or answer may show), into out. */
static void secret_part(const char *pem, char out[41]) {
  char b64[1024];
  size_t n = 0;
  for (const char *p = pem + strlen(PEM_HEAD);
       *p && *p != '-' && n + 1 < sizeof b64; p++)
    if (*p != '\n')
      b64[n++] = *p;
  assert_true(n >= 256);
  snprintf(out, 41, "%.40s", b64 + 216);
}

static int64_t num(const json_t *o, const char *key) {
  return (int64_t)json_integer_value(json_object_get(o, key));
}

/* ---- tests ----------------------------------------------------------------- */

static void an_unknown_agent_is_not_found(void **s) {
  (void)s;
  start_build_with_agent();
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_connect_t c;
  atr_fault_t f = {0};
  assert_refused(authorize(&alice, "0b7e3b5e-8f7c-4a3e-9d2c-5f0e1a2b3c4d",
                           "ssh", 0, &c, &f),
                 &f, 404, "Workspace agent not found.");
  assert_refused(authorize(&alice, "not-a-uuid", "ssh", 0, &c, &f), &f, 404,
                 "Workspace agent not found.");
  assert_refused(authorize(&alice, NULL, "ssh", 0, &c, &f), &f, 404, NULL);
}

static void a_bad_request_names_its_fields(void **s) {
  (void)s;
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_actor_t a = agent_of(token);
  atr_connect_t c;
  atr_fault_t f = {0};
  static const struct {
    const char *kind;
    int port;
    const char *field;
  } bad[] = {{"ftp", 0, "kind"},
             {"tcp", 0, "port"},
             {"tcp", 65536, "port"},
             {"ssh", 22, "port"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(
        authorize(&alice, a.agent_id, bad[i].kind, bad[i].port, &c, &f),
        ATR_EINVAL);
    assert_int_equal(atr_fault_status(&f), 400);
    json_t *v = json_array_get(f.validations, 0);
    assert_string_equal(str(v, "field"), bad[i].field);
    assert_int_equal(json_array_size(f.validations), 1);
    atr_fault_clear(&f);
  }
  c = (atr_connect_t){0};
  snprintf(c.kind, sizeof c.kind, "pty");
  snprintf(c.reconnect, sizeof c.reconnect, "not-a-uuid");
  assert_int_equal(atr_connect_authorize(&dom, &alice, a.agent_id, &c, &f),
                   ATR_EINVAL);
  assert_string_equal(str(json_array_get(f.validations, 0), "field"),
                      "reconnect");
  atr_fault_clear(&f);
}

static void an_agent_not_connected_is_a_clear_conflict(void **s) {
  (void)s;
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_actor_t a = agent_of(token);
  atr_connect_t c;
  atr_fault_t f = {0};
  int64_t before = count_rows("SELECT COUNT(*) FROM audit_logs");
  assert_refused(authorize(&alice, a.agent_id, "ssh", 0, &c, &f), &f, 409,
                 "The agent of workspace alice/dev1 is not connected "
                 "(status: connecting).");
  agent_connects(token);
  atr_fault_t g = {0};
  assert_int_equal(atr_agent_disconnected(&dom, &a, "closed", &g), 0);
  assert_refused(authorize(&alice, a.agent_id, "ssh", 0, &c, &f), &f, 409,
                 "The agent of workspace alice/dev1 is not connected "
                 "(status: disconnected).");
  /* refusals for the workspace's state leave no connect entry */
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action = "
                              "'connect' AND resource_type = 'workspace'"),
                   0);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), before + 2);
}

static void the_owner_connects_and_both_ends_are_audited(void **s) {
  (void)s;
  agent_connects(token);
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_actor_t a = agent_of(token);
  atr_connect_t c;
  atr_fault_t f = {0};
  assert_int_equal(authorize(&alice, a.agent_id, "tcp", 8080, &c, &f), 0);
  assert_string_equal(c.agent_id, a.agent_id);
  assert_string_equal(c.agent_name, "main");
  assert_string_equal(c.workspace_id, workspace_id);
  assert_string_equal(c.workspace_name, "dev1");
  assert_string_equal(c.owner_name, "alice");
  assert_string_equal(c.status, "connected");
  assert_string_equal(c.lifecycle, "created");
  assert_true(atr_uuid_valid(c.id));
  char where[200];
  snprintf(where, sizeof where,
           "action = 'connect' AND resource_type = 'workspace' AND "
           "CAST(resource_id AS TEXT) = '%s'",
           workspace_id);
  json_t *x = last_extra(where);
  assert_string_equal(str(x, "phase"), "open");
  assert_string_equal(str(x, "kind"), "tcp");
  assert_int_equal(num(x, "port"), 8080);
  assert_string_equal(str(x, "agent_id"), a.agent_id);
  assert_string_equal(str(x, "connection_id"), c.id);
  json_decref(x);
  char *user = last_entry("CAST(user_id AS TEXT)", where);
  assert_string_equal(user, alice_id);
  free(user);
  char *ip = last_entry("ip", where);
  assert_string_equal(ip, FIXTURE_IP);
  free(ip);

  /* the request is gone when the tunnel ends: c alone carries it */
  atr_connect_t later = c;
  memset(&c, 0xAB, sizeof c);
  atr_connect_end_t end = {.reason = "closed",
                           .opened = true,
                           .bytes_to_agent = 1234,
                           .bytes_from_agent = 567890,
                           .duration_ms = 4200};
  atr_connect_ended(&dom, &later, &end);
  x = last_extra(where);
  assert_string_equal(str(x, "phase"), "end");
  assert_string_equal(str(x, "connection_id"), later.id);
  assert_string_equal(str(x, "reason"), "closed");
  assert_int_equal(num(x, "bytes_to_agent"), 1234);
  assert_int_equal(num(x, "bytes_from_agent"), 567890);
  assert_int_equal(num(x, "duration_ms"), 4200);
  json_decref(x);
  char *status = last_entry("CAST(status_code AS TEXT)", where);
  assert_string_equal(status, "200");
  free(status);
  /* a tunnel that never began ends with 502 and the agent's reason */
  end = (atr_connect_end_t){.reason = "refused",
                            .error = "connection refused: 127.0.0.1:8080"};
  atr_connect_ended(&dom, &later, &end);
  x = last_extra(where);
  assert_string_equal(str(x, "error"), "connection refused: 127.0.0.1:8080");
  json_decref(x);
  status = last_entry("CAST(status_code AS TEXT)", where);
  assert_string_equal(status, "502");
  free(status);
  /* a terminal carries its reconnect id */
  assert_int_equal(authorize(&alice, a.agent_id, "pty", 0, &c, &f), 0);
  x = last_extra(where);
  assert_string_equal(str(x, "kind"), "pty");
  assert_string_equal(str(x, "reconnect"),
                      "6c0f8a3e-2b1d-4e5f-9a8b-7c6d5e4f3a2b");
  json_decref(x);
}

static void others_are_forbidden_and_audited_as_denied(void **s) {
  (void)s;
  atr_actor_t a = agent_of(token);
  atr_actor_t bob = actor(bob_id, "bob", 0);
  atr_actor_t tad = actor(tad_id, "tad", ATR_ROLE_TEMPLATE_ADMIN);
  atr_connect_t c;
  atr_fault_t f = {0};
  const char *detail = "Only the owner of workspace alice/dev1 and site "
                       "owners may connect to it.";
  int rc = authorize(&bob, a.agent_id, "ssh", 0, &c, &f);
  assert_string_equal(f.detail, detail);
  assert_refused(rc, &f, 403, "Forbidden.");
  char where[200];
  snprintf(where, sizeof where,
           "action = 'connect' AND status_code = 403 AND "
           "CAST(user_id AS TEXT) = '%s'",
           bob_id);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM audit_logs WHERE "
                                  "action = 'connect' AND status_code = 403 "
                                  "AND CAST(user_id AS TEXT) = ?",
                                  bob_id),
                   1);
  json_t *x = last_extra(where);
  assert_string_equal(str(x, "phase"), "open");
  assert_string_equal(str(x, "kind"), "ssh");
  json_decref(x);
  /* reading every workspace is not getting into it */
  assert_refused(authorize(&tad, a.agent_id, "tcp", 22, &c, &f), &f, 403,
                 "Forbidden.");
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action "
                              "= 'connect' AND status_code = 403"),
                   2);
  /* the agent itself, and the system, get in nowhere */
  assert_refused(authorize(&a, a.agent_id, "ssh", 0, &c, &f), &f, 403, NULL);
  atr_actor_t sys = atr_actor_system("scheduler");
  assert_refused(authorize(&sys, a.agent_id, "ssh", 0, &c, &f), &f, 403, NULL);
}

static void a_site_owner_connects_to_anyones_workspace(void **s) {
  (void)s;
  atr_actor_t a = agent_of(token);
  atr_actor_t carol = actor(carol_id, "carol", ATR_ROLE_OWNER);
  atr_connect_t c;
  atr_fault_t f = {0};
  assert_int_equal(authorize(&carol, a.agent_id, "ssh", 0, &c, &f), 0);
  assert_string_equal(c.owner_name, "alice");
  char where[200];
  snprintf(where, sizeof where,
           "action = 'connect' AND status_code = 200 AND "
           "CAST(user_id AS TEXT) = '%s'",
           carol_id);
  json_t *x = last_extra(where);
  assert_string_equal(str(x, "phase"), "open");
  json_decref(x);
}

static void the_host_key_is_the_workspaces_for_its_life(void **s) {
  (void)s;
  json_t *m1 = manifest(token), *m2 = manifest(token);
  const char *k1 = str(m1, "ssh_host_key");
  assert_memory_equal(k1, PEM_HEAD, strlen(PEM_HEAD));
  assert_string_equal(k1, str(m2, "ssh_host_key"));
  /* its public half and fingerprint, as OpenSSH writes them */
  atr_db_t db;
  char *err = NULL, pub[128], fp[64];
  must(atr_db_open(&store, &db, &err), &err);
  must(atr__connect_host_public(&db, workspace_id, pub, fp, &err), &err);
  atr_db_close(&db);
  assert_memory_equal(pub, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 37);
  assert_int_equal(strlen(pub), 12 + 68);
  assert_memory_equal(fp, "SHA256:", 7);
  assert_int_equal(strlen(fp), 7 + 43);
  /* what the agent's SSH server (libssh) loads: the same key, whose
   * public half it can send in the key exchange */
  ssh_key key = NULL;
  assert_int_equal(ssh_pki_import_privkey_base64(k1, NULL, NULL, NULL, &key),
                   SSH_OK);
  assert_int_equal(ssh_key_type(key), SSH_KEYTYPE_ED25519);
  char *b64 = NULL;
  assert_int_equal(ssh_pki_export_pubkey_base64(key, &b64), SSH_OK);
  assert_string_equal(pub + 12, b64);
  unsigned char *hash = NULL;
  size_t hlen = 0;
  assert_int_equal(
      ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen),
      SSH_OK);
  char *lfp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
  assert_string_equal(lfp, fp);
  ssh_string_free_char(lfp);
  ssh_clean_pubkey_hash(&hash);
  ssh_string_free_char(b64);
  ssh_key_free(key);
  /* and OpenSSH itself */
  char file[512], cmd[600], line[256] = "";
  snprintf(file, sizeof file, "%s/host_key", tmpdir);
  FILE *kf = fopen(file, "w");
  assert_non_null(kf);
  assert_int_equal(chmod(file, 0600), 0);
  fputs(k1, kf);
  fclose(kf);
  snprintf(cmd, sizeof cmd, "ssh-keygen -y -f '%s' 2>&1", file);
  FILE *out = popen(cmd, "r");
  assert_non_null(out);
  if (!fgets(line, sizeof line, out))
    line[0] = '\0';
  assert_int_equal(pclose(out), 0);
  line[strcspn(line, "\n")] = '\0';
  assert_string_equal(line, pub);
  assert_int_equal(unlink(file), 0);
  /* users read them on the agent, for known_hosts */
  atr_actor_t alice = actor(alice_id, "alice", 0);
  json_t *ag = NULL;
  atr_fault_t g = {0};
  assert_int_equal(
      atr_agent_get(&dom, &alice, agent_of(token).agent_id, &ag, &g), 0);
  assert_string_equal(str(ag, "ssh_host_public_key"), pub);
  assert_string_equal(str(ag, "ssh_host_key_fingerprint"), fp);
  json_decref(ag);
  /* a rebuild: a new agent, the same key */
  snprintf(earlier_agent, sizeof earlier_agent, "%s", agent_of(token).agent_id);
  json_t *b = add_build(workspace_id, template_id, "stop");
  json_decref(b);
  end_build_jobs();
  start_build_with_agent();
  json_t *m3 = manifest(token);
  assert_string_equal(k1, str(m3, "ssh_host_key"));
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys"), 1);
  /* another workspace: another key */
  atr_actor_t sched = atr_actor_system("scheduler");
  atr_workspace_new_t in = {
      .owner = "alice", .name = "dev2", .template_id = template_id};
  json_t *w = NULL;
  atr_fault_t f = {0};
  assert_int_equal(atr_workspace_create(&dom, &sched, &in, &w, &f), 0);
  snprintf(other_ws, sizeof other_ws, "%s", str(w, "id"));
  agent_for(other_ws, json_object_get(w, "latest_build"), other_token);
  json_decref(w);
  json_t *m4 = manifest(other_token);
  assert_memory_equal(str(m4, "ssh_host_key"), PEM_HEAD, strlen(PEM_HEAD));
  assert_string_not_equal(k1, str(m4, "ssh_host_key"));
  /* never in the audit log, whatever was recorded meanwhile */
  char body[41], body4[41];
  secret_part(k1, body);
  secret_part(str(m4, "ssh_host_key"), body4);
  assert_string_not_equal(body, body4); /* the seed's, not the format's */
  char like[64];
  snprintf(like, sizeof like, "%%%s%%", body);
  assert_true(count_rows("SELECT COUNT(*) FROM audit_logs") > 0);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM audit_logs WHERE "
                                  "additional_fields LIKE ?",
                                  like) +
                       count_rows_for("SELECT COUNT(*) FROM audit_logs WHERE "
                                      "diff LIKE ?",
                                      like) +
                       count_rows("SELECT COUNT(*) FROM audit_logs WHERE "
                                  "additional_fields LIKE '%PRIVATE KEY%' OR "
                                  "diff LIKE '%PRIVATE KEY%'"),
                   0);
  json_decref(m1);
  json_decref(m2);
  json_decref(m3);
  json_decref(m4);
}

static void a_host_key_is_sealed_with_the_encryption_key(void **s) {
  (void)s;
  const char *keys[] = {KEY_A};
  atr_dbcrypt_t *cipher = NULL;
  char *err = NULL;
  must(atr_dbcrypt_new(keys, 1, &cipher, &err), &err);
  store.crypt = cipher;
  exec_ok("DELETE FROM workspace_ssh_keys", NULL, 0);
  json_t *m = manifest(other_token);
  const char *pem = str(m, "ssh_host_key");
  assert_memory_equal(pem, PEM_HEAD, strlen(PEM_HEAD));
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys WHERE "
                              "private_key LIKE 'dbcrypt-%' AND "
                              "private_key_key_id IS NOT NULL"),
                   1);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys WHERE "
                              "private_key LIKE '%PRIVATE KEY%'"),
                   0);
  /* `atrium db encrypt decrypt` knows the column: back in clear, the
   * same key */
  atr_dbcrypt_counts_t counts;
  must(atr_dbcrypt_run(&store, ATR_DBCRYPT_DECRYPT, 10, &counts, &err), &err);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys WHERE "
                              "private_key_key_id IS NULL AND private_key "
                              "LIKE '-----BEGIN OPENSSH PRIVATE KEY-----%'"),
                   1);
  json_t *again = manifest(other_token);
  assert_string_equal(pem, str(again, "ssh_host_key"));
  /* rotate seals the key in clear; delete (the keys were lost) drops it,
   * and the workspace gets a new one on its next manifest */
  must(atr_dbcrypt_run(&store, ATR_DBCRYPT_ROTATE, 10, &counts, &err), &err);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys WHERE "
                              "private_key_key_id IS NOT NULL"),
                   1);
  must(atr_dbcrypt_run(&store, ATR_DBCRYPT_DELETE, 10, &counts, &err), &err);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_ssh_keys"), 0);
  store.crypt = NULL;
  atr_dbcrypt_free(cipher);
  json_t *fresh = manifest(other_token);
  assert_memory_equal(str(fresh, "ssh_host_key"), PEM_HEAD, strlen(PEM_HEAD));
  assert_string_not_equal(pem, str(fresh, "ssh_host_key"));
  json_decref(fresh);
  json_decref(m);
  json_decref(again);
}

static void an_earlier_builds_agent_is_refused(void **s) {
  (void)s;
  agent_connects(token); /* the current one: the old one's state is moot */
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_connect_t c;
  atr_fault_t f = {0};
  assert_true(atr_uuid_valid(earlier_agent));
  assert_refused(authorize(&alice, earlier_agent, "ssh", 0, &c, &f), &f, 409,
                 "The agent is of an earlier build of workspace alice/dev1.");
  assert_int_equal(
      authorize(&alice, agent_of(token).agent_id, "ssh", 0, &c, &f), 0);
}

static void a_stopped_workspace_is_not_running(void **s) {
  (void)s;
  atr_actor_t a = agent_of(token);
  agent_connects(token);
  json_t *b = add_build(workspace_id, template_id, "stop");
  json_decref(b);
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_agents_revoke(&db, workspace_id, NULL, &err), &err);
  atr_db_close(&db);
  end_build_jobs();
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_connect_t c;
  atr_fault_t f = {0};
  assert_refused(authorize(&alice, a.agent_id, "ssh", 0, &c, &f), &f, 409,
                 "The workspace alice/dev1 is not running (status: "
                 "stopped).");
  /* deleted: as if it never was */
  atr_value_t p[] = {atr_v_text(workspace_id)};
  exec_ok("UPDATE workspaces SET deleted = TRUE WHERE id = ?", p, 1);
  assert_refused(authorize(&alice, a.agent_id, "ssh", 0, &c, &f), &f, 404,
                 "Workspace agent not found.");
}

int main(int argc, char **argv) {
  int rc = fixture_args(argc, argv);
  if (rc != 0)
    return rc;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(an_unknown_agent_is_not_found),
      cmocka_unit_test(a_bad_request_names_its_fields),
      cmocka_unit_test(an_agent_not_connected_is_a_clear_conflict),
      cmocka_unit_test(the_owner_connects_and_both_ends_are_audited),
      cmocka_unit_test(others_are_forbidden_and_audited_as_denied),
      cmocka_unit_test(a_site_owner_connects_to_anyones_workspace),
      cmocka_unit_test(the_host_key_is_the_workspaces_for_its_life),
      cmocka_unit_test(a_host_key_is_sealed_with_the_encryption_key),
      cmocka_unit_test(an_earlier_builds_agent_is_refused),
      cmocka_unit_test(a_stopped_workspace_is_not_running),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
