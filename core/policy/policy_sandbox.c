/* core/policy_sandbox.c — what a policy can reach: base (without dofile,
 * loadfile, warn; load text-only; collectgarbage("count") only; no __gc
 * metamethods; xpcall handlers skipped once a limit is hit; print
 * captured), string (without dump), table, math, utf8,
 * and the `policy` helper library; all of them read-only, and `input` a
 * deeply read-only table.
 *
 * Read-only tables are empty proxies: the metatable's __index is the real
 * table, __newindex raises, __len and __pairs see through, __metatable
 * hides the metatable. pairs() iterates with a function of ours so the
 * real table never reaches the policy; rawset refuses proxies.
 *
 * C functions that could run for long without the count hook seeing it
 * (they are C, not VM instructions) check the clock after each call, and
 * those that loop over a length the policy chooses (table.move, insert,
 * remove) charge that length to the instruction budget first. */
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "policy_internal.h"

/* ---- read-only proxies --------------------------------------------------- */

static int ro_newindex(lua_State *L);

/* The name of the read-only proxy at idx ("input.user", "the string
 * library"), or NULL when it is not one. */
static const char *ro_what(lua_State *L, int idx) {
  const char *what = NULL;
  idx = lua_absindex(L, idx);
  if (!lua_getmetatable(L, idx))
    return NULL;
  lua_pushliteral(L, "__newindex");
  lua_rawget(L, -2);
  if (lua_tocfunction(L, -1) == ro_newindex) {
    lua_pushliteral(L, "__readonly");
    lua_rawget(L, -3);
    what = lua_tostring(L, -1); /* kept alive by the metatable */
    lua_pop(L, 1);
  }
  lua_pop(L, 2);
  return what;
}

/* Push the real table behind the proxy at idx. */
static void ro_data(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (!ro_what(L, idx) || !lua_getmetatable(L, idx))
    luaL_error(L, "not a read-only table");
  lua_pushliteral(L, "__index");
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

static int ro_newindex(lua_State *L) {
  const char *what = ro_what(L, 1);
  if (!what)
    what = "this table";
  switch (lua_type(L, 2)) {
  case LUA_TSTRING:
    return luaL_error(L, "%s is read-only (cannot set field '%s')", what,
                      lua_tostring(L, 2));
  case LUA_TNUMBER:
    lua_pushvalue(L, 2);
    return luaL_error(L, "%s is read-only (cannot set [%s])", what,
                      lua_tostring(L, -1));
  default:
    return luaL_error(L, "%s is read-only (cannot set a %s key)", what,
                      luaL_typename(L, 2));
  }
}

static int ro_len(lua_State *L) {
  ro_data(L, 1);
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

static int ro_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  ro_data(L, 1);
  lua_pushvalue(L, 2);
  if (lua_next(L, -2))
    return 2;
  lua_pushnil(L);
  return 1;
}

static int ro_pairs(lua_State *L) {
  lua_pushcfunction(L, ro_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

/* Replace the table at the top with a read-only proxy named `what`. */
static void push_readonly(lua_State *L, const char *what) {
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ro_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushstring(L, what);
  lua_setfield(L, -2, "__readonly");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

/* ---- input --------------------------------------------------------------- */

#define PATH_MAX_LEN 200

static void push_json(lua_State *L, json_t *v, char *path, int depth) {
  luaL_checkstack(L, 4, "input nested too deeply");
  size_t plen = strlen(path);
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    if (depth >= ATR__POLICY_MAX_INPUT_DEPTH)
      luaL_error(L, "input is nested more than %d levels deep",
                 ATR__POLICY_MAX_INPUT_DEPTH);
    const char *key;
    json_t *child;
    lua_createtable(L, 0, (int)json_object_size(v));
    json_object_foreach(v, key, child) {
      if (json_is_null(child))
        continue;
      snprintf(path + plen, PATH_MAX_LEN - plen, ".%s", key);
      push_json(L, child, path, depth + 1);
      lua_setfield(L, -2, key);
    }
    path[plen] = '\0';
    push_readonly(L, path);
    break;
  }
  case JSON_ARRAY: {
    if (depth >= ATR__POLICY_MAX_INPUT_DEPTH)
      luaL_error(L, "input is nested more than %d levels deep",
                 ATR__POLICY_MAX_INPUT_DEPTH);
    size_t i;
    json_t *child;
    lua_createtable(L, (int)json_array_size(v), 0);
    json_array_foreach(v, i, child) {
      if (json_is_null(child))
        continue;
      snprintf(path + plen, PATH_MAX_LEN - plen, "[%zu]", i + 1);
      push_json(L, child, path, depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    path[plen] = '\0';
    push_readonly(L, path);
    break;
  }
  case JSON_STRING:
    lua_pushlstring(L, json_string_value(v), json_string_length(v));
    break;
  case JSON_INTEGER:
    lua_pushinteger(L, (lua_Integer)json_integer_value(v));
    break;
  case JSON_REAL:
    lua_pushnumber(L, (lua_Number)json_real_value(v));
    break;
  case JSON_TRUE:
  case JSON_FALSE:
    lua_pushboolean(L, json_is_true(v));
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

void atr__sandbox_push_input(lua_State *L, json_t *input) {
  char path[PATH_MAX_LEN] = "input";
  push_json(L, input, path, 0);
}

/* ---- base ---------------------------------------------------------------- */

static int sb_print(lua_State *L) {
  atr__policy_run_t *run = atr__policy_run(L);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  if (run && run->dec->noutput < ATR__POLICY_MAX_OUTPUT &&
      atr__decision_add(&run->dec->output, &run->dec->noutput,
                        lua_tostring(L, -1), NULL, run->name) != 0)
    return luaL_error(L, "print: out of memory");
  return 0;
}

/* load(chunk [, chunkname [, mode [, env]]]) with mode "t" only. */
static int sb_load(lua_State *L) {
  const char *mode = luaL_optstring(L, 3, "t");
  if (strcmp(mode, "t") != 0)
    return luaL_error(L,
                      "load: mode \"%s\" is not allowed in policies; only "
                      "text chunks (\"t\") can be loaded",
                      mode);
  int n = lua_gettop(L);
  if (n < 3)
    lua_settop(L, n = 3);
  lua_pushliteral(L, "t");
  lua_replace(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  atr__policy_charge(L, 0); /* parsing is C: look at the clock */
  return lua_gettop(L);
}

static int sb_collectgarbage(lua_State *L) {
  const char *opt = luaL_optstring(L, 1, "collect");
  if (strcmp(opt, "count") != 0)
    return luaL_error(L,
                      "collectgarbage(\"%s\") is not allowed in policies; "
                      "only collectgarbage(\"count\") is",
                      opt);
  int k = lua_gc(L, LUA_GCCOUNT), b = lua_gc(L, LUA_GCCOUNTB);
  lua_pushnumber(L, (lua_Number)k + (lua_Number)b / 1024);
  return 1;
}

static int sb_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checkany(L, 2);
  luaL_checkany(L, 3);
  const char *what = ro_what(L, 1);
  if (what)
    return luaL_error(L, "rawset: %s is read-only", what);
  lua_settop(L, 3);
  lua_rawset(L, 1);
  return 1;
}

/* A __gc metamethod would run with hooks off (Lua stops them during
 * finalizers), out of reach of the limits. */
static int sb_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (t == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc metamethods are not allowed "
                           "in policies");
    lua_pop(L, 1);
  }
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  lua_setmetatable(L, 1);
  return 1;
}

/* xpcall's message handler, behind a check: once a limit is hit, the
 * error comes from inside the count hook, where Lua runs the handler with
 * hooks off — a handler that loops would never be stopped. So after a hit
 * the handler is skipped. */
static int sb_msgh(lua_State *L) {
  atr__policy_run_t *run = atr__policy_run(L);
  if (run && run->tripped)
    return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int sb_xpcall(lua_State *L) {
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, sb_msgh, 1);
  lua_replace(L, 2);
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

static void open_base(lua_State *L) {
  static const char *const removed[] = {"dofile", "loadfile", "warn", NULL};
  luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
  for (int i = 0; removed[i]; i++) {
    lua_pushnil(L);
    lua_setfield(L, -2, removed[i]);
  }
  lua_getfield(L, -1, "load");
  lua_pushcclosure(L, sb_load, 1);
  lua_setfield(L, -2, "load");
  lua_getfield(L, -1, "xpcall");
  lua_pushcclosure(L, sb_xpcall, 1);
  lua_setfield(L, -2, "xpcall");
  static const luaL_Reg replaced[] = {{"print", sb_print},
                                      {"collectgarbage", sb_collectgarbage},
                                      {"rawset", sb_rawset},
                                      {"setmetatable", sb_setmetatable},
                                      {NULL, NULL}};
  luaL_setfuncs(L, replaced, 0);
  lua_pop(L, 1);
}

/* ---- string, table, utf8: the clock and charges -------------------------- */

/* Any library function, then a look at the clock. Only for functions
 * without upvalues: the original is called in this closure's frame. */
static int guarded(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, lua_upvalueindex(1));
  int n = f(L);
  atr__policy_charge(L, 0);
  return n;
}

static bool has_upvalues(lua_State *L, int idx) {
  if (!lua_getupvalue(L, idx, 1))
    return false;
  lua_pop(L, 1);
  return true;
}

static void guard_library(lua_State *L) {
  int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    if (lua_tocfunction(L, -1) && !has_upvalues(L, -1)) {
      lua_pushcclosure(L, guarded, 1);
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, t);
    } else {
      lua_pop(L, 1);
    }
  }
}

/* The length of the table at idx for a cost: 0 unless a table. */
static lua_Integer cost_len(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE ? luaL_len(L, idx) : 0;
}

/* Charge to - from (+ extra) when to >= from, without overflowing. */
static void charge_span(lua_State *L, lua_Integer from, lua_Integer to,
                        uint64_t extra) {
  if (to >= from)
    atr__policy_charge(L, (uint64_t)to - (uint64_t)from + extra);
}

/* Call the original (upvalue 1) in this frame, then look at the clock. */
static int call_original(lua_State *L) {
  int n = lua_tocfunction(L, lua_upvalueindex(1))(L);
  atr__policy_charge(L, 0);
  return n;
}

/* The integer at idx (floats with an integral value too), or false. */
static bool int_arg(lua_State *L, int idx, lua_Integer *out) {
  int ok = 0;
  *out = lua_tointegerx(L, idx, &ok);
  return ok;
}

/* table.insert(t, [pos,] v) moves #t - pos + 1 elements. */
static int sb_insert(lua_State *L) {
  lua_Integer pos;
  if (lua_gettop(L) == 3 && int_arg(L, 2, &pos))
    charge_span(L, pos, cost_len(L, 1), 1);
  return call_original(L);
}

/* table.remove(t [, pos]) moves #t - pos elements. */
static int sb_remove(lua_State *L) {
  lua_Integer pos;
  if (lua_gettop(L) >= 2 && int_arg(L, 2, &pos))
    charge_span(L, pos, cost_len(L, 1), 0);
  return call_original(L);
}

/* table.move(a1, f, e, t [, a2]) copies e - f + 1 elements, however many
 * of them exist: table.move({}, 1, 2^50, 2) loops in C for ever. */
static int sb_move(lua_State *L) {
  lua_Integer f, e;
  if (int_arg(L, 2, &f) && int_arg(L, 3, &e))
    charge_span(L, f, e, 1);
  return call_original(L);
}

/* string.rep("", n) loops n times in C producing nothing. */
static int sb_rep(lua_State *L) {
  size_t l = 0, lsep = 0;
  luaL_checklstring(L, 1, &l);
  luaL_checkinteger(L, 2);
  luaL_optlstring(L, 3, "", &lsep);
  if (l == 0 && lsep == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  return call_original(L);
}

static void wrap_field(lua_State *L, const char *name, lua_CFunction with) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, with, 1);
  lua_setfield(L, -2, name);
}

static void open_string(lua_State *L) {
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  atr__pattern_open(L);
  wrap_field(L, "rep", sb_rep); /* before guarding: it skips closures */
  guard_library(L);
  lua_pop(L, 1);
}

static void open_table(lua_State *L) {
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
  wrap_field(L, "insert", sb_insert);
  wrap_field(L, "remove", sb_remove);
  wrap_field(L, "move", sb_move);
  guard_library(L);
  lua_pop(L, 1);
}

/* ---- the policy library -------------------------------------------------- */

/* The run of a hook being evaluated; raises outside one. */
static atr__policy_run_t *hook_run(lua_State *L, const char *fn) {
  atr__policy_run_t *run = atr__policy_run(L);
  if (!run || !run->in_hook)
    luaL_error(L,
               "policy.%s: call it from a hook function, not at the top "
               "level of the file",
               fn);
  return run;
}

static int add_message(lua_State *L, bool deny) {
  const char *fn = deny ? "deny" : "warn";
  const char *msg = luaL_checkstring(L, 1);
  const char *param = deny ? luaL_optstring(L, 2, NULL) : NULL;
  luaL_argcheck(L, *msg, 1, "the message is empty");
  luaL_argcheck(L, !param || *param, 2, "the parameter name is empty");
  atr__policy_run_t *run = hook_run(L, fn);
  atr_decision_t *d = run->dec;
  size_t *n = deny ? &d->ndenies : &d->nwarnings;
  if (*n >= ATR__POLICY_MAX_MESSAGES)
    return luaL_error(L, "policy.%s: more than %d messages", fn,
                      ATR__POLICY_MAX_MESSAGES);
  if (atr__decision_add(deny ? &d->denies : &d->warnings, n, msg, param,
                        run->name) != 0)
    return luaL_error(L, "policy.%s: out of memory", fn);
  return 0;
}

static int p_deny(lua_State *L) {
  return add_message(L, true);
}

static int p_warn(lua_State *L) {
  return add_message(L, false);
}

static bool utf8_valid(const unsigned char *s, size_t n) {
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    size_t len = c < 0x80         ? 1
                 : (c >> 5) == 6  ? 2
                 : (c >> 4) == 14 ? 3
                 : (c >> 3) == 30 ? 4
                                  : 0;
    if (len == 0 || i + len > n)
      return false;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return false;
    i += len;
  }
  return true;
}

/* Push the string at idx as a JSON string literal. */
static void push_json_string(lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '"');
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    } else if (c < 0x20) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      luaL_addstring(&b, esc);
    } else {
      luaL_addchar(&b, (char)c);
    }
  }
  luaL_addchar(&b, '"');
  luaL_pushresult(&b);
}

/* A list of strings (the table at idx) as JSON text ("[\"a\",\"b\"]"),
 * pushed. Built on the Lua stack only, so an error leaks nothing. */
static void push_list_text(lua_State *L, int idx) {
  lua_Integer n = luaL_len(L, idx);
  atr__policy_charge(L, n > 0 ? (uint64_t)n : 0);
  lua_createtable(L, n > 0 && n < 1024 ? (int)n : 0, 0);
  int parts = lua_gettop(L);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_geti(L, idx, i);
    size_t len;
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "policy.set: item %d of the list is a %s, not a string",
                 (int)i, luaL_typename(L, -1));
    const char *item = lua_tolstring(L, -1, &len);
    if (!utf8_valid((const unsigned char *)item, len))
      luaL_error(L, "policy.set: item %d of the list is not valid UTF-8",
                 (int)i);
    push_json_string(L, -1);
    lua_remove(L, -2);
    lua_rawseti(L, parts, i);
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addchar(&b, '[');
  for (lua_Integer i = 1; i <= n; i++) {
    if (i > 1)
      luaL_addchar(&b, ',');
    lua_rawgeti(L, parts, i);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
  lua_remove(L, parts);
}

/* The value at idx as parameter text, pushed. */
static void push_value_text(lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
  case LUA_TSTRING:
    lua_pushvalue(L, idx);
    return;
  case LUA_TBOOLEAN:
    lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    return;
  case LUA_TNUMBER: {
    lua_Integer i;
    lua_Number d = lua_tonumber(L, idx);
    if (lua_isinteger(L, idx))
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
    else if (!isfinite(d))
      luaL_argerror(L, 2, "the number is not finite");
    else if (lua_numbertointeger(d, &i) && (lua_Number)i == d)
      lua_pushfstring(L, "%I", (LUAI_UACINT)i);
    else {
      char buf[64];
      snprintf(buf, sizeof buf, "%.14g", (double)d);
      lua_pushstring(L, buf);
    }
    return;
  }
  case LUA_TTABLE:
    push_list_text(L, idx);
    return;
  default:
    luaL_typeerror(L, idx, "string, number, boolean or list of strings");
  }
}

static int p_set(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_argcheck(L, *name, 1, "the name is empty");
  luaL_checkany(L, 2);
  atr__policy_run_t *run = hook_run(L, "set");
  if (strcmp(run->hook, "template_push") == 0)
    return luaL_error(L, "policy.set: template_push cannot set values");
  if (strcmp(run->hook, "schedule") == 0 && strcmp(name, "autostart") != 0 &&
      strcmp(name, "ttl_ms") != 0)
    return luaL_error(L,
                      "policy.set: schedule can set \"autostart\" and "
                      "\"ttl_ms\", not \"%s\"",
                      name);
  if (run->dec->nsets >= ATR__POLICY_MAX_SETS &&
      !atr_decision_get_set(run->dec, name))
    return luaL_error(L, "policy.set: more than %d values",
                      ATR__POLICY_MAX_SETS);
  push_value_text(L, 2);
  if (atr__decision_set(run->dec, name, lua_tostring(L, -1), run->name) != 0)
    return luaL_error(L, "policy.set: out of memory");
  return 0;
}

/* Whether input.user[field] (a list) holds the string at arg 2. */
static int user_list_has(lua_State *L, const char *field) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *want = luaL_checkstring(L, 2);
  bool found = false;
  if (lua_getfield(L, 1, "user") == LUA_TTABLE &&
      lua_getfield(L, -1, field) == LUA_TTABLE) {
    lua_Integer n = luaL_len(L, -1);
    atr__policy_charge(L, n > 0 ? (uint64_t)n : 0);
    for (lua_Integer i = 1; !found && i <= n; i++) {
      lua_geti(L, -1, i);
      found = lua_type(L, -1) == LUA_TSTRING &&
              strcmp(lua_tostring(L, -1), want) == 0;
      lua_pop(L, 1);
    }
  }
  lua_pushboolean(L, found);
  return 1;
}

static int p_has_role(lua_State *L) {
  return user_list_has(L, "roles");
}

static int p_in_group(lua_State *L) {
  return user_list_has(L, "groups");
}

/* Push input.parameters[which][name] (which: arg 3, "new" or "old"), or
 * nil; false when there is none. */
static bool push_param(lua_State *L) {
  static const char *const which[] = {"new", "old", NULL};
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  int w = luaL_checkoption(L, 3, "new", which);
  if (lua_getfield(L, 1, "parameters") == LUA_TTABLE &&
      lua_getfield(L, -1, which[w]) == LUA_TTABLE &&
      lua_getfield(L, -1, name) == LUA_TSTRING)
    return true;
  lua_pushnil(L);
  return false;
}

static int p_param(lua_State *L) {
  push_param(L);
  return 1;
}

static int p_number(lua_State *L) {
  if (!push_param(L) || lua_stringtonumber(L, lua_tostring(L, -1)) == 0)
    lua_pushnil(L);
  return 1;
}

static int p_bool(lua_State *L) {
  if (!push_param(L))
    return 1;
  const char *v = lua_tostring(L, -1);
  if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0)
    lua_pushboolean(L, v[0] == 't');
  else
    lua_pushnil(L);
  return 1;
}

/* jansson values held across Lua calls live in a box that the collector
 * (or lua_close) frees, so an error in between leaks nothing. */
#define JSON_BOX "atrium.json"

static int json_box_gc(lua_State *L) {
  json_t **box = luaL_checkudata(L, 1, JSON_BOX);
  json_decref(*box);
  *box = NULL;
  return 0;
}

/* A list(string) parameter ("[\"a\",\"b\"]") as a new table, or nil. */
static int p_list(lua_State *L) {
  if (!push_param(L))
    return 1;
  size_t len;
  const char *v = lua_tolstring(L, -1, &len);
  atr__policy_charge(L, len / 16);
  json_t **box = lua_newuserdatauv(L, sizeof *box, 0);
  *box = NULL;
  luaL_setmetatable(L, JSON_BOX);
  json_t *arr = *box = json_loadb(v, len, JSON_DECODE_ANY, NULL);
  bool ok = json_is_array(arr);
  for (size_t i = 0; ok && i < json_array_size(arr); i++)
    ok = json_is_string(json_array_get(arr, i));
  if (!ok) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, (int)json_array_size(arr), 0);
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *s = json_array_get(arr, i);
    lua_pushlstring(L, json_string_value(s), json_string_length(s));
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  json_decref(arr);
  *box = NULL;
  return 1;
}

static void open_policy(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"deny", p_deny},         {"warn", p_warn},
      {"set", p_set},           {"has_role", p_has_role},
      {"in_group", p_in_group}, {"param", p_param},
      {"number", p_number},     {"bool", p_bool},
      {"list", p_list},         {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setglobal(L, "policy");
  luaL_newmetatable(L, JSON_BOX);
  lua_pushcfunction(L, json_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

/* ---- freezing ------------------------------------------------------------ */

static void freeze_global(lua_State *L, const char *name, const char *what) {
  lua_getglobal(L, name);
  push_readonly(L, what);
  lua_setglobal(L, name);
}

/* Strings index the string library directly (fast), but what
 * getmetatable("") shows is a read-only copy whose __index is the
 * read-only string library. */
static void freeze_string_metatable(lua_State *L) {
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  int mt = lua_gettop(L);
  lua_createtable(L, 0, 0);
  lua_pushnil(L);
  while (lua_next(L, mt)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_getglobal(L, "string");
  lua_setfield(L, -2, "__index");
  push_readonly(L, "the string metatable");
  lua_setfield(L, mt, "__metatable");
  lua_pop(L, 2);
}

void atr__sandbox_open(lua_State *L) {
  open_base(L);
  open_string(L);
  open_table(L);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
  lua_pop(L, 1);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
  guard_library(L);
  lua_pop(L, 1);
  open_policy(L);
  freeze_global(L, "string", "the string library");
  freeze_global(L, "table", "the table library");
  freeze_global(L, "math", "the math library");
  freeze_global(L, "utf8", "the utf8 library");
  freeze_global(L, "policy", "the policy library");
  freeze_string_metatable(L);
}
