/* core/migrate.h — the schema's numbered migrations.
 *
 * Migrations live in core/store/migrations/NNNN_name.sql (portable SQL, several
 * statements each) and are compiled into the binary in order. Each is applied
 * in its own write transaction together with its row in schema_migrations
 * (version, name, applied_at). On PostgreSQL the transaction first locks
 * schema_migrations, so replicas starting together migrate once.
 *
 * A database whose newest applied version is above the binary's newest is
 * refused: "the database schema is at version 7 but this atrium knows only
 * up to 5; run the newer atrium, or restore the backup taken before the
 * upgrade".
 *
 * Threads: any, with a store; runs its own transactions.
 */
#ifndef ATRIUM_CORE_MIGRATE_H
#define ATRIUM_CORE_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

#include "db.h"

typedef struct atr_migration {
  int version;
  const char *name;
  const char *sql;
} atr_migration_t;

/* The binary's migrations, ascending (generated from core/store/migrations/). */
extern const atr_migration_t atr_migrations[];
extern const size_t atr_nmigrations;

/* The newest applied version (0 for an empty database). */
int atr_migrate_current(atr_store_t *store, int *version, char **err);
/* Apply every pending migration of `migs` (use atr_migrations); *applied
 * (may be NULL) gets how many ran. Logs each one. */
int atr_migrate_up(atr_store_t *store, const atr_migration_t *migs, size_t n,
                   int *applied, char **err);
/* Print one line per migration: version, name, applied at or "pending". */
int atr_migrate_status(atr_store_t *store, const atr_migration_t *migs,
                       size_t n, FILE *out, char **err);

#endif
