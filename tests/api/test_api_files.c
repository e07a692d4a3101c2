/* tests/api/test_api_files.c — template archives through POST and GET
 * /api/v2/files: stored once by their hash, served back byte for byte,
 * and bad ones refused naming the problem. A group of the test_api_users
 * program (see users.h). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "users.h"

/* ---- files ------------------------------------------------------------------ */

/* Bytes of a file made by a shell command in a fresh temp dir (python3's
 * tarfile makes the archives, bad ones included). */
static char *make_archive(const char *python, size_t *len) {
  char dir[] = "/tmp/atrium-files-XXXXXX";
  if (!mkdtemp(dir))
    return NULL;
  char cmd[2048], path[64];
  snprintf(path, sizeof path, "%s/a", dir);
  snprintf(cmd, sizeof cmd,
           "cd %s && python3 -c 'import io, tarfile, sys\n%s' > a", dir,
           python);
  char *data = NULL;
  if (system(cmd) == 0) {
    FILE *f = fopen(path, "rb");
    if (f) {
      data = malloc(1 << 20);
      *len = data ? fread(data, 1, 1 << 20, f) : 0;
      fclose(f);
    }
  }
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0)
    print_error("could not remove %s\n", dir);
  return data;
}

#define TAR_OF(entries, mode)                                                  \
  "b = io.BytesIO()\n"                                                         \
  "t = tarfile.open(fileobj=b, mode=\"" mode "\")\n"                           \
  "for name, text in " entries ":\n"                                           \
  "    i = tarfile.TarInfo(name); d = text.encode(); i.size = len(d)\n"        \
  "    t.addfile(i, io.BytesIO(d))\n"                                          \
  "t.close(); sys.stdout.buffer.write(b.getvalue())"

static atr_tc_res_t upload(const srv_t *s, const char *token, const char *type,
                           const void *data, size_t len) {
  return atr_tc_call(s->h.port, &(atr_tc_req_t){.method = "POST",
                                                .path = "/api/v2/files",
                                                .token = token,
                                                .raw = data,
                                                .raw_len = len,
                                                .content_type = type});
}

static void template_archives_are_uploaded_once_and_served_back(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  size_t len = 0, gz_len = 0;
  char *tar = make_archive(
      TAR_OF("[(\"template.yaml\", \"name: t\\n\"), (\"main.tf\", \"\")]", "w"),
      &len);
  char *gz = make_archive(
      TAR_OF("[(\"template.yaml\", \"name: t\\n\")]", "w:gz"), &gz_len);
  assert_non_null(tar);
  assert_non_null(gz);
  atr_tc_res_t r = upload(s, s->owner_token, "application/x-tar", tar, len);
  ASSERT_ANSWER(r, 201);
  char id[64];
  snprintf(id, sizeof id, "%s", field(&r, "hash"));
  assert_int_equal(strlen(field(&r, "sha256")), 64);
  atr_tc_res_free(&r);
  /* the same bytes again: the same file */
  r = upload(s, s->owner_token, "application/x-tar", tar, len);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "hash"), id);
  atr_tc_res_free(&r);
  char path[128];
  snprintf(path, sizeof path, "/api/v2/files/%s", id);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(r.content_type, "application/x-tar");
  assert_int_equal(r.len, len);
  assert_memory_equal(r.body, tar, len);
  atr_tc_res_free(&r);
  r = upload(s, s->owner_token, "application/gzip", gz, gz_len);
  ASSERT_ANSWER(r, 201);
  atr_tc_res_free(&r);
  ASSERT_ERROR(404, "File not found.",
               get(s, "/api/v2/files/00000000-0000-4000-8000-000000000000",
                   s->owner_token));
  free(tar);
  free(gz);
}

static void bad_archives_are_refused_naming_the_problem(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  size_t len = 0;
  char *evil = make_archive(TAR_OF("[(\"../escape\", \"x\")]", "w"), &len);
  assert_non_null(evil);
  atr_tc_res_t r = upload(s, s->owner_token, "application/x-tar", evil, len);
  ASSERT_ANSWER(r, 400);
  assert_string_equal(field(&r, "message"),
                      "The file is not a usable template archive.");
  assert_non_null(strstr(field(&r, "detail"), "../escape"));
  atr_tc_res_free(&r);
  r = upload(s, s->owner_token, "application/x-tar", "not a tar at all", 16);
  ASSERT_ANSWER(r, 400);
  atr_tc_res_free(&r);
  r = upload(s, s->owner_token, "application/zip", evil, len);
  ASSERT_ANSWER(r, 415);
  atr_tc_res_free(&r);
  /* a member is not a template author */
  char member_id[37];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  r = upload(s, member, "application/x-tar", evil, len);
  ASSERT_ANSWER(r, 403);
  atr_tc_res_free(&r);
  free(evil);
}

#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
const struct CMUnitTest files_tests[] = {
    T(template_archives_are_uploaded_once_and_served_back),
    T(bad_archives_are_refused_naming_the_problem),
};
#undef T
const size_t files_count = sizeof files_tests / sizeof files_tests[0];
