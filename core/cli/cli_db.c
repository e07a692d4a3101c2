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

static const char db_usage[] =
    "usage: atrium db migrate          apply pending schema migrations\n"
    "       atrium db status           list migrations and when they ran\n"
    "       atrium db backup FILE      copy the whole database into FILE\n"
    "       atrium db restore FILE     replace the database with FILE\n"
    "                                  (stop every atrium server first)\n";

static int fail(const char *what, int rc, char *err) {
  fprintf(stderr, "atrium db %s: %s\n", what, err ? err : atr_strerror(rc));
  free(err);
  return 1;
}

static int run(atr_app_t *app, const char *cmd, const char *file) {
  char *err = NULL;
  bool migrate = strcmp(cmd, "migrate") == 0;
  int rc = atr_app_load_storage(app, &err);
  if (rc == 0)
    rc = atr_app_open_store(app, migrate, &err);
  if (rc != 0)
    return fail(cmd, rc, err);
  atr_store_t *s = &app->store;
  if (migrate) {
    int version = 0;
    rc = atr_migrate_current(s, &version, &err);
    if (rc == 0)
      printf("the database schema is at version %d\n", version);
  } else if (strcmp(cmd, "status") == 0) {
    rc = atr_migrate_status(s, atr_migrations, atr_nmigrations, stdout, &err);
  } else if (strcmp(cmd, "backup") == 0) {
    rc = s->ops->backup(s->ctx, file, &err);
    if (rc == 0)
      printf("backed up the %s database to %s\n", s->ops->dialect, file);
  } else {
    rc = s->ops->restore(s->ctx, file, &err);
    if (rc == 0)
      printf("restored the %s database from %s\n", s->ops->dialect, file);
  }
  return rc == 0 ? 0 : fail(cmd, rc, err);
}

static int db_with_app(atr_app_t *app, int argc, char **argv) {
  const char *cmd = argc > 0 ? argv[0] : "";
  bool needs_file = strcmp(cmd, "backup") == 0 || strcmp(cmd, "restore") == 0;
  bool plain = strcmp(cmd, "migrate") == 0 || strcmp(cmd, "status") == 0;
  if ((needs_file && argc != 2) || (plain && argc != 1) ||
      (!needs_file && !plain)) {
    fputs(db_usage, stderr);
    return 2;
  }
  return run(app, cmd, needs_file ? argv[1] : NULL);
}

int atr_cli_db(const char *name, int argc, char **argv) {
  (void)name;
  return atr_cli_with_app(argc, argv, db_with_app);
}
