/* The one command table: `atrium --help` is written from it, a command is
 * run with the arguments after its name, and help, no command or an
 * unknown one end with the exit codes users script against. And a
 * plugin's facts as the CLI reads them, without the loader's structs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli_command.h"
#include "plugin_facts.h"

static const char *ran_name;
static int ran_argc;
static char **ran_argv;

static int record(const char *name, int argc, char **argv) {
  ran_name = name;
  ran_argc = argc;
  ran_argv = argv;
  return 7;
}

static const atr_cli_command_t table[] = {
    {"list", "  list | show NAME   workspaces\n", record, NULL},
    {"show", NULL, record, NULL},
    {"version", "  version            print it\n", record, NULL},
    {NULL, NULL, NULL, NULL},
};

static char *usage_text(void) {
  FILE *f = tmpfile();
  assert_non_null(f);
  atr_cli_write_usage(table, f);
  long n = ftell(f);
  char *text = calloc((size_t)n + 1, 1);
  rewind(f);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return text;
}

static void help_lists_each_summary_once_in_table_order(void **state) {
  (void)state;
  char *text = usage_text();
  const char *head = "usage: atrium <command> [options]\n\ncommands:\n"
                     "  list | show NAME   workspaces\n"
                     "  version            print it\n"
                     "\ncommon options:\n";
  assert_memory_equal(text, head, strlen(head));
  free(text);
}

static void a_command_runs_with_the_arguments_after_its_name(void **state) {
  (void)state;
  char *argv[] = {"atrium", "show", "ws1", "--json", NULL};
  ran_name = NULL;
  assert_int_equal(atr_cli_dispatch(table, 4, argv), 7);
  assert_string_equal(ran_name, "show");
  assert_int_equal(ran_argc, 2);
  assert_ptr_equal(ran_argv, &argv[2]);
}

static void
help_exits_0_and_a_missing_or_unknown_command_exits_2(void **state) {
  (void)state;
  char *help[] = {"atrium", "--help", NULL};
  char *word[] = {"atrium", "help", NULL};
  char *bogus[] = {"atrium", "bogus", NULL};
  char *none[] = {"atrium", NULL};
  ran_name = NULL;
  assert_int_equal(atr_cli_dispatch(table, 2, help), 0);
  assert_int_equal(atr_cli_dispatch(table, 2, word), 0);
  assert_int_equal(atr_cli_dispatch(table, 2, bogus), 2);
  assert_int_equal(atr_cli_dispatch(table, 1, none), 2);
  assert_null(ran_name);
}

static void find_names_the_entry_or_nothing(void **state) {
  (void)state;
  assert_ptr_equal(atr_cli_find(table, "version"), &table[2]);
  assert_null(atr_cli_find(table, "versions"));
}

static const atr_option_t echo_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "greeting",
     .default_value = "hi",
     .offset = ATR_OPT_NO_OFFSET,
     .description = "What to say."},
    {.name = NULL},
};

static void a_plugins_facts_come_from_its_descriptor(void **state) {
  (void)state;
  atr_plugin_t desc = {.abi_major = 1,
                       .abi_minor = 0,
                       .kind = ATR_KIND_PROVISIONER,
                       .name = "provisioner_echo",
                       .version = "1.2.3",
                       .description = "Says hi.",
                       .options = echo_options};
  /* options: the table the loader checked and reads with the plugin's
   * stride (atr_plugin_options), not the descriptor's raw pointer */
  atr_handle_t h = {.name = "provisioner_echo",
                    .file = "/p/provisioner_echo.so",
                    .desc = &desc,
                    .options = echo_options};
  atr_handle_t *list[] = {&h};
  atr_loader_t l = {.plugins = list, .nplugins = 1};
  atr_plugin_facts_t f;
  assert_true(atr_plugin_facts_at(&l, 0, &f));
  assert_string_equal(f.name, "provisioner_echo");
  assert_string_equal(f.file, "/p/provisioner_echo.so");
  assert_true(f.described);
  assert_int_equal(f.kind_id, ATR_KIND_PROVISIONER);
  assert_string_equal(f.kind, "provisioner");
  assert_string_equal(f.version, "1.2.3");
  assert_ptr_equal(f.options, echo_options);
  assert_ptr_equal(f.values, &h.opts);
  assert_false(atr_plugin_facts_at(&l, 1, &f));
  assert_null(atr_plugin_dir_at(&l, 0));
  h.desc = NULL; /* refused before its descriptor was checked */
  atr_plugin_facts(&h, &f);
  assert_false(f.described);
  assert_null(f.kind);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(help_lists_each_summary_once_in_table_order),
      cmocka_unit_test(a_command_runs_with_the_arguments_after_its_name),
      cmocka_unit_test(help_exits_0_and_a_missing_or_unknown_command_exits_2),
      cmocka_unit_test(find_names_the_entry_or_nothing),
      cmocka_unit_test(a_plugins_facts_come_from_its_descriptor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
