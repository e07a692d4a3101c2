/* TEMPORARY placeholder, being replaced by the organizations work. */
#include "api_orgs.h"

#define NOT_YET(fn)                                                            \
  int fn(atr_api_req_t *r) {                                                   \
    return atr_api_error(r, 501, "Not supported yet.", #fn);                   \
  }
NOT_YET(atr_api_orgs_list)
NOT_YET(atr_api_org_create)
NOT_YET(atr_api_org_get)
NOT_YET(atr_api_org_members_list)
NOT_YET(atr_api_org_member_add)
NOT_YET(atr_api_org_member_remove)
NOT_YET(atr_api_org_member_roles)
