/* tests/api/users.c — see users.h. */
#include "users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int start(void **state, const char *const *flags) {
  char *cfg = srv_config_text(&(srv_config_t){.threads = 4});
  int rc = srv_start(state, cfg, flags);
  free(cfg);
  return rc;
}

int server_up(void **state) {
  return start(state, NULL);
}

/* Flags beat the config file. */
int server_up_api_limited(void **state) {
  static const char *const flags[] = {"--http.rate_limit.api=5", NULL};
  return start(state, flags);
}

int server_up_limited(void **state) {
  static const char *const flags[] = {"--http.rate_limit.login=3", NULL};
  return start(state, flags);
}

long login_status(const srv_t *s, const char *email, const char *password) {
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/login", NULL,
           json_pack("{s:s, s:s}", "email", email, "password", password));
  long status = r.status;
  if (status == 201)
    remember(field(&r, "session_token"));
  atr_tc_res_free(&r);
  return status;
}

/* The owner creates a user; their id into id. */
void create_user(const srv_t *s, const char *username, const char *email,
                 const char *password, char id[37]) {
  remember(password);
  atr_tc_res_t r = call(s, "POST", "/api/v2/users", s->owner_token,
                        json_pack("{s:s, s:s, s:s}", "email", email, "username",
                                  username, "password", password));
  ASSERT_ANSWER(r, 201);
  snprintf(id, 37, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

/* A new long-lived token for `user` made with `token`; the key. */
const char *create_token(const srv_t *s, const char *user, const char *token,
                         const char *name) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/users/%s/keys/tokens", user);
  atr_tc_res_t r =
      call(s, "POST", path, token, json_pack("{s:s}", "token_name", name));
  ASSERT_ANSWER(r, 201);
  const char *key = remember(field(&r, "key"));
  atr_tc_res_free(&r);
  return key;
}

/* "GET /users/me answers 200 for this key" */
long me_status(const srv_t *s, const char *token) {
  atr_tc_res_t r = get(s, "/api/v2/users/me", token);
  long status = r.status;
  atr_tc_res_free(&r);
  return status;
}

json_t *role_list(const char *role) {
  return role ? json_pack("{s:[s]}", "roles", role)
              : json_pack("{s:[]}", "roles");
}

const char *key_secret(const char *key) {
  const char *dash = strchr(key, '-');
  return dash ? dash + 1 : key;
}

void assert_validation_failed(const atr_tc_res_t *r, const char *const *fields,
                              size_t n) {
  assert_validations(r, fields, NULL, n);
  assert_string_equal(field(r, "message"), "Validation failed.");
}
