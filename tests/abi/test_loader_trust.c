/* tests/abi/test_loader_trust.c — who may change a plugin before the
 * loader runs it (step 2 of core/plugin/loader.h).
 *
 * A plugin file, its plugin directory and every directory above them must
 * be owned by root or the server's user and writable by no one else;
 * above the plugin directory a sticky world-writable directory (/tmp, where
 * every directory of these tests lives) is accepted. Each refusal is
 * checked against its exact one-line message, which names the path and the
 * command that fixes it, and the same file loads once it is fixed. The
 * tests that hand a file to another user run only as root (as CI does) and
 * are skipped otherwise. The setting is loader_fixture.c's.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "loader.h"
#include "loader_fixture.h"

/* Someone who is neither root nor us: the build user, else nobody. */
static uid_t other_uid(void) {
  const struct passwd *pw = getpwnam("atrium-build");
  return pw ? pw->pw_uid : 65534;
}

/* As the loader names a user: "uid 999 (atrium-build)". */
static char *uid_text(uid_t uid) {
  const struct passwd *pw = getpwuid(uid);
  return pw ? fmt("uid %u (%s)", (unsigned)uid, pw->pw_name)
            : fmt("uid %u", (unsigned)uid);
}

static char *owner_message(const char *what, const char *path, uid_t owner) {
  char *who = uid_text(owner), *self = uid_text(geteuid());
  char *msg = fmt("plugin fixture_good: %s%s is owned by %s, not by root or "
                  "the server's user (%s); run chown root %s",
                  what, path, who, self, path);
  free(who);
  free(self);
  return msg;
}

static void open_and_close(const char *dir) {
  atr_loader_t l;
  loader_in(&l, dir);
  open_ok(&l, "fixture_good");
  atr_loader_shutdown(&l);
}

static void refused_in(const char *dir, const char *expected) {
  atr_loader_t l;
  loader_in(&l, dir);
  expect_refusal(&l, "fixture_good", NULL, expected);
  atr_loader_shutdown(&l);
}

static void a_world_writable_plugin_directory_is_refused(void **state) {
  char *dir = scratch_dir();
  free(copy_fixture("fixture_good", dir, 0755));
  assert_int_equal(chmod(dir, 0777), 0);
  char *want = fmt("plugin fixture_good: the plugin directory %s is group- or "
                   "world-writable (mode 0777); run chmod go-w %s",
                   dir, dir);
  refused_in(dir, want);
  free(want);
  /* The sticky bit does not make a plugin directory anyone's to fill. */
  assert_int_equal(chmod(dir, 01777), 0);
  want = fmt("plugin fixture_good: the plugin directory %s is group- or "
             "world-writable (mode 1777); run chmod go-w %s",
             dir, dir);
  refused_in(dir, want);
  free(want);
  assert_int_equal(chmod(dir, 0775), 0);
  want = fmt("plugin fixture_good: the plugin directory %s is group- or "
             "world-writable (mode 0775); run chmod go-w %s",
             dir, dir);
  refused_in(dir, want);
  free(want);
  assert_int_equal(chmod(dir, 0755), 0);
  open_and_close(dir);
}

static void a_group_writable_plugin_file_is_refused(void **state) {
  char *dir = scratch_dir();
  char *file = copy_fixture("fixture_good", dir, 0664);
  char *want = fmt("plugin fixture_good: %s is group- or world-writable "
                   "(mode 0664); run chmod go-w %s",
                   file, file);
  refused_in(dir, want);
  free(want);
  assert_int_equal(chmod(file, 0644), 0);
  open_and_close(dir);
  free(file);
}

static void a_plugin_owned_by_another_user_is_refused(void **state) {
  if (geteuid() != 0)
    skip(); /* only root can give a file away */
  char *dir = scratch_dir();
  char *file = copy_fixture("fixture_good", dir, 0755);
  assert_int_equal(chown(file, other_uid(), (gid_t)-1), 0);
  char *want = owner_message("", file, other_uid());
  refused_in(dir, want);
  free(want);
  assert_int_equal(chown(file, 0, (gid_t)-1), 0);
  /* chown clears no mode bit the loader cares about; 0755 still. */
  open_and_close(dir);
  /* The directory is just as much the plugin's. */
  assert_int_equal(chown(dir, other_uid(), (gid_t)-1), 0);
  want = owner_message("the plugin directory ", dir, other_uid());
  refused_in(dir, want);
  free(want);
  assert_int_equal(chown(dir, 0, (gid_t)-1), 0);
  open_and_close(dir);
  free(file);
}

/* <scratch>/up/plugins: the plugin directory is fine, the one above not. */
static void a_directory_above_the_plugin_directory_counts_too(void **state) {
  char *base = scratch_dir();
  char *up = fmt("%s/up", base), *dir = fmt("%s/up/plugins", base);
  assert_int_equal(mkdir(up, 0755), 0);
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_equal(chmod(up, 0777), 0);
  free(copy_fixture("fixture_good", dir, 0755));
  char *want = fmt("plugin fixture_good: the directory %s is group- or "
                   "world-writable (mode 0777); run chmod go-w %s",
                   up, up);
  refused_in(dir, want);
  free(want);
  /* Sticky, as /tmp is: nobody else may rename or remove plugins/. */
  assert_int_equal(chmod(up, 01777), 0);
  open_and_close(dir);
  if (geteuid() == 0) {
    assert_int_equal(chmod(up, 0755), 0);
    assert_int_equal(chown(up, other_uid(), (gid_t)-1), 0);
    want = owner_message("the directory ", up, other_uid());
    refused_in(dir, want);
    free(want);
  }
  free(up);
  free(dir);
}

/* A symlink in a good directory is judged where it leads. */
static void a_symlink_is_checked_where_it_leads(void **state) {
  char *good = scratch_dir(), *open = scratch_dir();
  char *target = copy_fixture("fixture_good", open, 0755);
  assert_int_equal(chmod(open, 0777), 0);
  char *link = fmt("%s/fixture_good.so", good);
  assert_int_equal(symlink(target, link), 0);
  const char *dirs[] = {good, open};
  atr_loader_t l;
  char *err = NULL;
  assert_int_equal(atr_loader_init(&l, dirs, 2, &err), 0);
  char *want = fmt("plugin fixture_good: the plugin directory %s is group- or "
                   "world-writable (mode 0777); run chmod go-w %s",
                   open, open);
  expect_refusal(&l, "fixture_good", NULL, want);
  free(want);
  assert_int_equal(chmod(open, 0755), 0);
  atr_handle_t *h = open_ok(&l, "fixture_good");
  assert_string_equal(h->file, target);
  atr_loader_shutdown(&l);
  free(link);
  free(target);
}

/* A FIFO would block dlopen forever; it is refused before. */
static void a_file_that_is_not_regular_is_refused(void **state) {
  char *dir = scratch_dir();
  char *fifo = fmt("%s/fixture_good.so", dir);
  assert_int_equal(mkfifo(fifo, 0644), 0);
  char *want = fmt("plugin fixture_good: %s is not a regular file", fifo);
  refused_in(dir, want);
  free(want);
  free(fifo);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(a_world_writable_plugin_directory_is_refused),
      T(a_group_writable_plugin_file_is_refused),
      T(a_plugin_owned_by_another_user_is_refused),
      T(a_directory_above_the_plugin_directory_counts_too),
      T(a_symlink_is_checked_where_it_leads),
      T(a_file_that_is_not_regular_is_refused),
  };
  return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
