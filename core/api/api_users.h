/* core/api_users.h — handlers for users, sessions and sign-in. */
#ifndef ATRIUM_CORE_API_USERS_H
#define ATRIUM_CORE_API_USERS_H

#include "api.h"

int atr_api_first_user_exists(atr_api_req_t *r);
int atr_api_first_user_create(atr_api_req_t *r);
int atr_api_login(atr_api_req_t *r);
int atr_api_logout(atr_api_req_t *r);
int atr_api_auth_methods(atr_api_req_t *r);
int atr_api_user_get(atr_api_req_t *r);
int atr_api_users_list(atr_api_req_t *r);
int atr_api_user_create(atr_api_req_t *r);
int atr_api_user_delete(atr_api_req_t *r);
int atr_api_user_suspend(atr_api_req_t *r);
int atr_api_user_activate(atr_api_req_t *r);
int atr_api_user_password(atr_api_req_t *r);
int atr_api_user_roles_get(atr_api_req_t *r);
int atr_api_user_roles_put(atr_api_req_t *r);
int atr_api_tokens_create(atr_api_req_t *r);
int atr_api_tokens_list(atr_api_req_t *r);
int atr_api_key_delete(atr_api_req_t *r);

#endif
