/* core/domain/domain.c — see domain.h. */
#include "domain.h"

#include <stdlib.h>

int atr_domain_open(const atr_domain_t *dom, atr_db_t *db, atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_db_open(dom->store, db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}
