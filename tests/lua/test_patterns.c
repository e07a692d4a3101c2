/* The sandbox's string.find, match, gmatch and gsub (core/policy_pattern.c,
 * a matcher that counts its steps) give the same results and the same
 * errors as Lua 5.4's own, on a list of hand-picked cases and on thousands
 * of random patterns and subjects: the same Lua script runs in a state
 * with Lua's functions and in one with ours, and the outputs must be
 * equal line by line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "policy_internal.h"

/* Runs every case through the four functions; returns one line per call
 * ("n:v1,v2" or "ERR:message", values quoted with %q). Globals: CASES = {{s, p, init}, ...}. */
static const char script[] =
    "local function ser(...)\n"
    "  local t = {}\n"
    "  for i = 1, select('#', ...) do\n"
    "    t[i] = string.format('%q', tostring((select(i, ...))))\n"
    "  end\n"
    "  return select('#', ...) .. ':' .. table.concat(t, ',')\n"
    "end\n"
    "local function try(f, ...)\n"
    "  local r = table.pack(pcall(f, ...))\n"
    "  if r[1] then return ser(table.unpack(r, 2, r.n)) end\n"
    "  return 'ERR:' .. string.format('%q', tostring(r[2]))\n"
    "end\n"
    "local function all(s, p, init)\n"
    "  local t = {}\n"
    "  for a, b in string.gmatch(s, p, init) do\n"
    "    t[#t + 1] = string.format('%q|%q', tostring(a), tostring(b))\n"
    "    if #t > 40 then break end\n"
    "  end\n"
    "  return table.concat(t, ';')\n"
    "end\n"
    "local repl_t = {a = 'A', ['('] = false, b = 1}\n"
    "local function repl_f(a, b) if a == 'b' then return nil end\n"
    "  return '<' .. tostring(a) .. tostring(b) .. '>' end\n"
    "local out = {}\n"
    "for i, c in ipairs(CASES) do\n"
    "  local s, p, init = c[1], c[2], c[3]\n"
    "  out[#out + 1] = i .. ' find ' .. try(string.find, s, p, init)\n"
    "  out[#out + 1] = i .. ' plain ' .. try(string.find, s, p, init, true)\n"
    "  out[#out + 1] = i .. ' match ' .. try(string.match, s, p, init)\n"
    "  out[#out + 1] = i .. ' gmatch ' .. try(all, s, p, init)\n"
    "  out[#out + 1] = i .. ' gsub_s ' .. try(string.gsub, s, p, '[%0%1]')\n"
    "  out[#out + 1] = i .. ' gsub_n ' .. try(string.gsub, s, p, '-', 2)\n"
    "  out[#out + 1] = i .. ' gsub_t ' .. try(string.gsub, s, p, repl_t)\n"
    "  out[#out + 1] = i .. ' gsub_f ' .. try(string.gsub, s, p, repl_f)\n"
    "end\n"
    "return table.concat(out, '\\n')\n";

/* Hand-picked cases, then random ones from these pieces. */
static const char cases_script[] =
    "CASES = {\n"
    "  {'hello world', 'o', 1}, {'hello world', 'o', 6}, {'hello', 'l+'},\n"
    "  {'hello', '^h'}, {'hello', '^e'}, {'hello', 'o$'}, {'a$b', 'a$b'},\n"
    "  {'hello', ''}, {'', ''}, {'', 'a*'}, {'abc', 'x*', 2},\n"
    "  {'abc', '.-', -2}, {'abc', 'b', -10}, {'abc', 'b', 10}, {'abc', '', "
    "4},\n"
    "  {'abc', '', 5}, {'key = value', '(%w+)%s*=%s*(%w+)'},\n"
    "  {'THE (quick) fox', '%((%a+)%)'}, {'f(a(b)c)d', '%b()'},\n"
    "  {'f(a(b)c', '%b()'}, {'THE (quick) fox', '%f[%a]%a+'},\n"
    "  {'aaa', '()a()'}, {'abcabc', '(abc)%1'}, {'abcab', '(abc)%1'},\n"
    "  {'x', '(()'}, {'x', '%1'}, {'x', '(x)%2'}, {'x', '%'}, {'x', '[a'},\n"
    "  {'x', '[]'}, {'x', '[^]'}, {']', '[]]'}, {'-', '[a-]'},\n"
    "  {'b', '[a-c]'}, {'%', '[%%]'}, {'x', '%f'}, {'x', '%fx'},\n"
    "  {'x', '%b'}, {'x', '%bx'}, {'x', '(x'}, {'x', 'x)'},\n"
    "  {'hello world from lua', '%s*(%S+)'}, {'  trim  ', '^%s*(.-)%s*$'},\n"
    "  {'2024-05-01', '^(%d%d%d%d)-(%d%d)-(%d%d)$'},\n"
    "  {'user@example.com', '^[%w._%-]+@[%w.-]+%.%a+$'},\n"
    "  {'\\0a\\0b', '%z'}, {'a\\0b', 'a\\0b'}, {'a\\0b', '[\\0]'},\n"
    "  {'aaa', 'a-b'}, {'aaab', 'a-b'}, {'abab', '(ab)-'}, {'abc', "
    "'a?b?c?d?'},\n"
    "  {'x', string.rep('(', 33) .. 'x' .. string.rep(')', 33)},\n"
    "  {'abc', '%w+', 2.0}, {'abc', '%w', '2'},\n"
    "  {'ABCdef123 !?', '%u+'}, {'ABCdef123 !?', '%L+'}, {'ABCdef', '%x+'},\n"
    "  {'ABC def', '%P+'}, {'tab\\there', '%c'}, {'a.b', '%.'},\n"
    "}\n"
    "math.randomseed(7)\n"
    "local items = {'a', 'b', '.', '%a', '%d', '[ab]', '[^a]', '[a-c]', '()',\n"
    "  '(', ')', '%b()', '%f[ab]', '%1', '^', '$', '%%', ' ', '1'}\n"
    "local quants = {'', '', '', '*', '+', '-', '?'}\n"
    "local letters = {'a', 'b', '(', ')', '1', ' ', 'c'}\n"
    "for _ = 1, 3000 do\n"
    "  local p = {}\n"
    "  for _ = 1, math.random(1, 5) do\n"
    "    p[#p + 1] = items[math.random(#items)] .. "
    "quants[math.random(#quants)]\n"
    "  end\n"
    "  local s = {}\n"
    "  for _ = 1, math.random(0, 10) do s[#s + 1] = "
    "letters[math.random(#letters)] end\n"
    "  CASES[#CASES + 1] = {table.concat(s), table.concat(p), math.random(-3, "
    "4)}\n"
    "end\n";

static char *run(bool ours) {
  lua_State *L = luaL_newstate();
  assert_non_null(L);
  *(atr__policy_run_t **)lua_getextraspace(L) = NULL; /* no limits */
  luaL_openlibs(L);
  if (ours) {
    lua_getglobal(L, "string");
    atr__pattern_open(L);
    lua_pop(L, 1);
  }
  if (luaL_dostring(L, cases_script) != LUA_OK ||
      luaL_dostring(L, script) != LUA_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    fail();
  }
  char *out = strdup(lua_tostring(L, -1));
  lua_close(L);
  return out;
}

static void same_as_lua(void **state) {
  char *want = run(false), *got = run(true);
  size_t lines = 0;
  char *w = want, *g = got;
  while (*w || *g) {
    char *we = strchr(w, '\n'), *ge = strchr(g, '\n');
    size_t wn = we ? (size_t)(we - w) : strlen(w);
    size_t gn = ge ? (size_t)(ge - g) : strlen(g);
    if (wn != gn || memcmp(w, g, wn) != 0) {
      fprintf(stderr, "line %zu differs:\n  lua:  %.*s\n  ours: %.*s\n",
              lines + 1, (int)wn, w, (int)gn, g);
      fail();
    }
    lines++;
    w += wn + (we ? 1 : 0);
    g += gn + (ge ? 1 : 0);
  }
  if (lines < 20000)
    fprintf(stderr, "only %zu lines\n", lines);
  assert_true(lines > 20000);
  free(want);
  free(got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(same_as_lua),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
