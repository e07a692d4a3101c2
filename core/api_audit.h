/* core/api_audit.h — GET /api/v2/audit. */
#ifndef ATRIUM_CORE_API_AUDIT_H
#define ATRIUM_CORE_API_AUDIT_H

#include "api.h"

int atr_api_audit_list(atr_api_req_t *r);

#endif
