/* atrium/storage.h — the storage kind (a SQL backend).
 *
 * Exactly one storage plugin is enabled. The core owns the schema, the
 * migrations and the queries; the plugin supplies connections, execution,
 * transactions, dialect facts and optional pub/sub. The operations are added
 * to this table by the storage work (issue 3); until then the table holds
 * only its size and the dialect's name, and the loader checks that much.
 */
#ifndef ATRIUM_STORAGE_H
#define ATRIUM_STORAGE_H

#include <stdint.h>

#include "atrium/plugin.h"

typedef struct atr_storage_ops {
  uint32_t struct_size;
  const char *dialect; /* "sqlite", "postgres" */
} atr_storage_ops_t;

#define ATR_STORAGE_OPS_MIN_SIZE                                               \
  (offsetof(atr_storage_ops_t, dialect) + sizeof(const char *))

#endif /* ATRIUM_STORAGE_H */
