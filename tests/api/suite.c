/* tests/api/suite.c — see suite.h. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "suite.h"

/* ---- secrets the log must not contain ---------------------------------------- */

#define MAX_SECRETS 32
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

const char *remember(const char *s) {
  assert_true(nsecrets < MAX_SECRETS);
  secrets[nsecrets] = strdup(s);
  assert_non_null(secrets[nsecrets]);
  return secrets[nsecrets++];
}

static void forget_secrets(void) {
  for (size_t i = 0; i < nsecrets; i++)
    free(secrets[i]);
  nsecrets = 0;
}

int find_secret(const char *text) {
  for (size_t i = 0; text && i < nsecrets; i++)
    if (strstr(text, secrets[i]))
      return (int)i;
  return -1;
}

const char *secret_at(int i) {
  return i >= 0 && (size_t)i < nsecrets ? secrets[i] : "(none)";
}

/* ---- the server ------------------------------------------------------------ */

char *srv_config_text(const srv_config_t *c) {
  char *storage = atr_harness_storage_yaml(c->storage);
  char *text = NULL;
  /* The rate limits are off: the tests sign in more often than a person
   * would, and what is tested is what each request does. */
  int n = storage ? asprintf(&text,
                             "%s"
                             "data_dir: data\n"
                             "plugin_dirs: [%s]\n"
                             "log:\n  level: debug\n"
                             "http:\n  threads: %d\n"
                             "  rate_limit:\n    login: 0\n    api: 0\n"
                             "plugins:\n%s"
                             "  auth_password:\n    enabled: true\n"
                             "    memory_cost: 8MiB\n    time_cost: 1\n"
                             "%s",
                             c->top ? c->top : "", ATR_TEST_PLUGIN_DIR,
                             c->threads ? c->threads : 4, storage,
                             c->plugins ? c->plugins : "")
                  : -1;
  free(storage);
  return n < 0 ? NULL : text;
}

int srv_start(void **state, const char *config, const char *const *flags) {
  if (!config || atr_harness_reset_db() != 0)
    return -1;
  srv_t *s = calloc(1, sizeof *s);
  if (!s)
    return -1;
  atr_harness_init(&s->h, config);
  atr_harness_start(&s->h, flags, NULL);
  *state = s;
  return 0;
}

int srv_stop(void **state) {
  srv_t *s = *state;
  int status = atr_harness_stop(&s->h, 15000);
  char *log = atr_harness_read_log(&s->h);
  int leaked = find_secret(log);
  if (leaked >= 0)
    print_error("remembered secret #%d (%s) is in the server log %s\n", leaked,
                secret_at(leaked), s->h.log);
  if (status != 0)
    print_error("the server exited with %d after SIGTERM; its log:\n%s\n",
                status, log ? log : "");
  free(log);
  atr_harness_cleanup(&s->h);
  forget_secrets();
  free(s);
  return leaked >= 0 || status != 0 ? -1 : 0;
}

void srv_restart(srv_t *s, int sig, const char *config) {
  if (sig != SIGTERM)
    kill(s->h.pid, sig);
  int status = sig == SIGTERM ? atr_harness_stop(&s->h, 10000)
                              : atr_harness_wait(&s->h, 10000);
  if (sig == SIGTERM && status != 0) {
    char *log = atr_harness_read_log(&s->h);
    print_error("the server exited with %d after SIGTERM; its log:\n%s\n",
                status, log ? log : "");
    free(log);
  }
  assert_int_equal(status, sig == SIGTERM ? 0 : 128 + sig);
  assert_non_null(config);
  atr_harness_write_config(&s->h, config);
  atr_harness_start(&s->h, NULL, NULL);
}

/* ---- calls ------------------------------------------------------------------ */

atr_tc_res_t call(const srv_t *s, const char *method, const char *path,
                  const char *token, json_t *body) {
  atr_tc_res_t r = atr_tc_call(s->h.port, &(atr_tc_req_t){.method = method,
                                                          .path = path,
                                                          .token = token,
                                                          .body = body});
  json_decref(body);
  return r;
}

atr_tc_res_t get(const srv_t *s, const char *path, const char *token) {
  return call(s, "GET", path, token, NULL);
}

const char *field(const atr_tc_res_t *r, const char *key) {
  const char *v = atr_tc_str(r, key);
  return v ? v : "(missing)";
}

const char *jstr(const json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "(missing)";
}

const char *jstr2(const json_t *o, const char *a, const char *b) {
  return jstr(json_object_get(o, a), b);
}

const char *login(const srv_t *s, const char *email, const char *password) {
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/login", NULL,
           json_pack("{s:s, s:s}", "email", email, "password", password));
  ASSERT_ANSWER(r, 201);
  const char *token = remember(field(&r, "session_token"));
  atr_tc_res_free(&r);
  return token;
}

void owner_signs_in(srv_t *s) {
  remember(OWNER_PW);
  atr_tc_res_t r = call(s, "POST", "/api/v2/users/first", NULL,
                        json_pack("{s:s, s:s, s:s}", "email", OWNER_EMAIL,
                                  "username", "owner", "password", OWNER_PW));
  ASSERT_ANSWER(r, 201);
  snprintf(s->owner_id, sizeof s->owner_id, "%s", field(&r, "user_id"));
  snprintf(s->org_id, sizeof s->org_id, "%s", field(&r, "organization_id"));
  atr_tc_res_free(&r);
  s->owner_token = login(s, OWNER_EMAIL, OWNER_PW);
}

/* ---- assertions --------------------------------------------------------------- */

void assert_contains(const char *s, const char *needle) {
  if (!s || !strstr(s, needle))
    print_error("\"%s\" is not in: %s\n", needle, s ? s : "(null)");
  assert_non_null(s);
  assert_non_null(strstr(s, needle));
}

void assert_validations(const atr_tc_res_t *r, const char *const *fields,
                        const char *const *details, size_t n) {
  if (r->status != 400)
    print_error("answer: %s\n", r->body);
  assert_int_equal(r->status, 400);
  json_t *list = json_object_get(r->json, "validations");
  if (json_array_size(list) != n)
    print_error("want %zu validations: %s\n", n, r->body);
  assert_int_equal(json_array_size(list), n);
  for (size_t f = 0; f < n; f++) {
    size_t seen = 0, i;
    json_t *v;
    json_array_foreach(list, i, v) {
      if (strcmp(jstr(v, "field"), fields[f]) != 0)
        continue;
      seen++;
      assert_true(strlen(jstr(v, "detail")) > 0);
      if (details && details[f])
        assert_contains(jstr(v, "detail"), details[f]);
    }
    if (seen != 1)
      print_error("field %s: %zu entries in %s\n", fields[f], seen, r->body);
    assert_int_equal(seen, 1);
  }
}
