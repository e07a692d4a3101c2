/* Config files as a user writes them: positions, conf.d merging, and the
 * error messages a mistake produces. */
#ifndef _GNU_SOURCE /* the top-level CMakeLists.txt may define it */
#define _GNU_SOURCE /* nftw, asprintf */
#endif
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "conf.h"

/* ---- helpers ----------------------------------------------------------- */

static char *path_in(const char *dir, const char *rel) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", dir, rel) > 0);
  return p;
}

static void write_file(const char *dir, const char *rel, const char *text) {
  char *p = path_in(dir, rel);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(p);
}

static void make_dir(const char *dir, const char *rel) {
  char *p = path_in(dir, rel);
  char *cmd = NULL;
  assert_true(asprintf(&cmd, "mkdir -p '%s'", p) > 0);
  assert_int_equal(system(cmd), 0);
  free(cmd);
  free(p);
}

static int remove_one(const char *p, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int make_tmpdir(void **state) {
  char tmpl[] = "/tmp/atr-conf-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  *state = strdup(tmpl);
  return 0;
}

static int remove_tmpdir(void **state) {
  nftw(*state, remove_one, 16, FTW_DEPTH | FTW_PHYS);
  free(*state);
  return 0;
}

static atr_conf_node_t *parse_ok(const char *text) {
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  int rc =
      atr_conf_parse("config/atrium.yaml", text, strlen(text), &root, &err);
  if (rc)
    fail_msg("unexpected error: %s", err);
  assert_null(err);
  return root;
}

/* The error message for `text`, which must fail to parse. */
static char *parse_err(const char *text) {
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  int rc =
      atr_conf_parse("config/atrium.yaml", text, strlen(text), &root, &err);
  assert_int_equal(rc, ATR_ECONFIG);
  assert_null(root);
  assert_non_null(err);
  return err;
}

static void assert_parse_error(const char *text, const char *expected) {
  char *err = parse_err(text);
  assert_string_equal(err, expected);
  free(err);
}

static void assert_at(const atr_conf_node_t *n, const char *file, int line,
                      int col) {
  assert_non_null(n);
  assert_string_equal(n->file, file);
  assert_int_equal(n->line, line);
  assert_int_equal(n->col, col);
}

static const char *value_at(const atr_conf_node_t *root, const char *dotted) {
  const atr_conf_node_t *n = atr_conf_get(root, dotted);
  assert_non_null(n);
  assert_int_equal(n->type, ATR_CONF_SCALAR);
  return n->value;
}

/* ---- parsing ----------------------------------------------------------- */

static void every_node_knows_where_it_was_written(void **state) {
  (void)state;
  atr_conf_node_t *root = parse_ok("# comment\n"
                                   "http:\n"
                                   "  address: 127.0.0.1:3000\n"
                                   "plugin_dirs:\n"
                                   "  - /opt/a\n"
                                   "  - /opt/b\n"
                                   "flow: {x: 1, y: [2]}\n");
  assert_int_equal(root->type, ATR_CONF_MAP);
  assert_null(root->key);
  assert_int_equal(root->nchildren, 3);

  const atr_conf_node_t *http = atr_conf_get(root, "http");
  assert_int_equal(http->type, ATR_CONF_MAP);
  assert_string_equal(http->key, "http");
  assert_at(http, "config/atrium.yaml", 3, 3); /* where the map starts */
  const atr_conf_node_t *addr = atr_conf_get(root, "http.address");
  assert_string_equal(addr->key, "address");
  assert_string_equal(addr->value, "127.0.0.1:3000");
  assert_at(addr, "config/atrium.yaml", 3, 12); /* the value, not the key */

  const atr_conf_node_t *dirs = atr_conf_get(root, "plugin_dirs");
  assert_int_equal(dirs->type, ATR_CONF_SEQ);
  assert_int_equal(dirs->nchildren, 2);
  assert_null(dirs->children[0]->key);
  assert_string_equal(dirs->children[1]->value, "/opt/b");
  assert_at(dirs->children[1], "config/atrium.yaml", 6, 5);

  assert_at(atr_conf_get(root, "flow"), "config/atrium.yaml", 7, 7);
  assert_at(atr_conf_get(root, "flow.y")->children[0], "config/atrium.yaml", 7,
            18);

  char where[64];
  atr_conf_where(addr, where, sizeof where);
  assert_string_equal(where, "config/atrium.yaml:3:12");
  atr_conf_free(root);
}

static void scalars_keep_their_text_and_null_spellings_are_null(void **state) {
  (void)state;
  atr_conf_node_t *root = parse_ok("a: ~\nb: null\nc: Null\nd: NULL\ne:\n"
                                   "f: \"\"\ng: 'null'\nh: nil\ni: 007\n"
                                   "j: yes\n");
  const char *nulls[] = {"a", "b", "c", "d", "e"};
  for (size_t i = 0; i < 5; i++)
    assert_true(atr_conf_get(root, nulls[i])->is_null);
  assert_string_equal(value_at(root, "e"), "");
  const char *not_null[] = {"f", "g", "h", "i", "j"};
  for (size_t i = 0; i < 5; i++)
    assert_false(atr_conf_get(root, not_null[i])->is_null);
  assert_string_equal(value_at(root, "f"), "");
  assert_string_equal(value_at(root, "g"), "null");
  assert_string_equal(value_at(root, "i"), "007"); /* as written */
  assert_string_equal(value_at(root, "j"), "yes");
  atr_conf_free(root);
}

static void an_empty_file_is_an_empty_map(void **state) {
  (void)state;
  const char *texts[] = {"", "# only a comment\n", "---\n", "~\n"};
  for (size_t i = 0; i < 4; i++) {
    atr_conf_node_t *root = parse_ok(texts[i]);
    assert_int_equal(root->type, ATR_CONF_MAP);
    assert_int_equal(root->nchildren, 0);
    assert_string_equal(root->file, "config/atrium.yaml");
    atr_conf_free(root);
  }
}

static void get_follows_dotted_paths_through_maps_only(void **state) {
  (void)state;
  atr_conf_node_t *root =
      parse_ok("http:\n  address: x\n  tls:\n    cert: /c.pem\nl: [a]\n");
  assert_ptr_equal(atr_conf_get(root, ""), root);
  assert_string_equal(value_at(root, "http.tls.cert"), "/c.pem");
  assert_null(atr_conf_get(root, "http.port"));
  assert_null(atr_conf_get(root, "http.address.more")); /* scalar */
  assert_null(atr_conf_get(root, "l.0"));               /* lists aren't maps */
  assert_null(atr_conf_get(root, "nope"));
  atr_conf_free(root);
}

/* ---- errors ------------------------------------------------------------ */

static void a_syntax_error_points_at_the_line(void **state) {
  (void)state;
  assert_parse_error("http:\n  address: 1\n  bad: x: y\n",
                     "config/atrium.yaml:3:9: mapping values are not allowed "
                     "in this context");
  assert_parse_error("a: [1, 2\n", "config/atrium.yaml:2:1: did not find "
                                   "expected ',' or ']'");
  assert_parse_error("a:\n\tb: 1\n", "config/atrium.yaml:2:1: found "
                                     "character that cannot start any token");
}

static void invalid_utf8_is_located_by_line(void **state) {
  (void)state;
  assert_parse_error("a: ok\nb: \xff\n",
                     "config/atrium.yaml:2:4: invalid leading UTF-8 octet");
}

static void anchors_aliases_and_tags_are_refused(void **state) {
  (void)state;
  assert_parse_error("base: &b 1\nother: *b\n",
                     "config/atrium.yaml:1:7: anchor &b is not supported; "
                     "write the value out in full");
  assert_parse_error("other: *b\n", "config/atrium.yaml:1:8: alias *b is not "
                                    "supported; write the value out in full");
  assert_parse_error("n: !!str 5\n", "config/atrium.yaml:1:4: tag !!str is "
                                     "not supported; write the plain value");
}

static void a_duplicate_key_names_both_lines(void **state) {
  (void)state;
  assert_parse_error("a: 1\nb:\n  c: 2\na: 3\n",
                     "config/atrium.yaml:4:1: duplicate key \"a\" (first on "
                     "line 1, again on line 4); keep only one");
  /* the same key in different maps is fine */
  atr_conf_node_t *root = parse_ok("x:\n  a: 1\ny:\n  a: 2\n");
  atr_conf_free(root);
}

static void the_top_level_must_be_a_map(void **state) {
  (void)state;
  assert_parse_error("- a\n- b\n", "config/atrium.yaml:1:1: the top level "
                                   "must be a map of keys (such as \"http:\"), "
                                   "not a list");
  assert_parse_error("hello\n", "config/atrium.yaml:1:1: the top level must "
                                "be a map of keys (such as \"http:\"), not a "
                                "single value");
}

static void
absurd_nesting_is_refused_before_it_exhausts_the_stack(void **state) {
  (void)state;
  char text[256] = "a: ";
  memset(text + 3, '[', 100);
  assert_parse_error(text, "config/atrium.yaml:1:68: nesting deeper than 64 "
                           "levels");
}

static void a_second_document_is_refused(void **state) {
  (void)state;
  assert_parse_error("a: 1\n---\nb: 2\n",
                     "config/atrium.yaml:2:1: a second document is not "
                     "supported; keep one document per file (use conf.d/ for "
                     "more files)");
}

static void keys_must_be_single_values(void **state) {
  (void)state;
  assert_parse_error("? [a]\n: 1\n", "config/atrium.yaml:1:3: a key must be a "
                                     "single value, not a map or a list");
}

static void a_missing_file_says_so(void **state) {
  char *path = path_in(*state, "nope.yaml");
  char *expected = NULL;
  assert_true(asprintf(&expected, "cannot read %s: No such file or directory",
                       path) > 0);
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  assert_int_equal(atr_conf_parse_file(path, &root, &err), ATR_ENOENT);
  assert_null(root);
  assert_string_equal(err, expected);
  free(err);
  err = NULL;
  assert_int_equal(atr_conf_load(path, NULL, NULL, &root, &err), ATR_ENOENT);
  assert_string_equal(err, expected);
  free(err);
  free(expected);
  free(path);
}

/* ---- loading with conf.d ----------------------------------------------- */

static void conf_d_files_merge_over_the_main_file_in_name_order(void **state) {
  const char *dir = *state;
  write_file(dir, "atrium.yaml",
             "http:\n"
             "  address: 127.0.0.1:3000\n"
             "  threads: 4\n"
             "plugin_dirs:\n"
             "  - /a\n"
             "  - /b\n"
             "log:\n"
             "  level: info\n");
  make_dir(dir, "conf.d");
  /* written out of order: the name decides, not the creation time */
  write_file(dir, "conf.d/20-b.yaml",
             "http:\n  threads: 16\n"
             "log: {level: debug}\n");
  write_file(dir, "conf.d/10-a.yaml",
             "http:\n  threads: 8\n  tls: true\n"
             "plugin_dirs:\n  - /c\n");
  write_file(dir, "conf.d/notes.txt", "not: yaml: at all\n");
  write_file(dir, "conf.d/30-c.yml", "http: {threads: 99}\n");

  char *main_path = path_in(dir, "atrium.yaml");
  char *a = path_in(dir, "conf.d/10-a.yaml"),
       *b = path_in(dir, "conf.d/20-b.yaml");
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  assert_int_equal(atr_conf_load(main_path, NULL, NULL, &root, &err), 0);
  assert_null(err);

  assert_string_equal(value_at(root, "http.address"), "127.0.0.1:3000");
  assert_at(atr_conf_get(root, "http.address"), main_path, 2, 12);
  assert_string_equal(value_at(root, "http.threads"), "16");
  assert_at(atr_conf_get(root, "http.threads"), b, 2, 12);
  assert_string_equal(value_at(root, "http.tls"), "true");
  assert_at(atr_conf_get(root, "http.tls"), a, 3, 8);
  assert_string_equal(value_at(root, "log.level"), "debug");

  const atr_conf_node_t *http = atr_conf_get(root, "http");
  assert_int_equal(http->nchildren, 3); /* merged, in first-seen order */
  assert_string_equal(http->children[0]->key, "address");
  assert_string_equal(http->children[1]->key, "threads");
  assert_string_equal(http->children[2]->key, "tls");

  const atr_conf_node_t *dirs = atr_conf_get(root, "plugin_dirs");
  assert_int_equal(dirs->nchildren, 1); /* a list replaces, never appends */
  assert_string_equal(dirs->children[0]->value, "/c");
  assert_at(dirs, a, 5, 3);
  atr_conf_free(root);
  free(main_path);
  free(a);
  free(b);
}

static void a_missing_conf_d_is_fine(void **state) {
  write_file(*state, "atrium.yaml", "a: 1\n");
  char *main_path = path_in(*state, "atrium.yaml");
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  assert_int_equal(atr_conf_load(main_path, NULL, NULL, &root, &err), 0);
  assert_string_equal(value_at(root, "a"), "1");
  atr_conf_free(root);
  make_dir(*state, "conf.d"); /* and so is an empty one */
  assert_int_equal(atr_conf_load(main_path, NULL, NULL, &root, &err), 0);
  assert_int_equal(root->nchildren, 1);
  atr_conf_free(root);
  free(main_path);
}

static void an_error_in_conf_d_names_that_file(void **state) {
  write_file(*state, "atrium.yaml", "a: 1\n");
  make_dir(*state, "conf.d");
  write_file(*state, "conf.d/50-bad.yaml", "a: 2\na: 3\n");
  char *main_path = path_in(*state, "atrium.yaml");
  char *bad = path_in(*state, "conf.d/50-bad.yaml");
  char *expected = NULL;
  assert_true(asprintf(&expected,
                       "%s:2:1: duplicate key \"a\" (first on line "
                       "1, again on line 2); keep only one",
                       bad) > 0);
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  assert_int_equal(atr_conf_load(main_path, NULL, NULL, &root, &err),
                   ATR_ECONFIG);
  assert_null(root);
  assert_string_equal(err, expected);
  free(err);
  free(expected);
  free(bad);
  free(main_path);
}

static void
without_a_main_file_the_embedded_text_and_config_conf_d_are_used(void **state) {
  make_dir(*state, "config/conf.d");
  write_file(*state, "config/conf.d/10-local.yaml", "log:\n  level: debug\n");
  char *old_cwd = getcwd(NULL, 0);
  assert_int_equal(chdir(*state), 0);
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  int rc = atr_conf_load(NULL, "(embedded atrium.yaml)",
                         "http:\n  address: 127.0.0.1:3000\nlog:\n  level: "
                         "info\n",
                         &root, &err);
  assert_int_equal(chdir(old_cwd), 0);
  free(old_cwd);
  assert_int_equal(rc, 0);
  assert_at(atr_conf_get(root, "http.address"), "(embedded atrium.yaml)", 2,
            12);
  assert_string_equal(value_at(root, "log.level"), "debug");
  assert_at(atr_conf_get(root, "log.level"), "config/conf.d/10-local.yaml", 2,
            10);
  atr_conf_free(root);
}

static void merge_replaces_a_map_with_a_scalar_and_back(void **state) {
  (void)state;
  atr_conf_node_t *dst = parse_ok("a:\n  b: 1\nc: 2\n");
  atr_conf_node_t *src = parse_ok("a: flat\nc:\n  d: 3\ne: [x]\n");
  atr_conf_merge(dst, src);
  assert_string_equal(value_at(dst, "a"), "flat");
  assert_string_equal(value_at(dst, "c.d"), "3");
  assert_int_equal(atr_conf_get(dst, "e")->type, ATR_CONF_SEQ);
  assert_int_equal(dst->nchildren, 3);
  atr_conf_free(dst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_node_knows_where_it_was_written),
      cmocka_unit_test(scalars_keep_their_text_and_null_spellings_are_null),
      cmocka_unit_test(an_empty_file_is_an_empty_map),
      cmocka_unit_test(get_follows_dotted_paths_through_maps_only),
      cmocka_unit_test(a_syntax_error_points_at_the_line),
      cmocka_unit_test(invalid_utf8_is_located_by_line),
      cmocka_unit_test(anchors_aliases_and_tags_are_refused),
      cmocka_unit_test(a_duplicate_key_names_both_lines),
      cmocka_unit_test(the_top_level_must_be_a_map),
      cmocka_unit_test(a_second_document_is_refused),
      cmocka_unit_test(absurd_nesting_is_refused_before_it_exhausts_the_stack),
      cmocka_unit_test(keys_must_be_single_values),
      cmocka_unit_test(merge_replaces_a_map_with_a_scalar_and_back),
      cmocka_unit_test_setup_teardown(a_missing_file_says_so, make_tmpdir,
                                      remove_tmpdir),
      cmocka_unit_test_setup_teardown(
          conf_d_files_merge_over_the_main_file_in_name_order, make_tmpdir,
          remove_tmpdir),
      cmocka_unit_test_setup_teardown(a_missing_conf_d_is_fine, make_tmpdir,
                                      remove_tmpdir),
      cmocka_unit_test_setup_teardown(an_error_in_conf_d_names_that_file,
                                      make_tmpdir, remove_tmpdir),
      cmocka_unit_test_setup_teardown(
          without_a_main_file_the_embedded_text_and_config_conf_d_are_used,
          make_tmpdir, remove_tmpdir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
