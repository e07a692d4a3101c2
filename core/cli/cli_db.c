/* core/cli/cli_db.c — `atrium db migrate|status|backup FILE|restore FILE`
 * and `atrium db encrypt rotate|decrypt|delete` (dbcrypt.h).
 *
 * Only the storage plugin is started; the other enabled plugins are opened
 * and checked but never run, so these commands are safe on a machine that
 * cannot reach, say, the Docker engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "atrium/error.h"
#include "cli.h"
#include "cli_prompt.h"
#include "dbcrypt.h"
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

/* ---- encrypt ------------------------------------------------------------- */

static void print_counts(const char *done, const atr_dbcrypt_counts_t *c) {
  long long total = 0;
  for (size_t i = 0; i < c->n; i++)
    total += c->values[i];
  printf("%s %lld value%s\n", done, total, total == 1 ? "" : "s");
  for (size_t i = 0; i < c->n; i++)
    printf("  %-28s %lld\n", c->names[i], c->values[i]);
  for (size_t i = 0; i < c->nrevoked; i++)
    printf("revoked key id %s: no value uses it any more\n", c->revoked[i]);
}

/* delete destroys data: ask, or require --yes without a terminal. */
static bool confirm_delete(bool yes) {
  if (yes)
    return true;
  if (!isatty(STDIN_FILENO)) {
    fprintf(stderr, "atrium db encrypt delete: this deletes every encrypted "
                    "value; give --yes to confirm\n");
    return false;
  }
  fprintf(stderr, "This deletes every encrypted value (sensitive parameter "
                  "values, provisioner states, OAuth tokens). Type yes to go "
                  "on: ");
  char line[16] = "";
  return atr__cli_read_line(line, sizeof line) == 0 && strcmp(line, "yes") == 0;
}

static int parse_encrypt(int argc, char **argv, atr_dbcrypt_op_t *op,
                         bool *yes) {
  *yes = false;
  if (argc < 1)
    return -1;
  if (strcmp(argv[0], "rotate") == 0)
    *op = ATR_DBCRYPT_ROTATE;
  else if (strcmp(argv[0], "decrypt") == 0)
    *op = ATR_DBCRYPT_DECRYPT;
  else if (strcmp(argv[0], "delete") == 0)
    *op = ATR_DBCRYPT_DELETE;
  else
    return -1;
  for (int i = 1; i < argc; i++) {
    if (*op == ATR_DBCRYPT_DELETE &&
        (strcmp(argv[i], "--yes") == 0 || strcmp(argv[i], "-y") == 0))
      *yes = true;
    else
      return -1;
  }
  return 0;
}

/* Migrated first; the keys are checked except for delete, which is what
 * to run when a key is lost. */
static int db_encrypt(atr_app_t *app, int argc, char **argv) {
  atr_dbcrypt_op_t op;
  bool yes = false;
  if (parse_encrypt(argc, argv, &op, &yes) != 0)
    return usage();
  const char *what = argv[0];
  atr_store_t *s = open_store(app, "encrypt", false);
  if (!s)
    return 1;
  if (op == ATR_DBCRYPT_DELETE && !confirm_delete(yes))
    return 1;
  char *err = NULL;
  int rc = atr_migrate_up(s, atr_migrations, atr_nmigrations, NULL, &err);
  if (rc == 0 && op != ATR_DBCRYPT_DELETE)
    rc = atr_app_open_crypt(app, &err);
  atr_dbcrypt_counts_t counts;
  if (rc == 0)
    rc = atr_dbcrypt_run(s, op, 100, &counts, &err);
  if (rc != 0) {
    fprintf(stderr, "atrium db encrypt %s: %s\n", what,
            err ? err : atr_strerror(rc));
    free(err);
    return 1;
  }
  char done[64];
  if (op == ATR_DBCRYPT_ROTATE)
    snprintf(done, sizeof done,
             "encrypted with key id %s:", atr_dbcrypt_key_id(s->crypt, 0));
  print_counts(op == ATR_DBCRYPT_ROTATE    ? done
               : op == ATR_DBCRYPT_DECRYPT ? "decrypted"
                                           : "deleted",
               &counts);
  return 0;
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
     "       atrium db encrypt rotate   encrypt every secret with the first\n"
     "                                  key (the server may keep running)\n"
     "       atrium db encrypt decrypt  store every secret in clear again\n"
     "       atrium db encrypt delete [--yes]\n"
     "                                  delete every encrypted value (lost\n"
     "                                  keys); see docs/security.md\n",
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
