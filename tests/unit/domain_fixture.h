/* tests/unit/domain_fixture.h — what the domain unit tests share: a
 * migrated store on the real storage plugin, loaded by the real loader
 * (SQLite in a temp dir, or the PostgreSQL cluster of the `postgres` ctest
 * fixture named on the command line), SQL helpers that fail the test on
 * error, people seeded with SQL, and actors for them.
 *
 * A program calls fixture_args() in main, fixture_open() in its group
 * set-up and fixture_close() in its group tear-down; every helper uses
 * the store fixture_open() made.
 *
 * Ownership: the loader, store and domain belong to the fixture from open
 * to close; a test may set the domain's limits after open. An actor
 * borrows string literals only.
 * Threads: the test's thread only.
 */
#ifndef ATRIUM_TESTS_DOMAIN_FIXTURE_H
#define ATRIUM_TESTS_DOMAIN_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "actor.h"
#include "db.h"
#include "domain.h"
#include "loader.h"

/* The origin every fixture actor carries, as a request would give it. */
#define FIXTURE_IP "192.0.2.7"
#define FIXTURE_USER_AGENT "atrium-test/1.0"
#define FIXTURE_REQUEST_ID "5f0c1e2d-3b4a-4c5d-8e6f-708192a3b4c5"

extern const char *pg_dir; /* NULL: SQLite */
extern char tmpdir[];      /* the data dir; SQLite's file is in it */
extern atr_loader_t loader;
extern atr_store_t store;
extern atr_domain_t dom; /* store and loader set; limits left to the test */

/* The command line: none for SQLite, or "postgres PGDIR". 0, or 2 after
 * printing the usage. */
int fixture_args(int argc, char **argv);

/* A fresh data dir /tmp/atrium-<name>-XXXXXX; the storage plugin, plus
 * the plugins in plugins_yaml (entries under "plugins:", indented by two,
 * or NULL), loaded; on PostgreSQL an empty public schema; migrated. 0, or
 * -1 after printing why. */
int fixture_open(const char *name, const char *plugins_yaml);
/* The loader shut down, the data dir removed. 0 or -1. */
int fixture_close(void);

/* Fails the test on rc != 0, naming *err; frees *err either way. */
void must(int rc, char **err);
/* Runs one statement on a connection of its own. */
void exec_ok(const char *sql, const atr_value_t *p, size_t n);
/* The integer one query answers; arg binds its one ?, if not NULL. */
int64_t count_rows(const char *sql);
int64_t count_rows_for(const char *sql, const char *arg);
/* A cmocka set-up: each test starts from an empty audit log. */
int empty_log(void **state);

/* An organization, its new id into id. */
void add_org(char id[37], const char *name, bool is_default);
/* An active password user with the site roles in site_roles (ATR_ROLE_…;
 * member is implied), its new id into id. */
void add_user(char id[37], const char *username, uint32_t site_roles);
/* The user made a member of org_id, with the organization roles in
 * org_roles (ATR_ROLE_ORG_ADMIN; the organization member role is
 * implied). */
void add_member(const char *user_id, const char *org_id, uint32_t org_roles);

/* An uploaded archive by user_id, its new id into id. */
void add_file(char id[37], const char *created_by);

/* A template version whose import succeeded: what a test needs before a
 * template or a build can use the version. */
typedef struct fixture_version {
  const char *id; /* made by the caller (atr_db_new_uuid) */
  const char *org_id;
  const char *template_id; /* NULL: not in a template yet */
  const char *name;
  const char *provisioner; /* the import job's */
  const char *file_id;     /* the archive the job imported */
  const char *created_by;  /* a user id; also the job's initiator */
} fixture_version_t;
/* The succeeded import job and the version made from it. */
void add_imported_version(const fixture_version_t *v);

/* Template "dev" (provisioner echo) in org_id, its new id into
 * template_id, whose active version "v1" (new id into version_id) was
 * imported from file_id by created_by. */
void add_template(char template_id[37], char version_id[37], const char *org_id,
                  const char *file_id, const char *created_by);

/* A build the scheduler asks for (transition "start", "stop", "delete"):
 * the first, when workspace_id is "", creates alice's workspace "dev1"
 * from template_id and puts its id into workspace_id. The build's JSON,
 * which the caller releases; a refusal fails the test. Uses dom. */
json_t *add_build(char workspace_id[37], const char *template_id,
                  const char *transition);

/* Every workspace build's job that has not ended ends now, as a daemon
 * would end it. */
void end_build_jobs(void);

/* o's string member key, "" when absent or not a string. */
const char *str(const json_t *o, const char *key);

/* A signed-in user with the given site roles (member is implied), coming
 * from the FIXTURE_ origin. */
atr_actor_t actor(const char *user_id, const char *username, uint32_t roles);

#endif
