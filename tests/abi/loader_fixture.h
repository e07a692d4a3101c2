/* tests/abi/loader_fixture.h — the setting test_loader.c runs in.
 *
 * suite_setup copies every fixture_*.so built beside the test into a
 * private plugin directory (plugdir, mode 0755) and suite_teardown removes
 * it and every scratch_dir(); test_setup captures the log of one test
 * (log_get, assert_logged) and test_teardown checks that the test's loader
 * left no route or metric behind. The helpers fail the running cmocka test
 * on any surprise. Strings returned are malloc'd unless said otherwise.
 * One thread.
 */
#ifndef ATRIUM_TESTS_LOADER_FIXTURE_H
#define ATRIUM_TESTS_LOADER_FIXTURE_H

#include <sys/types.h>

#include "atrium/host.h"
#include "conf.h"
#include "loader.h"

#ifndef ATR_FIXTURE_DIR
#error "ATR_FIXTURE_DIR must name the directory of the fixture plugins"
#endif

extern char *plugdir; /* realpath of the private plugin directory */

char *fmt(const char *f, ...) ATR_PRINTF(1, 2);
void copy_file(const char *src, const char *dst, mode_t mode);
char *new_dir(void);
/* A directory removed at the end of the suite (at most 8). */
char *scratch_dir(void);
/* A copy of fixture `name` in `dir` with `mode`; returns its path. */
char *copy_fixture(const char *name, const char *dir, mode_t mode);
void rm_tree(char *dir);
/* Environments for atr_loader_configure: none, and one that sets
 * ATRIUM_PLUGINS_FIXTURE_OPTS_ENDPOINT. */
const char *no_env(const char *name);
const char *test_env(const char *name);
atr_conf_node_t *yaml(const char *text);
void loader_in(atr_loader_t *l, const char *dir);
/* Open must refuse with exactly `expected` and keep nothing. */
void expect_refusal(atr_loader_t *l, const char *name, const char *file,
                    const char *expected);
atr_handle_t *open_ok(atr_loader_t *l, const char *name);
void configure_ok(atr_handle_t *h, const char *text);
void start_ok(atr_handle_t *h);
/* Configuring fixture_opts with `text` must fail with exactly `expected`,
 * marking the plugin failed. */
void expect_config_error(const char *text, const char *expected);
void log_reset(void);
const char *log_get(void); /* borrowed until the next log_reset */
void assert_logged(const char *line);
/* The file's text, or NULL when it does not exist. */
char *read_text(const char *path);

int suite_setup(void **state);
int suite_teardown(void **state);
int test_setup(void **state);
int test_teardown(void **state);

#endif
