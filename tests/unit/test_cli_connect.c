/* What `atrium config-ssh` does to ~/.ssh/config (its managed block:
 * added, replaced, removed, everything else kept byte for byte, CRLF
 * files and files without a final newline), the diff --dry-run prints,
 * and the command lines of `port-forward --tcp` and of WORKSPACE refs
 * (core/cli/cli_config_ssh.c, cli_port_forward.c, cli_tunnel.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli_connect.h"
#include "cli_tunnel.h"

#define START ATR__SSH_CONFIG_START
#define END ATR__SSH_CONFIG_END

static const char block[] = "Host atrium.dev\n  ProxyCommand x\n";
static const char block2[] = "Host atrium.web\n  ProxyCommand y\n";

/* old edited with b (NULL: removed); asserts it worked. */
static char *edit(const char *old, const char *b) {
  char *out = NULL;
  size_t len = 0;
  assert_int_equal(atr__ssh_config_edit(old, strlen(old), b, &out, &len), 0);
  assert_non_null(out);
  assert_int_equal(strlen(out), len);
  return out;
}

static void a_fresh_file_gets_only_the_block(void **state) {
  (void)state;
  char *out = edit("", block);
  assert_string_equal(out,
                      START "\n"
                            "Host atrium.dev\n  ProxyCommand x\n" END "\n");
  free(out);
}

static void
what_is_there_is_kept_and_the_block_goes_after_a_blank_line(void **state) {
  (void)state;
  const char *old = "# mine\nHost a\n  User b  \n\n\tIdentityFile ~/k\n";
  char *out = edit(old, block);
  assert_memory_equal(out, old, strlen(old));
  assert_string_equal(out + strlen(old),
                      "\n" START "\nHost atrium.dev\n  ProxyCommand x\n" END
                      "\n");
  free(out);
}

static void writing_the_same_block_twice_changes_nothing(void **state) {
  (void)state;
  const char *old = "Host a\n  User b\n";
  char *once = edit(old, block);
  char *twice = edit(once, block);
  assert_string_equal(once, twice);
  free(once);
  free(twice);
}

static void a_block_in_the_middle_is_replaced_in_place(void **state) {
  (void)state;
  const char *old =
      "Host a\n" START "\nHost atrium.old\n" END "\nHost z\n  User q\n";
  char *out = edit(old, block2);
  assert_string_equal(out, "Host a\n" START "\nHost atrium.web\n  "
                           "ProxyCommand y\n" END "\nHost z\n  User q\n");
  char *removed = edit(out, NULL);
  assert_string_equal(removed, "Host a\nHost z\n  User q\n");
  free(out);
  free(removed);
}

static void removing_the_block_gives_back_the_file_before_it(void **state) {
  (void)state;
  const char *old = "Host a\n  User b\n";
  char *added = edit(old, block);
  char *removed = edit(added, NULL);
  assert_string_equal(removed, old);
  char *again = edit(removed, NULL);
  assert_string_equal(again, old);
  char *fresh = edit("", block);
  char *from_empty = edit(fresh, NULL);
  assert_string_equal(from_empty, "");
  free(fresh);
  free(added);
  free(removed);
  free(again);
  free(from_empty);
}

static void a_crlf_file_gets_crlf_lines(void **state) {
  (void)state;
  const char *old = "Host a\r\n  User b\r\n";
  char *out = edit(old, block);
  assert_string_equal(out,
                      "Host a\r\n  User b\r\n\r\n" START
                      "\r\nHost atrium.dev\r\n  ProxyCommand x\r\n" END "\r\n");
  char *twice = edit(out, block);
  assert_string_equal(twice, out);
  char *removed = edit(out, NULL);
  assert_string_equal(removed, old);
  free(out);
  free(twice);
  free(removed);
}

static void
a_file_without_a_final_newline_gets_one_before_the_block(void **state) {
  (void)state;
  char *out = edit("Host a", block);
  assert_string_equal(out, "Host a\n\n" START
                           "\nHost atrium.dev\n  ProxyCommand x\n" END "\n");
  char *removed = edit(out, NULL);
  assert_string_equal(removed, "Host a\n");
  /* An end marker at the very end, without its newline, still ends it. */
  const char *cut = "Host a\n" START "\nHost atrium.old\n" END;
  char *replaced = edit(cut, block);
  assert_string_equal(replaced, "Host a\n" START "\nHost atrium.dev\n  "
                                "ProxyCommand x\n" END "\n");
  free(out);
  free(removed);
  free(replaced);
}

static void a_start_without_an_end_or_two_blocks_are_left_alone(void **state) {
  (void)state;
  const char *open = "Host a\n" START "\nHost atrium.x\n";
  const char *two = START "\n" END "\n" START "\n" END "\n";
  char *out = (char *)1;
  size_t len = 9;
  assert_int_equal(atr__ssh_config_edit(open, strlen(open), block, &out, &len),
                   -2);
  assert_null(out);
  assert_int_equal(atr__ssh_config_edit(two, strlen(two), NULL, &out, &len),
                   -2);
  /* A marker inside a longer line is not a marker. */
  const char *quoted = "# see " START "\nHost a\n";
  char *kept = edit(quoted, NULL);
  assert_string_equal(kept, quoted);
  free(kept);
}

static void
the_dry_run_diff_is_unified_with_three_lines_of_context(void **state) {
  (void)state;
  const char *a = "1\n2\n3\n4\n5\n";
  const char *b = "1\n2\n3\n4\n5\n\nnew\n";
  char *d = atr__ssh_config_diff("/h/.ssh/config", a, strlen(a), b, strlen(b));
  assert_string_equal(d, "--- /h/.ssh/config\n+++ /h/.ssh/config\n"
                         "@@ -3,3 +3,5 @@\n 3\n 4\n 5\n+\n+new\n");
  free(d);
  d = atr__ssh_config_diff("f", a, strlen(a), a, strlen(a));
  assert_string_equal(d, "");
  free(d);
  d = atr__ssh_config_diff("f", "", 0, "x", 1);
  assert_string_equal(d, "--- f\n+++ f\n@@ -0,0 +1,1 @@\n+x\n"
                         "\\ No newline at end of file\n");
  free(d);
  const char *c = "a\nb\nc\nd\ne\nf\ng\nh\n";
  const char *e = "a\nb\nc\nd\nX\nf\ng\nh\n";
  d = atr__ssh_config_diff("f", c, strlen(c), e, strlen(e));
  assert_string_equal(d, "--- f\n+++ f\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+X\n"
                         " f\n g\n h\n");
  free(d);
}

/* ---- --tcp ---------------------------------------------------------------- */

static void tcp_specs_name_the_address_and_both_ports(void **state) {
  (void)state;
  atr__forward_t f;
  char err[256];
  assert_int_equal(atr__forward_parse("8080:80", &f, err, sizeof err), 0);
  assert_string_equal(f.addr, "127.0.0.1");
  assert_int_equal(f.local_port, 8080);
  assert_int_equal(f.remote_port, 80);
  assert_int_equal(atr__forward_parse("0.0.0.0:0:22", &f, err, sizeof err), 0);
  assert_string_equal(f.addr, "0.0.0.0");
  assert_int_equal(f.local_port, 0);
  assert_int_equal(f.remote_port, 22);
  assert_int_equal(atr__forward_parse("[::1]:9000:65535", &f, err, sizeof err),
                   0);
  assert_string_equal(f.addr, "::1");
  assert_int_equal(f.local_port, 9000);
  assert_int_equal(f.remote_port, 65535);
  assert_int_equal(atr__forward_parse("localhost:1:2", &f, err, sizeof err), 0);
  assert_string_equal(f.addr, "127.0.0.1");
}

static void expect_tcp_error(const char *spec, const char *message) {
  atr__forward_t f;
  char err[256];
  assert_int_equal(atr__forward_parse(spec, &f, err, sizeof err), -1);
  assert_string_equal(err, message);
}

static void bad_tcp_specs_are_refused_naming_the_flag(void **state) {
  (void)state;
  expect_tcp_error("80", "--tcp 80: use [ADDR:]LOCAL:REMOTE, e.g. --tcp "
                         "8080:80");
  expect_tcp_error("8080:0", "--tcp 8080:0: REMOTE is a port from 1 to 65535");
  expect_tcp_error("8080:65536",
                   "--tcp 8080:65536: REMOTE is a port from 1 to 65535");
  expect_tcp_error("x:80", "--tcp x:80: LOCAL is a port from 0 (any free "
                           "one) to 65535");
  expect_tcp_error(":80", "--tcp :80: LOCAL is a port from 0 (any free one) "
                          "to 65535");
  expect_tcp_error("8080:-1",
                   "--tcp 8080:-1: REMOTE is a port from 1 to 65535");
  expect_tcp_error("::1:80:81", "--tcp ::1:80:81: an IPv6 ADDR is written "
                                "[ADDR]:LOCAL:REMOTE");
  expect_tcp_error("[::1]80:81", "--tcp [::1]80:81: an IPv6 ADDR is written "
                                 "[ADDR]:LOCAL:REMOTE");
  expect_tcp_error("example.com:80:81",
                   "--tcp example.com:80:81: ADDR is an IP address "
                   "(127.0.0.1, ::1, 0.0.0.0)");
  expect_tcp_error(":1:2", "--tcp :1:2: ADDR is an IP address");
}

/* ---- WORKSPACE ------------------------------------------------------------ */

static void expect_ref(const char *ref, const char *owner, const char *name,
                       const char *agent) {
  char o[64], n[64], a[64], err[320];
  assert_int_equal(
      atr__tunnel_parse_ref(ref, o, n, a, sizeof o, err, sizeof err), 0);
  assert_string_equal(o, owner);
  assert_string_equal(n, name);
  assert_string_equal(a, agent);
}

static void workspace_refs_name_owner_workspace_and_agent(void **state) {
  (void)state;
  expect_ref("dev", "me", "dev", "");
  expect_ref("alice/dev", "alice", "dev", "");
  expect_ref("dev.main", "me", "dev", "main");
  expect_ref("alice/dev.main", "alice", "dev", "main");
  const char *bad[] = {"",       "/dev",    "a/b/c",   "dev.",
                       "alice/", "dev.a.b", "alice/.x"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char o[64], n[64], a[64], err[320], want[320];
    assert_int_equal(
        atr__tunnel_parse_ref(bad[i], o, n, a, sizeof o, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "\"%s\" is not a workspace: use NAME, OWNER/NAME, and .AGENT "
             "after it to pick an agent",
             bad[i]);
    assert_string_equal(err, want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_fresh_file_gets_only_the_block),
      cmocka_unit_test(
          what_is_there_is_kept_and_the_block_goes_after_a_blank_line),
      cmocka_unit_test(writing_the_same_block_twice_changes_nothing),
      cmocka_unit_test(a_block_in_the_middle_is_replaced_in_place),
      cmocka_unit_test(removing_the_block_gives_back_the_file_before_it),
      cmocka_unit_test(a_crlf_file_gets_crlf_lines),
      cmocka_unit_test(
          a_file_without_a_final_newline_gets_one_before_the_block),
      cmocka_unit_test(a_start_without_an_end_or_two_blocks_are_left_alone),
      cmocka_unit_test(the_dry_run_diff_is_unified_with_three_lines_of_context),
      cmocka_unit_test(tcp_specs_name_the_address_and_both_ports),
      cmocka_unit_test(bad_tcp_specs_are_refused_naming_the_flag),
      cmocka_unit_test(workspace_refs_name_owner_workspace_and_agent),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
