/* TEMPORARY placeholder, being replaced by the audit work. */
#include "api_audit.h"

int atr_api_audit_list(atr_api_req_t *r) {
  return atr_api_error(r, 501, "Not supported yet.", "audit");
}
