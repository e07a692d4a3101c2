/* core/api_orgs.h — handlers for organizations and their members. */
#ifndef ATRIUM_CORE_API_ORGS_H
#define ATRIUM_CORE_API_ORGS_H

#include "api.h"

int atr_api_orgs_list(atr_api_req_t *r);
int atr_api_org_create(atr_api_req_t *r);
int atr_api_org_get(atr_api_req_t *r);
int atr_api_org_members_list(atr_api_req_t *r);
int atr_api_org_member_add(atr_api_req_t *r);
int atr_api_org_member_remove(atr_api_req_t *r);
int atr_api_org_member_roles(atr_api_req_t *r);

#endif
