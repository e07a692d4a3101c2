/* core/policy.c — loading a policy (compile once, keep the bytecode) and
 * evaluating one hook in a fresh, limited lua_State.
 *
 * The policy's text is compiled once, with mode "t", and dumped to
 * bytecode; each evaluation loads that bytecode through lua_load from C
 * only (the policy's own `load` is text-only), which is several times
 * cheaper than parsing again. The hook runs in a coroutine started from
 * C: when it fails, its stack is not unwound, so the line of the failure
 * is there to read even for errors that carry no position (memory, limits,
 * an error object that is a table).
 *
 * Limits: the allocator refuses past the memory cap; a count hook every
 * ATR__POLICY_HOOK_STEP instructions adds up instructions and checks the
 * clock; C functions that can loop (pattern matching, table.move, ...)
 * charge their work through atr__policy_charge. The first limit hit is
 * sticky (see atr__policy_run_t). */
#include <errno.h>
#include <inttypes.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "options.h"
#include "policy.h"
#include "policy_internal.h"

struct atr_policy {
  atomic_int refs;
  char *name;
  char *chunkname; /* "@" name */
  char *code;      /* lua_dump of the compiled text, debug info kept */
  size_t ncode;
  unsigned hooks; /* bit i: hook_names[i] is a function */
};

static const char *const hook_names[] = {"template_push", "workspace_create",
                                         "build", "schedule", NULL};

static int hook_index(const char *hook) {
  for (int i = 0; hook && hook_names[i]; i++)
    if (strcmp(hook, hook_names[i]) == 0)
      return i;
  return -1;
}

bool atr_policy_hook_valid(const char *hook) {
  return hook_index(hook) >= 0;
}

uint64_t atr__policy_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void atr__policy_run_init(atr__policy_run_t *run, const char *name,
                          const char *hook, const atr_policy_limits_t *lim,
                          atr_decision_t *dec) {
  memset(run, 0, sizeof *run);
  run->name = name;
  run->hook = hook;
  if (lim)
    run->lim = *lim;
  if (run->lim.instructions == 0)
    run->lim.instructions = ATR_POLICY_INSTRUCTION_LIMIT;
  if (run->lim.time_ms <= 0)
    run->lim.time_ms = ATR_POLICY_TIME_LIMIT_MS;
  if (run->lim.memory == 0)
    run->lim.memory = ATR_POLICY_MEMORY_LIMIT;
  run->mem_cap = run->lim.memory > SIZE_MAX ? SIZE_MAX : run->lim.memory;
  run->deadline_ns =
      atr__policy_now_ns() + (uint64_t)run->lim.time_ms * 1000000u;
  run->dec = dec;
}

/* ---- limits -------------------------------------------------------------- */

static bool in_arena(const atr__policy_run_t *run, const void *p) {
  return run->arena && (const char *)p >= run->arena &&
         (const char *)p < run->arena + ATR__POLICY_ARENA;
}

static void *arena_take(atr__policy_run_t *run, size_t n) {
  size_t at = (run->arena_used + 15) & ~(size_t)15;
  if (!run->arena || n > ATR__POLICY_ARENA - at)
    return malloc(n);
  run->arena_used = at + n;
  return run->arena + at;
}

static void *policy_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  atr__policy_run_t *run = ud;
  size_t old = ptr ? osize : 0; /* without ptr, osize is a type tag */
  if (nsize == 0) {
    if (!in_arena(run, ptr))
      free(ptr);
    run->mem_used -= old;
    return NULL;
  }
  if (nsize > old && nsize - old > run->mem_cap - run->mem_used) {
    if (run->mem_pending)
      run->mem_hit = true;
    run->mem_pending = true;
    run->pending_ptr = ptr;
    run->pending_size = nsize;
    return NULL;
  }
  void *block;
  if (!ptr) {
    block = arena_take(run, nsize);
  } else if (in_arena(run, ptr)) {
    if (nsize <= old)
      return ptr;
    block = arena_take(run, nsize);
    if (block)
      memcpy(block, ptr, old);
  } else {
    block = realloc(ptr, nsize);
  }
  if (!block)
    return nsize <= old ? ptr : NULL; /* a shrink may keep the block */
  run->mem_used = run->mem_used - old + nsize;
  if (nsize > old && run->mem_pending) {
    if (ptr != run->pending_ptr || nsize != run->pending_size)
      run->mem_hit = true; /* not a retry: that refusal was final */
    run->mem_pending = false;
  }
  return block;
}

static void check_limits(atr__policy_run_t *run) {
  if (run->mem_pending) /* no retry came: a final refusal */
    run->mem_hit = true;
  if (run->used > run->lim.instructions)
    run->tripped = ATR__TRIP_INSTRUCTIONS;
  else if (run->mem_hit)
    run->tripped = ATR__TRIP_MEMORY;
  else if (atr__policy_now_ns() > run->deadline_ns)
    run->tripped = ATR__TRIP_TIME;
}

static void limit_cause(const atr__policy_run_t *run, char *buf, size_t n) {
  char *text = NULL;
  switch (run->tripped) {
  case ATR__TRIP_INSTRUCTIONS:
    snprintf(buf, n, "instruction limit exceeded (%" PRIu64 " instructions)",
             run->lim.instructions);
    return;
  case ATR__TRIP_TIME:
    text = atr_format_duration(run->lim.time_ms);
    snprintf(buf, n, "time limit exceeded (%s)", text ? text : "?");
    break;
  case ATR__TRIP_MEMORY:
  default:
    text = atr_format_size(run->lim.memory);
    snprintf(buf, n, "memory limit exceeded (%s)", text ? text : "?");
    break;
  }
  free(text);
}

static void count_hook(lua_State *L, lua_Debug *ar);

/* Raise the run's limit error; from now on at every instruction. The
 * message keeps the place of the first hit. */
static void raise_limit(lua_State *L, atr__policy_run_t *run, const char *src,
                        int line) {
  lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
  if (run->trip_msg[0] == '\0') {
    char cause[128];
    limit_cause(run, cause, sizeof cause);
    if (src && line > 0)
      snprintf(run->trip_msg, sizeof run->trip_msg, "%s:%d: %s", src, line,
               cause);
    else
      snprintf(run->trip_msg, sizeof run->trip_msg, "%s: %s", run->name, cause);
  }
  lua_pushstring(L, run->trip_msg);
  lua_error(L);
}

/* Near the cap, collect: lauxlib's buffers (string.rep, concat, format)
 * do not collect before they give up, so garbage would count as use. */
static void collect_near_cap(lua_State *L, atr__policy_run_t *run) {
  size_t high = run->mem_cap / 4 * 3;
  if (run->mem_used < high || run->mem_used < run->gc_floor)
    return;
  lua_gc(L, LUA_GCCOLLECT);
  run->gc_floor = run->mem_used + run->mem_cap / 8;
}

static void count_hook(lua_State *L, lua_Debug *ar) {
  atr__policy_run_t *run = atr__policy_run(L);
  if (!run->tripped) {
    run->used += ATR__POLICY_HOOK_STEP;
    check_limits(run);
    if (!run->tripped) {
      collect_near_cap(L, run);
      return;
    }
  }
  lua_getinfo(L, "Sl", ar);
  raise_limit(L, run, ar->short_src, ar->currentline);
}

/* The innermost Lua function's place: "src", line; false when none. */
static bool lua_position(lua_State *L, char src[LUA_IDSIZE], int *line) {
  lua_Debug ar;
  for (int level = 0; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.currentline > 0) {
      snprintf(src, LUA_IDSIZE, "%s", ar.short_src);
      *line = ar.currentline;
      return true;
    }
  }
  return false;
}

void atr__policy_charge(lua_State *L, uint64_t n) {
  atr__policy_run_t *run = atr__policy_run(L);
  if (!run)
    return;
  if (!run->tripped) {
    run->used += n;
    check_limits(run);
    if (!run->tripped)
      return;
  }
  char src[LUA_IDSIZE];
  int line = 0;
  bool found = lua_position(L, src, &line);
  raise_limit(L, run, found ? src : NULL, line);
}

/* Under AddressSanitizer every block comes from malloc, so that ASan sees
 * each one. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ON 0
#endif
#endif
#ifndef ARENA_ON
#define ARENA_ON 1
#endif

lua_State *atr__policy_state_new(atr__policy_run_t *run) {
  run->arena = ARENA_ON ? malloc(ATR__POLICY_ARENA) : NULL;
  run->arena_used = 0;
  lua_State *L = lua_newstate(policy_alloc, run);
  if (!L) {
    free(run->arena);
    run->arena = NULL;
    return NULL;
  }
  *(atr__policy_run_t **)lua_getextraspace(L) = run;
  int step = ATR__POLICY_HOOK_STEP;
  lua_sethook(L, count_hook, LUA_MASKCOUNT, step);
  return L;
}

void atr__policy_state_close(lua_State *L, atr__policy_run_t *run) {
  if (L)
    lua_close(L);
  free(run->arena);
  run->arena = NULL;
}

/* ---- running ------------------------------------------------------------- */

/* The coroutine's body: run the chunk (arg 1), then the hook with the
 * input (arg 2); the hook's results are the coroutine's. */
static int runner(lua_State *L) {
  atr__policy_run_t *run = atr__policy_run(L);
  lua_pushvalue(L, 1);
  lua_call(L, 0, 0);
  if (!run->hook)
    return 0;
  int t = lua_getglobal(L, run->hook);
  if (t == LUA_TNIL)
    return 0;
  if (t != LUA_TFUNCTION)
    return luaL_error(L, "%s is a %s, not a function", run->hook,
                      lua_typename(L, t));
  lua_Debug ar;
  lua_pushvalue(L, -1);
  lua_getinfo(L, ">S", &ar);
  run->hook_line = ar.linedefined;
  int base = lua_gettop(L) - 1;
  lua_pushvalue(L, 2);
  run->in_hook = true;
  lua_call(L, 1, LUA_MULTRET);
  run->in_hook = false;
  return lua_gettop(L) - base;
}

typedef struct describe_args {
  atr__policy_run_t *run;
  lua_State *co; /* where it failed (its stack is still there), or NULL */
} describe_args_t;

static int tostring_meta(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* (errobj, args) → the message without "policy ": "src:line: cause". */
static int describe(lua_State *L) {
  describe_args_t *a = lua_touserdata(L, 2);
  const char *name = a->run->name;
  char src[LUA_IDSIZE];
  int line = 0;
  bool at = a->co && lua_position(a->co, src, &line);
  int t = lua_type(L, 1);
  if (t == LUA_TSTRING) {
    const char *msg = lua_tostring(L, 1);
    size_t nsrc = at ? strlen(src) : 0, nname = strlen(name);
    if ((at && strncmp(msg, src, nsrc) == 0 && msg[nsrc] == ':') ||
        (strncmp(msg, name, nname) == 0 && msg[nname] == ':')) {
      lua_settop(L, 1); /* it already says where */
      return 1;
    }
  }
  if (at)
    lua_pushfstring(L, "%s:%d: ", src, line);
  else
    lua_pushfstring(L, "%s: ", name);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushvalue(L, 1);
    lua_tostring(L, -1);
  } else if (luaL_getmetafield(L, 1, "__tostring") != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushcfunction(L, tostring_meta);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      lua_pop(L, 1);
      lua_pushfstring(L, "error object is a %s value (its __tostring failed)",
                      lua_typename(L, t));
    }
  } else {
    lua_pushfstring(L, "error object is a %s value", lua_typename(L, t));
  }
  lua_concat(L, 2);
  return 1;
}

/* The deny for a failed run (its error object at the top of co, or of L
 * when co is NULL): the limit's message when one was hit, else the error
 * described. */
static int add_failure(atr__policy_run_t *run, lua_State *L, lua_State *co,
                       int status) {
  char *msg = NULL;
  if (!run->tripped &&
      (run->mem_hit || run->mem_pending || status == LUA_ERRMEM))
    run->tripped = ATR__TRIP_MEMORY;
  if (run->tripped) {
    if (run->trip_msg[0] == '\0') {
      char cause[128], src[LUA_IDSIZE];
      int line = 0;
      limit_cause(run, cause, sizeof cause);
      if (co && lua_position(co, src, &line))
        snprintf(run->trip_msg, sizeof run->trip_msg, "%s:%d: %s", src, line,
                 cause);
      else
        snprintf(run->trip_msg, sizeof run->trip_msg, "%s: %s", run->name,
                 cause);
    }
    if (asprintf(&msg, "policy %s", run->trip_msg) < 0)
      msg = NULL;
  } else {
    /* Room to describe it even when memory ran short. */
    run->mem_cap = run->mem_cap > SIZE_MAX - (256u << 10)
                       ? SIZE_MAX
                       : run->mem_cap + (256u << 10);
    describe_args_t a = {run, co};
    if (co)
      lua_xmove(co, L, 1);
    lua_pushcfunction(L, describe);
    lua_rotate(L, -2, 1);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 2, 1, 0) == LUA_OK && lua_isstring(L, -1) &&
        asprintf(&msg, "policy %s", lua_tostring(L, -1)) < 0)
      msg = NULL;
    lua_pop(L, 1);
  }
  if (!msg && asprintf(&msg, "policy %s: failed (Lua status %d)", run->name,
                       status) < 0)
    return ATR_ENOMEM;
  int rc = atr__decision_add(&run->dec->denies, &run->dec->ndenies, msg, NULL,
                             run->name);
  free(msg);
  return rc;
}

/* After a run that returned: anything but nothing is a mistake. */
static int check_returns(atr__policy_run_t *run, lua_State *co, int nres) {
  int top = lua_gettop(co);
  for (int i = top - nres + 1; i <= top; i++) {
    if (lua_isnil(co, i))
      continue;
    char *msg = NULL;
    if (asprintf(&msg,
                 "policy %s:%d: %s returned a %s; a hook returns nothing and "
                 "decides with policy.deny, policy.warn and policy.set",
                 run->name, run->hook_line, run->hook,
                 luaL_typename(co, i)) < 0)
      return ATR_ENOMEM;
    int rc = atr__decision_add(&run->dec->denies, &run->dec->ndenies, msg, NULL,
                               run->name);
    free(msg);
    return rc;
  }
  return 0;
}

/* Drop what a failed policy set: it is denied, its values must not apply. */
static void drop_sets(atr_decision_t *d) {
  for (size_t i = 0; i < d->nsets; i++) {
    free(d->sets[i].name);
    free(d->sets[i].value);
    free(d->sets[i].policy);
  }
  free(d->sets);
  d->sets = NULL;
  d->nsets = 0;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct compile_args {
  const char *chunkname;
  const char *text;
  size_t len;
  char *code;
  size_t ncode;
  bool oom;
} compile_args_t;

static int dump_writer(lua_State *L, const void *p, size_t sz, void *ud) {
  compile_args_t *c = ud;
  char *grown = realloc(c->code, c->ncode + sz);
  if (!grown) {
    c->oom = true;
    return 1;
  }
  memcpy(grown + c->ncode, p, sz);
  c->code = grown;
  c->ncode += sz;
  return 0;
}

/* (args) → a coroutine holding [runner, chunk]: the chunk compiled from
 * text and dumped into args->code. */
static int compile(lua_State *L) {
  compile_args_t *c = lua_touserdata(L, 1);
  atr__sandbox_open(L);
  if (luaL_loadbufferx(L, c->text, c->len, c->chunkname, "t") != LUA_OK)
    return lua_error(L);
  if (lua_dump(L, dump_writer, c, 0) != 0 || c->oom)
    return luaL_error(L, "out of memory");
  lua_State *co = lua_newthread(L);
  lua_pushcfunction(co, runner);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);
  return 1;
}

/* (policy) → the names of the hooks defined, as a bit mask (integer). */
static int find_hooks(lua_State *L) {
  lua_Integer mask = 0;
  for (int i = 0; hook_names[i]; i++) {
    int t = lua_getglobal(L, hook_names[i]);
    if (t == LUA_TFUNCTION)
      mask |= (lua_Integer)1 << i;
    else if (t != LUA_TNIL)
      return luaL_error(L, "%s is a %s, not a function", hook_names[i],
                        lua_typename(L, t));
    lua_pop(L, 1);
  }
  lua_pushinteger(L, mask);
  return 1;
}

/* A load error: the message as Lua gave it, or prefixed with the name. */
static char *load_error(const char *name, const char *msg) {
  char *out = NULL;
  size_t n = strlen(name);
  if (!msg)
    msg = "failed";
  if (strncmp(msg, name, n) == 0 && msg[n] == ':')
    out = strdup(msg);
  else if (asprintf(&out, "%s: %s", name, msg) < 0)
    out = NULL;
  return out;
}

/* Run the compiled chunk's top level; 0, or *msg (malloc'd). */
static int load_run(atr__policy_run_t *run, lua_State *L, lua_State *co,
                    unsigned *hooks, char **msg) {
  int nres = 0;
  int st = lua_resume(co, L, 1, &nres);
  if (st != LUA_OK || run->tripped || run->mem_hit || run->mem_pending) {
    atr_decision_t *d = run->dec;
    int rc = add_failure(run, L, st != LUA_OK ? co : NULL, st);
    if (rc != 0)
      return rc;
    /* "policy caps.lua:3: ..." → "caps.lua:3: ..." */
    *msg = strdup(d->denies[d->ndenies - 1].message + 7);
    return ATR_EINVAL;
  }
  lua_pushcfunction(L, find_hooks);
  st = lua_pcall(L, 0, 1, 0);
  if (st != LUA_OK) {
    *msg = load_error(run->name, lua_tostring(L, -1));
    return ATR_EINVAL;
  }
  *hooks = (unsigned)lua_tointeger(L, -1);
  if (*hooks == 0 &&
      asprintf(msg,
               "%s: defines none of the hooks (" ATR_POLICY_HOOK_NAMES
               "): a policy is a file of global functions "
               "named after them",
               run->name) < 0)
    *msg = NULL;
  return *hooks == 0 ? ATR_EINVAL : 0;
}

static int policy_new(const char *name, compile_args_t *c, unsigned hooks,
                      atr_policy_t **out) {
  atr_policy_t *p = calloc(1, sizeof *p);
  if (!p)
    return ATR_ENOMEM;
  p->name = strdup(name);
  p->chunkname = strdup(c->chunkname);
  if (!p->name || !p->chunkname) {
    free(p->name);
    free(p->chunkname);
    free(p);
    return ATR_ENOMEM;
  }
  atomic_init(&p->refs, 1);
  p->code = c->code;
  p->ncode = c->ncode;
  c->code = NULL;
  p->hooks = hooks;
  *out = p;
  return 0;
}

int atr__policy_load_here(const char *name, const char *text, size_t len,
                          const atr_policy_limits_t *lim, atr_policy_t **out,
                          char **err) {
  if (err)
    *err = NULL;
  if (!out)
    return ATR_EINVAL;
  *out = NULL;
  if (!name || !text)
    return ATR_EINVAL;
  atr_decision_t dec;
  atr_decision_init(&dec);
  atr__policy_run_t run;
  atr__policy_run_init(&run, name, NULL, lim, &dec);
  compile_args_t c = {.text = text, .len = len};
  char *chunkname = NULL, *msg = NULL;
  unsigned hooks = 0;
  int rc = ATR_ENOMEM;
  if (asprintf(&chunkname, "@%s", name) < 0)
    goto done;
  c.chunkname = chunkname;
  lua_State *L = atr__policy_state_new(&run);
  if (!L) {
    rc = ATR_EINVAL;
    if (asprintf(&msg, "%s: the policy memory limit is too small", name) < 0)
      msg = NULL;
    goto done;
  }
  lua_pushcfunction(L, compile);
  lua_pushlightuserdata(L, &c);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    rc = c.oom ? ATR_ENOMEM : ATR_EINVAL;
    msg = load_error(name, lua_tostring(L, -1));
  } else {
    rc = load_run(&run, L, lua_tothread(L, -1), &hooks, &msg);
  }
  atr__policy_state_close(L, &run);
  if (rc == 0)
    rc = policy_new(name, &c, hooks, out);
done:
  if (rc != 0 && err)
    *err = msg ? msg : strdup(atr_strerror(rc));
  else
    free(msg);
  free(c.code);
  free(chunkname);
  atr_decision_clear(&dec);
  return rc;
}

int atr_policy_load_file(const char *path, const atr_policy_limits_t *lim,
                         atr_policy_t **out, char **err) {
  if (err)
    *err = NULL;
  if (!path || !out)
    return ATR_EINVAL;
  *out = NULL;
  uint64_t cap = lim && lim->memory ? lim->memory : ATR_POLICY_MEMORY_LIMIT;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    if (err && asprintf(err, "%s: %s", path, strerror(e)) < 0)
      *err = NULL;
    return e == ENOENT ? ATR_ENOENT : ATR_EIO;
  }
  char *text = NULL;
  size_t len = 0, cap_text = 0;
  int rc = 0;
  for (;;) {
    if (len == cap_text) {
      cap_text = cap_text ? cap_text * 2 : 8192;
      char *grown = realloc(text, cap_text + 1);
      if (!grown) {
        rc = ATR_ENOMEM;
        break;
      }
      text = grown;
    }
    size_t got = fread(text + len, 1, cap_text - len, f);
    len += got;
    if (got == 0)
      break;
    if (len > cap) {
      rc = ATR_EINVAL;
      if (err && asprintf(err,
                          "%s: larger than the policy memory limit (%" PRIu64
                          " bytes)",
                          path, cap) < 0)
        *err = NULL;
      break;
    }
  }
  if (rc == 0 && ferror(f)) {
    rc = ATR_EIO;
    if (err && asprintf(err, "%s: read error", path) < 0)
      *err = NULL;
  }
  fclose(f);
  if (rc == 0) {
    const char *slash = strrchr(path, '/');
    rc = atr_policy_load(slash ? slash + 1 : path, text, len, lim, out, err);
  }
  free(text);
  return rc;
}

atr_policy_t *atr_policy_ref(atr_policy_t *p) {
  if (p)
    atomic_fetch_add(&p->refs, 1);
  return p;
}

void atr_policy_unref(atr_policy_t *p) {
  if (!p || atomic_fetch_sub(&p->refs, 1) != 1)
    return;
  free(p->name);
  free(p->chunkname);
  free(p->code);
  free(p);
}

const char *atr_policy_name(const atr_policy_t *p) {
  return p ? p->name : NULL;
}

bool atr_policy_has_hook(const atr_policy_t *p, const char *hook) {
  int i = hook_index(hook);
  return p && i >= 0 && (p->hooks & (1u << i));
}

/* ---- evaluating ---------------------------------------------------------- */

typedef struct prepare_args {
  const atr_policy_t *p;
  json_t *input;
  size_t off; /* lua_load's reader position */
} prepare_args_t;

static const char *code_reader(lua_State *L, void *ud, size_t *size) {
  prepare_args_t *a = ud;
  *size = a->p->ncode - a->off;
  a->off = a->p->ncode;
  return *size ? a->p->code : NULL;
}

/* (args) → a coroutine holding [runner, chunk, input]. */
static int prepare(lua_State *L) {
  prepare_args_t *a = lua_touserdata(L, 1);
  atr__sandbox_open(L);
  lua_State *co = lua_newthread(L);
  lua_pushcfunction(co, runner);
  /* Our own dump, so mode "b" is safe here; the policy cannot reach it. */
  if (lua_load(co, code_reader, a, a->p->chunkname, "b") != LUA_OK) {
    lua_xmove(co, L, 1);
    return lua_error(L);
  }
  atr__sandbox_push_input(L, a->input);
  lua_xmove(L, co, 1);
  return 1;
}

static int run_eval(atr__policy_run_t *run, const atr_policy_t *p,
                    json_t *input) {
  lua_State *L = atr__policy_state_new(run);
  if (!L) {
    run->tripped = ATR__TRIP_MEMORY;
    return add_failure(run, NULL, NULL, LUA_ERRMEM);
  }
  prepare_args_t a = {p, input, 0};
  lua_pushcfunction(L, prepare);
  lua_pushlightuserdata(L, &a);
  int rc;
  bool failed = true;
  int st = lua_pcall(L, 1, 1, 0);
  if (st != LUA_OK) {
    rc = add_failure(run, L, NULL, st);
  } else {
    lua_State *co = lua_tothread(L, -1);
    int nres = 0;
    st = lua_resume(co, L, 2, &nres);
    if (st == LUA_OK && !run->tripped && !run->mem_hit && !run->mem_pending) {
      size_t before = run->dec->ndenies;
      rc = check_returns(run, co, nres);
      failed = run->dec->ndenies > before;
    } else {
      rc = add_failure(run, L, st == LUA_OK ? NULL : co, st);
    }
  }
  if (failed)
    drop_sets(run->dec);
  atr__policy_state_close(L, run);
  return rc;
}

int atr__policy_eval_here(const atr_policy_t *p, const char *hook,
                          json_t *input, const atr_policy_limits_t *lim,
                          atr_decision_t *out) {
  if (!out)
    return ATR_EINVAL;
  atr_decision_init(out);
  int i = hook_index(hook);
  if (!p || i < 0 || !json_is_object(input))
    return ATR_EINVAL;
  if (!(p->hooks & (1u << i)))
    return 0;
  atr__policy_run_t run;
  atr__policy_run_init(&run, p->name, hook_names[i], lim, out);
  return run_eval(&run, p, input);
}
