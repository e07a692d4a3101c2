/* The escape suite: a policy that tries to leave the sandbox, outlive its
 * limits or break the process is denied with a message naming the file,
 * the line and the cause — exactly — and the process goes on: every case
 * ends by evaluating an ordinary policy, which still decides as before,
 * and every case finishes within a bound of its time limit.
 *
 * Each policy is "escape.lua", its hook workspace_create, the trick on the
 * line the message names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "policy.h"

#define INPUT                                                                  \
  "{\"user\": {\"name\": \"alice\", \"email\": \"alice@example.com\","         \
  " \"roles\": [\"member\"], \"groups\": [\"dev\"]},"                          \
  " \"organization\": {\"name\": \"default\"},"                                \
  " \"template\": {\"id\": \"t1\", \"name\": \"docker-dev\"},"                 \
  " \"workspace\": {\"name\": \"dev\"}, \"transition\": \"start\","            \
  " \"parameters\": {\"old\": null, \"new\": {\"cpus\": \"2\"}}}"

#define DENY_LIMIT "instruction limit exceeded (1000000 instructions)"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An ordinary policy still works: the process was not harmed. */
static void assert_unharmed(void) {
  static const char text[] =
      "function workspace_create(input)\n"
      "  if policy.number(input, 'cpus') > 1 then\n"
      "    policy.warn(('%s asks for %d CPUs'):format(input.user.name,\n"
      "                policy.number(input, 'cpus')))\n"
      "  end\n"
      "  policy.set('memory', 4)\n"
      "end\n";
  atr_policy_t *p = NULL;
  char *err = NULL;
  assert_int_equal(
      atr_policy_load("fine.lua", text, sizeof text - 1, NULL, &p, &err), 0);
  json_t *in = json_loads(INPUT, 0, NULL);
  atr_decision_t d;
  assert_int_equal(atr_policy_eval(p, "workspace_create", in, NULL, &d), 0);
  assert_int_equal(d.ndenies, 0);
  assert_int_equal(d.nwarnings, 1);
  assert_string_equal(d.warnings[0].message, "alice asks for 2 CPUs");
  assert_string_equal(atr_decision_get_set(&d, "memory"), "4");
  atr_decision_clear(&d);
  json_decref(in);
  atr_policy_unref(p);
}

/* Evaluate text as escape.lua with lim (NULL: defaults) into *d. */
static void eval_with(const char *text, const atr_policy_limits_t *lim,
                      atr_decision_t *d) {
  atr_policy_t *p = NULL;
  char *err = NULL;
  int rc = atr_policy_load("escape.lua", text, strlen(text), lim, &p, &err);
  if (rc != 0)
    fprintf(stderr, "load: %s\n", err ? err : "?");
  assert_int_equal(rc, 0);
  json_t *in = json_loads(INPUT, 0, NULL);
  assert_non_null(in);
  assert_int_equal(atr_policy_eval(p, "workspace_create", in, lim, d), 0);
  json_decref(in);
  atr_policy_unref(p);
}

/* The policy is denied with exactly this one message, nothing else, within
 * max_s seconds. */
static void assert_denied_lim(const char *text, const atr_policy_limits_t *lim,
                              const char *message, double max_s) {
  atr_decision_t d;
  double t = now_s();
  eval_with(text, lim, &d);
  double took = now_s() - t;
  if (d.ndenies != 1 || strcmp(d.denies[0].message, message) != 0)
    fprintf(stderr, "policy:\n%s\nexpected: %s\ngot %zu denies, first: %s\n",
            text, message, d.ndenies, d.ndenies ? d.denies[0].message : "-");
  assert_int_equal(d.ndenies, 1);
  assert_string_equal(d.denies[0].message, message);
  assert_null(d.denies[0].parameter);
  assert_string_equal(d.denies[0].policy, "escape.lua");
  assert_int_equal(d.nwarnings, 0);
  assert_int_equal(d.nsets, 0);
  if (took > max_s)
    fprintf(stderr, "took %.3f s (at most %.3f)\n", took, max_s);
  assert_true(took <= max_s);
  atr_decision_clear(&d);
  assert_unharmed();
}

static void assert_denied(const char *text, const char *message) {
  assert_denied_lim(text, NULL, message, 5.0);
}

/* A loose time limit, so that the instruction or memory limit is the one
 * hit even on a slow, busy machine. */
static const atr_policy_limits_t slow = {0, 20000, 0};

/* ---- code that is not there ---------------------------------------------- */

static void string_dump_is_gone(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  local code = string.dump(function() end)\n"
                "end\n",
                "policy escape.lua:2: attempt to call a nil value (field "
                "'dump')");
}

static void load_refuses_bytecode(void **state) {
  /* The header of a Lua 5.4 binary chunk, written by hand. */
  assert_denied(
      "function workspace_create(input)\n"
      "  local f, err = load('\\27Lua\\84\\0\\25\\147\\r\\n\\26\\n')\n"
      "  error(err, 0)\n"
      "end\n",
      "policy escape.lua:3: attempt to load a binary chunk (mode "
      "is 't')");
  /* The same through a reader function. */
  assert_denied("function workspace_create(input)\n"
                "  local done = false\n"
                "  local f, err = load(function()\n"
                "    if done then return nil end\n"
                "    done = true\n"
                "    return '\\27Lua'\n"
                "  end)\n"
                "  error(err, 0)\n"
                "end\n",
                "policy escape.lua:8: attempt to load a binary chunk (mode "
                "is 't')");
}

static void load_refuses_mode_b(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  load('return 1', 'x', 'b')\n"
                "end\n",
                "policy escape.lua:2: load: mode \"b\" is not allowed in "
                "policies; only text chunks (\"t\") can be loaded");
  assert_denied("function workspace_create(input)\n"
                "  load('return 1', 'x', 'bt')\n"
                "end\n",
                "policy escape.lua:2: load: mode \"bt\" is not allowed in "
                "policies; only text chunks (\"t\") can be loaded");
}

static void load_of_text_works_inside_the_sandbox(void **state) {
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  local f = load('return os, io, debug, string.dump')\n"
            "  policy.warn(tostring(select('#', f())) .. tostring(f()))\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.ndenies, 0);
  assert_string_equal(d.warnings[0].message, "4nil");
  atr_decision_clear(&d);
}

static void libraries_that_are_not_there(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  debug.sethook()\n"
                "end\n",
                "policy escape.lua:2: attempt to index a nil value (global "
                "'debug')");
  assert_denied("function workspace_create(input)\n"
                "  os.execute('touch /tmp/atrium-escaped')\n"
                "end\n",
                "policy escape.lua:2: attempt to index a nil value (global "
                "'os')");
  assert_denied("function workspace_create(input)\n"
                "  io.open('/etc/passwd')\n"
                "end\n",
                "policy escape.lua:2: attempt to index a nil value (global "
                "'io')");
  assert_denied("function workspace_create(input)\n"
                "  local os = require('os')\n"
                "end\n",
                "policy escape.lua:2: attempt to call a nil value (global "
                "'require')");
  assert_denied("function workspace_create(input)\n"
                "  package.loadlib('libc.so.6', 'system')\n"
                "end\n",
                "policy escape.lua:2: attempt to index a nil value (global "
                "'package')");
  assert_denied("function workspace_create(input)\n"
                "  dofile('/etc/passwd')\n"
                "end\n",
                "policy escape.lua:2: attempt to call a nil value (global "
                "'dofile')");
  assert_denied("function workspace_create(input)\n"
                "  loadfile('/etc/passwd')\n"
                "end\n",
                "policy escape.lua:2: attempt to call a nil value (global "
                "'loadfile')");
  /* No coroutines: no yielding out of the hook, no hook-less threads. */
  assert_denied("function workspace_create(input)\n"
                "  coroutine.wrap(function() while true do end end)()\n"
                "end\n",
                "policy escape.lua:2: attempt to index a nil value (global "
                "'coroutine')");
}

static void collectgarbage_counts_only(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  collectgarbage('collect')\n"
                "end\n",
                "policy escape.lua:2: collectgarbage(\"collect\") is not "
                "allowed in policies; only collectgarbage(\"count\") is");
  assert_denied("function workspace_create(input)\n"
                "  collectgarbage()\n"
                "end\n",
                "policy escape.lua:2: collectgarbage(\"collect\") is not "
                "allowed in policies; only collectgarbage(\"count\") is");
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  local kib = collectgarbage('count')\n"
            "  if kib > 1 and kib < 8192 then policy.warn('counted') end\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.ndenies, 0);
  assert_string_equal(d.warnings[0].message, "counted");
  atr_decision_clear(&d);
}

/* ---- read-only libraries and input --------------------------------------- */

static void string_metatable_is_read_only(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  getmetatable('').__index = function() return 'pwned' end\n"
                "end\n",
                "policy escape.lua:2: the string metatable is read-only "
                "(cannot set field '__index')");
  assert_denied("function workspace_create(input)\n"
                "  getmetatable('').__index.upper = nil\n"
                "end\n",
                "policy escape.lua:2: the string library is read-only "
                "(cannot set field 'upper')");
  assert_denied("function workspace_create(input)\n"
                "  setmetatable(getmetatable(''), {})\n"
                "end\n",
                "policy escape.lua:2: cannot change a protected metatable");
  /* Strings still have their methods. */
  atr_decision_t d;
  eval_with(
      "function workspace_create(input)\n"
      "  policy.warn(('abc'):upper() .. getmetatable('').__index.rep('x', 2))\n"
      "end\n",
      NULL, &d);
  assert_string_equal(d.warnings[0].message, "ABCxx");
  atr_decision_clear(&d);
}

static void libraries_are_read_only(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  string.format = function() return '' end\n"
                "end\n",
                "policy escape.lua:2: the string library is read-only "
                "(cannot set field 'format')");
  assert_denied("function workspace_create(input)\n"
                "  rawset(string, 'upper', nil)\n"
                "end\n",
                "policy escape.lua:2: rawset: the string library is "
                "read-only");
  assert_denied("function workspace_create(input)\n"
                "  rawset(policy, 'deny', function() end)\n"
                "end\n",
                "policy escape.lua:2: rawset: the policy library is "
                "read-only");
  assert_denied("function workspace_create(input)\n"
                "  table.insert(math, 1)\n"
                "end\n",
                "policy escape.lua:2: the math library is read-only (cannot "
                "set [1])");
  assert_denied("function workspace_create(input)\n"
                "  setmetatable(utf8, nil)\n"
                "end\n",
                "policy escape.lua:2: cannot change a protected metatable");
}

static void input_is_deeply_read_only(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  input.user.name = 'root'\n"
                "end\n",
                "policy escape.lua:2: input.user is read-only (cannot set "
                "field 'name')");
  assert_denied("function workspace_create(input)\n"
                "  setmetatable(input, {})\n"
                "end\n",
                "policy escape.lua:2: cannot change a protected metatable");
  assert_denied("function workspace_create(input)\n"
                "  rawset(input.parameters.new, 'cpus', '64')\n"
                "end\n",
                "policy escape.lua:2: rawset: input.parameters.new is "
                "read-only");
  assert_denied("function workspace_create(input)\n"
                "  table.insert(input.user.roles, 'owner')\n"
                "end\n",
                "policy escape.lua:2: input.user.roles is read-only (cannot "
                "set [2])");
  /* pairs() does not hand out the table behind the proxy. */
  assert_denied("function workspace_create(input)\n"
                "  local _, behind = pairs(input)\n"
                "  behind.user = {}\n"
                "end\n",
                "policy escape.lua:3: input is read-only (cannot set field "
                "'user')");
  /* Reading works as for any table. */
  atr_decision_t d;
  eval_with(
      "function workspace_create(input)\n"
      "  local keys = {}\n"
      "  for k in pairs(input.user) do keys[#keys + 1] = k end\n"
      "  table.sort(keys)\n"
      "  policy.warn(table.concat(keys, ',') .. ' ' .. #input.user.roles\n"
      "    .. ' ' .. input.user.roles[1] .. ' ' .. type(input)\n"
      "    .. ' ' .. tostring(getmetatable(input))\n"
      "    .. ' ' .. tostring(input.parameters.old))\n"
      "end\n",
      NULL, &d);
  assert_int_equal(d.ndenies, 0);
  assert_string_equal(d.warnings[0].message,
                      "email,groups,name,roles 1 member table read-only nil");
  atr_decision_clear(&d);
}

static void no_gc_metamethods(void **state) {
  /* Lua runs __gc with hooks off: a looping finalizer would be out of
   * reach of every limit. */
  assert_denied("function workspace_create(input)\n"
                "  setmetatable({}, {__gc = function() while true do end "
                "end})\n"
                "end\n",
                "policy escape.lua:2: setmetatable: __gc metamethods are not "
                "allowed in policies");
}

/* ---- limits -------------------------------------------------------------- */

static void an_infinite_loop_hits_the_instruction_limit(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  while true do end\n"
                    "end\n",
                    &slow, "policy escape.lua:2: " DENY_LIMIT, 10.0);
}

static void an_infinite_loop_hits_the_time_limit(void **state) {
  atr_policy_limits_t lim = {UINT64_MAX / 2, 50, 0};
  assert_denied_lim("function workspace_create(input)\n"
                    "  local n = 0\n"
                    "  while true do n = n + 1 end\n"
                    "end\n",
                    &lim, "policy escape.lua:3: time limit exceeded (50ms)",
                    2.0);
}

static void a_loop_inside_pcall_cannot_swallow_the_limit(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  pcall(function() while true do end end)\n"
                    "  policy.warn('escaped')\n"
                    "end\n",
                    &slow, "policy escape.lua:2: " DENY_LIMIT, 10.0);
  assert_denied_lim("function workspace_create(input)\n"
                    "  local function f() pcall(f) while true do end end\n"
                    "  pcall(f)\n"
                    "  policy.warn('escaped')\n"
                    "end\n",
                    &slow, "policy escape.lua:2: " DENY_LIMIT, 10.0);
}

static void an_xpcall_handler_cannot_swallow_the_limit(void **state) {
  /* The error of a limit comes from inside the count hook, where Lua runs
   * message handlers with hooks off. */
  assert_denied_lim("function workspace_create(input)\n"
                    "  xpcall(error, function() while true do end end)\n"
                    "  policy.warn('escaped')\n"
                    "end\n",
                    &slow, "policy escape.lua:2: " DENY_LIMIT, 10.0);
}

static void a_close_handler_cannot_swallow_the_limit(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  local x <close> = setmetatable({}, {__close = "
                    "function()\n"
                    "    while true do end\n"
                    "  end})\n"
                    "end\n",
                    &slow, "policy escape.lua:3: " DENY_LIMIT, 10.0);
}

static void a_string_bomb_hits_the_memory_limit(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  local s = 'x'\n"
                    "  while true do s = s .. s end\n"
                    "end\n",
                    &slow, "policy escape.lua:3: memory limit exceeded (8MiB)",
                    10.0);
  assert_denied_lim("function workspace_create(input)\n"
                    "  local s = string.rep('x', 1e9)\n"
                    "end\n",
                    &slow, "policy escape.lua:2: memory limit exceeded (8MiB)",
                    10.0);
}

static void a_table_bomb_hits_the_memory_limit(void **state) {
  atr_policy_limits_t lim = {UINT64_MAX / 2, 20000, 0};
  assert_denied_lim("function workspace_create(input)\n"
                    "  local t = {}\n"
                    "  for i = 1, math.huge do t[i] = i end\n"
                    "end\n",
                    &lim, "policy escape.lua:3: memory limit exceeded (8MiB)",
                    10.0);
}

static void a_swallowed_memory_error_still_denies(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  pcall(string.rep, 'x', 1e9)\n"
                    "end\n",
                    &slow, "policy escape.lua: memory limit exceeded (8MiB)",
                    10.0);
}

static void deep_recursion_is_stopped(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  local function f(n) return f(n + 1) + 1 end\n"
                    "  f(1)\n"
                    "end\n",
                    &slow, "policy escape.lua:2: memory limit exceeded (8MiB)",
                    10.0);
  /* Through C: pcall in pcall, until Lua's own C-stack limit. */
  assert_denied_lim("function workspace_create(input)\n"
                    "  local function f()\n"
                    "    local ok, e = pcall(f)\n"
                    "    if not ok then error(e, 0) end\n"
                    "  end\n"
                    "  f()\n"
                    "end\n",
                    &slow, "policy escape.lua:4: C stack overflow", 10.0);
  assert_denied_lim("function workspace_create(input)\n"
                    "  local t = setmetatable({}, {__index = function(t, k)\n"
                    "    return t[k]\n"
                    "  end})\n"
                    "  return t.x\n"
                    "end\n",
                    &slow, "policy escape.lua:3: C stack overflow", 10.0);
}

/* C functions run outside the count hook; those that loop over a length
 * the policy picks are charged for it. */
static void c_loops_are_charged(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  table.move({}, 1, 2^50, 2)\n"
                    "end\n",
                    &slow, "policy escape.lua:2: " DENY_LIMIT, 10.0);
  assert_denied_lim("function workspace_create(input)\n"
                    "  local t = setmetatable({}, {__len = function() return "
                    "2^52 end})\n"
                    "  table.insert(t, 1, 'x')\n"
                    "end\n",
                    &slow, "policy escape.lua:3: " DENY_LIMIT, 10.0);
  /* A backtracking pattern on a long subject. */
  assert_denied_lim("function workspace_create(input)\n"
                    "  local s = string.rep('a', 3000)\n"
                    "  s:find('a-a-a-a-a-b')\n"
                    "end\n",
                    &slow, "policy escape.lua:3: " DENY_LIMIT, 10.0);
  /* string.rep of nothing, many times, is nothing at once. */
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  policy.warn('[' .. string.rep('', 1e15) .. ']')\n"
            "end\n",
            NULL, &d);
  assert_string_equal(d.warnings[0].message, "[]");
  atr_decision_clear(&d);
}

static void a_loop_in_loaded_code_names_its_chunk(void **state) {
  assert_denied_lim("function workspace_create(input)\n"
                    "  load('while true do end', '=inner')()\n"
                    "end\n",
                    &slow, "policy inner:1: " DENY_LIMIT, 10.0);
}

/* ---- what a hook returns and raises -------------------------------------- */

static void an_error_object_that_is_a_table(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  error({code = 42})\n"
                "end\n",
                "policy escape.lua:2: error object is a table value");
  assert_denied("function workspace_create(input)\n"
                "  error(setmetatable({}, {__tostring = function()\n"
                "    error('nope')\n"
                "  end}))\n"
                "end\n",
                "policy escape.lua:2: error object is a table value (its "
                "__tostring failed)");
  assert_denied("function workspace_create(input)\n"
                "  error(setmetatable({}, {__tostring = function()\n"
                "    return 'quota service said no'\n"
                "  end}))\n"
                "end\n",
                "policy escape.lua:2: quota service said no");
  assert_denied("function workspace_create(input)\n"
                "  error()\n"
                "end\n",
                "policy escape.lua:2: error object is a nil value");
  assert_denied("function workspace_create(input)\n"
                "  error('no position', 0)\n"
                "end\n",
                "policy escape.lua:2: no position");
}

static void a_hook_returns_nothing(void **state) {
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  return\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.ndenies + d.nwarnings + d.nsets, 0);
  atr_decision_clear(&d);
  eval_with("function workspace_create(input)\n"
            "  return nil, nil\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.ndenies + d.nwarnings + d.nsets, 0);
  atr_decision_clear(&d);
}

static void a_hook_returning_a_value_is_denied(void **state) {
  assert_denied("function workspace_create(input)\n"
                "  return true\n"
                "end\n",
                "policy escape.lua:1: workspace_create returned a boolean; a "
                "hook returns nothing and decides with policy.deny, "
                "policy.warn and policy.set");
  assert_denied("\n"
                "function workspace_create(input)\n"
                "  policy.set('cpus', 2)\n"
                "  return {deny = {}}\n"
                "end\n",
                "policy escape.lua:2: workspace_create returned a table; a "
                "hook returns nothing and decides with policy.deny, "
                "policy.warn and policy.set");
}

static void nothing_is_carried_between_evaluations(void **state) {
  static const char text[] = "count = (count or 0) + 1\n"
                             "seen = seen or {}\n"
                             "function workspace_create(input)\n"
                             "  seen[#seen + 1] = input.user.name\n"
                             "  policy.warn(count .. ' ' .. #seen)\n"
                             "end\n";
  atr_policy_t *p = NULL;
  assert_int_equal(
      atr_policy_load("escape.lua", text, sizeof text - 1, NULL, &p, NULL), 0);
  json_t *in = json_loads(INPUT, 0, NULL);
  for (int i = 0; i < 3; i++) {
    atr_decision_t d;
    assert_int_equal(atr_policy_eval(p, "workspace_create", in, NULL, &d), 0);
    assert_int_equal(d.nwarnings, 1);
    assert_string_equal(d.warnings[0].message, "1 1");
    atr_decision_clear(&d);
  }
  json_decref(in);
  atr_policy_unref(p);
}

static void output_is_captured_not_printed(void **state) {
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  print('to the', 'decision', 42)\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.noutput, 1);
  assert_string_equal(d.output[0].message, "to the\tdecision\t42");
  atr_decision_clear(&d);
}

static void a_long_message_is_cut(void **state) {
  atr_decision_t d;
  eval_with("function workspace_create(input)\n"
            "  policy.deny(string.rep('x', 5000))\n"
            "end\n",
            NULL, &d);
  assert_int_equal(d.ndenies, 1);
  assert_int_equal(strlen(d.denies[0].message), 1000 + 3);
  assert_string_equal(d.denies[0].message + 1000, "\xe2\x80\xa6");
  atr_decision_clear(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(string_dump_is_gone),
      cmocka_unit_test(load_refuses_bytecode),
      cmocka_unit_test(load_refuses_mode_b),
      cmocka_unit_test(load_of_text_works_inside_the_sandbox),
      cmocka_unit_test(libraries_that_are_not_there),
      cmocka_unit_test(collectgarbage_counts_only),
      cmocka_unit_test(string_metatable_is_read_only),
      cmocka_unit_test(libraries_are_read_only),
      cmocka_unit_test(input_is_deeply_read_only),
      cmocka_unit_test(no_gc_metamethods),
      cmocka_unit_test(an_infinite_loop_hits_the_instruction_limit),
      cmocka_unit_test(an_infinite_loop_hits_the_time_limit),
      cmocka_unit_test(a_loop_inside_pcall_cannot_swallow_the_limit),
      cmocka_unit_test(an_xpcall_handler_cannot_swallow_the_limit),
      cmocka_unit_test(a_close_handler_cannot_swallow_the_limit),
      cmocka_unit_test(a_string_bomb_hits_the_memory_limit),
      cmocka_unit_test(a_table_bomb_hits_the_memory_limit),
      cmocka_unit_test(a_swallowed_memory_error_still_denies),
      cmocka_unit_test(deep_recursion_is_stopped),
      cmocka_unit_test(c_loops_are_charged),
      cmocka_unit_test(a_loop_in_loaded_code_names_its_chunk),
      cmocka_unit_test(an_error_object_that_is_a_table),
      cmocka_unit_test(a_hook_returns_nothing),
      cmocka_unit_test(a_hook_returning_a_value_is_denied),
      cmocka_unit_test(nothing_is_carried_between_evaluations),
      cmocka_unit_test(output_is_captured_not_printed),
      cmocka_unit_test(a_long_message_is_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
