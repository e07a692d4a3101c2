/* TEMPORARY placeholder, being replaced by the audit work. */
#include "audit.h"

void atr_audit_record(const atr_api_req_t *r, const atr_audit_entry_t *e) {
  (void)r;
  (void)e;
}

void atr_audit_diff_add(json_t **diff, const char *field, const char *old_value,
                        const char *new_value, bool secret) {
  (void)diff;
  (void)field;
  (void)old_value;
  (void)new_value;
  (void)secret;
}
