/* core/cli/cli_db.c — `atrium db migrate|status|backup FILE|restore FILE`.
 *
 * Only the storage plugin is started; the other enabled plugins are opened
 * and checked but never run, so these commands are safe on a machine that
 * cannot reach, say, the Docker engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "migrate.h"

static int fail(const char *what, int rc, char *err) {
  fprintf(stderr, "atrium db %s: %s\n", what, err ? err : atr_strerror(rc));
  free(err);
  return 1;
}

static int usage(void);

/* The store, opened (and migrated when `migrate`) for command what;
 * NULL after saying why. */
static atr_store_t *open_store(atr_app_t *app, const char *what, bool migrate) {
  char *err = NULL;
  int rc = atr_app_load_storage(app, &err);
  if (rc == 0)
    rc = atr_app_open_store(app, migrate, &err);
  if (rc != 0) {
    fail(what, rc, err);
    return NULL;
  }
  return &app->store;
}

static int db_migrate(atr_app_t *app, int argc, char **argv) {
  (void)argv;
  if (argc != 0)
    return usage();
  atr_store_t *s = open_store(app, "migrate", true);
  if (!s)
    return 1;
  char *err = NULL;
  int version = 0;
  int rc = atr_migrate_current(s, &version, &err);
  if (rc != 0)
    return fail("migrate", rc, err);
  printf("the database schema is at version %d\n", version);
  return 0;
}

static int db_status(atr_app_t *app, int argc, char **argv) {
  (void)argv;
  if (argc != 0)
    return usage();
  atr_store_t *s = open_store(app, "status", false);
  if (!s)
    return 1;
  char *err = NULL;
  int rc = atr_migrate_status(s, atr_migrations, atr_nmigrations, stdout, &err);
  return rc == 0 ? 0 : fail("status", rc, err);
}

static int db_backup(atr_app_t *app, int argc, char **argv) {
  if (argc != 1)
    return usage();
  atr_store_t *s = open_store(app, "backup", false);
  if (!s)
    return 1;
  char *err = NULL;
  int rc = s->ops->backup(s->ctx, argv[0], &err);
  if (rc != 0)
    return fail("backup", rc, err);
  printf("backed up the %s database to %s\n", s->ops->dialect, argv[0]);
  return 0;
}

static int db_restore(atr_app_t *app, int argc, char **argv) {
  if (argc != 1)
    return usage();
  atr_store_t *s = open_store(app, "restore", false);
  if (!s)
    return 1;
  char *err = NULL;
  int rc = s->ops->restore(s->ctx, argv[0], &err);
  if (rc != 0)
    return fail("restore", rc, err);
  printf("restored the %s database from %s\n", s->ops->dialect, argv[0]);
  return 0;
}

/* Planned (issue 13): said plainly rather than missing from the list. */
static int db_encrypt(atr_app_t *app, int argc, char **argv) {
  (void)app;
  (void)argc;
  (void)argv;
  fprintf(stderr, "atrium db encrypt: not supported yet: encryption of the "
                  "database at rest (rotate, decrypt, delete) is planned; "
                  "see README.md, \"Not yet done\"\n");
  return 1;
}

static const atr_cli_command_t db_commands[] = {
    {"migrate",
     "usage: atrium db migrate          apply pending schema migrations\n",
     NULL, db_migrate},
    {"status",
     "       atrium db status           list migrations and when they ran\n",
     NULL, db_status},
    {"backup",
     "       atrium db backup FILE      copy the whole database into FILE\n",
     NULL, db_backup},
    {"restore",
     "       atrium db restore FILE     replace the database with FILE\n"
     "                                  (stop every atrium server first)\n",
     NULL, db_restore},
    {"encrypt",
     "       atrium db encrypt rotate|decrypt|delete\n"
     "                                  not supported yet (planned)\n",
     NULL, db_encrypt},
    {NULL, NULL, NULL, NULL},
};

static int usage(void) {
  atr_cli_write_summaries(db_commands, stderr);
  return 2;
}

int atr_cli_db(atr_app_t *app, int argc, char **argv) {
  const atr_cli_command_t *c =
      argc > 0 ? atr_cli_find(db_commands, argv[0]) : NULL;
  return c ? c->run_app(app, argc - 1, argv + 1) : usage();
}
