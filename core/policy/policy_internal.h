/* core/policy_internal.h — what policy.c, policy_sandbox.c,
 * policy_pattern.c and policy_set.c share; not for other modules (tests
 * use it to check the sandbox's pieces one by one).
 *
 * One atr__policy_run_t lives on the C stack of each evaluation (or load)
 * and is reached from Lua through the state's extra space: the allocator,
 * the count hook and the `policy` library all charge and record into it.
 * Threads: a run belongs to the thread that evaluates.
 */
#ifndef ATRIUM_CORE_POLICY_INTERNAL_H
#define ATRIUM_CORE_POLICY_INTERNAL_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy.h"

/* Caps on what one evaluation can say: beyond them a policy errors. */
#define ATR__POLICY_MAX_MESSAGES 100 /* denies, and warnings, each */
#define ATR__POLICY_MAX_SETS 256
#define ATR__POLICY_MAX_MESSAGE 1000 /* bytes; longer ones are cut */
#define ATR__POLICY_MAX_OUTPUT 64    /* print() lines kept */
#define ATR__POLICY_MAX_INPUT_DEPTH 64

/* VM instructions between two calls of the count hook (which also checks
 * the clock and the memory flag). */
#define ATR__POLICY_HOOK_STEP 256
#define ATR__POLICY_ARENA (48u << 10)

typedef enum atr__policy_trip {
  ATR__TRIP_NONE = 0,
  ATR__TRIP_INSTRUCTIONS,
  ATR__TRIP_TIME,
  ATR__TRIP_MEMORY,
} atr__policy_trip_t;

typedef struct atr__policy_run {
  const char *name; /* the policy's name, for messages */
  const char *hook; /* NULL while loading (only the top level runs) */
  atr_policy_limits_t lim;
  uint64_t deadline_ns; /* CLOCK_MONOTONIC */
  uint64_t used;        /* instructions so far (and charged C work) */
  /* The allocator's books. A refusal leaves `mem_pending`: Lua may
   * collect garbage and retry the same request at once, and if that
   * succeeds nothing happened. A second refusal, or any other request
   * first (lauxlib's buffers do not retry), makes it a limit hit
   * (`mem_hit`); so does a refusal still pending when the run ends. */
  size_t mem_used;
  size_t mem_cap;
  bool mem_pending;
  bool mem_hit;
  const void *pending_ptr;
  size_t pending_size;
  size_t gc_floor; /* no forced collection below this (see policy.c) */
  /* Once a limit is hit it stays hit: every later instruction raises the
   * same error, so a pcall in the policy cannot swallow it. */
  atr__policy_trip_t tripped;
  char trip_msg[256];  /* "caps.lua:7: instruction limit exceeded (...)" */
  int hook_line;       /* where the hook function is defined */
  bool in_hook;        /* the hook runs (not the file's top level) */
  atr_decision_t *dec; /* where policy.deny/warn/set and print write */
  /* Setting a sandbox up takes a few hundred small blocks, all dead at
   * lua_close: they come from one arena (freeing one is a no-op), the
   * rest from malloc. */
  char *arena;
  size_t arena_used;
} atr__policy_run_t;

/* The run of a state (NULL for a plain state, as in tests). */
static inline atr__policy_run_t *atr__policy_run(lua_State *L) {
  return *(atr__policy_run_t **)lua_getextraspace(L);
}

uint64_t atr__policy_now_ns(void);
void atr__policy_run_init(atr__policy_run_t *run, const char *name,
                          const char *hook, const atr_policy_limits_t *lim,
                          atr_decision_t *dec);
/* A new state whose allocator and extra space point at run; NULL when the
 * memory cap cannot even hold an empty state. The count hook is set. */
lua_State *atr__policy_state_new(atr__policy_run_t *run);
/* lua_close, then free the arena. */
void atr__policy_state_close(lua_State *L, atr__policy_run_t *run);
/* Open the sandboxed libraries and the `policy` library in L and make them
 * read-only; the stack is left as it was. Raises (out of memory): call it
 * from a protected C function. */
void atr__sandbox_open(lua_State *L);

/* Run fn(arg) on a thread with a stack of ATR__POLICY_STACK bytes and wait
 * for it: the same room for every evaluation, on an HTTP worker (whose
 * stack is small) as offline on the main thread. 0, or ATR_ENOMEM when
 * no thread could be started (then fn did not run). */
#define ATR__POLICY_STACK (8u << 20)
int atr__policy_on_own_stack(void (*fn)(void *arg), void *arg);
/* atr_policy_load and atr_policy_eval on the calling thread's stack: what
 * they run on the policy thread (policy_stack.c). */
int atr__policy_load_here(const char *name, const char *text, size_t len,
                          const atr_policy_limits_t *lim, atr_policy_t **out,
                          char **err);
int atr__policy_eval_here(const atr_policy_t *p, const char *hook,
                          json_t *input, const atr_policy_limits_t *lim,
                          atr_decision_t *out);
/* Push `input` as a deeply read-only table named "input" (JSON null is
 * nil). Raises on a too deep input; call protected. */
void atr__sandbox_push_input(lua_State *L, json_t *input);
/* Charge n units of C work to the instruction budget and check the
 * clock; raises the limit's error when one is hit. No-op without a run. */
void atr__policy_charge(lua_State *L, uint64_t n);
/* Replace find, match, gmatch and gsub in the table at the top of the
 * stack with versions whose matching is charged step by step (Lua's own
 * cannot be stopped by the hook: "(.-)(.-)(.-)x" on a long subject would
 * run for ages in C). Same results and errors as Lua 5.4's. */
void atr__pattern_open(lua_State *L);
/* Append a message or setting to d; the strings are copied (message cut
 * at ATR__POLICY_MAX_MESSAGE). 0 or ATR_ENOMEM. */
int atr__decision_add(atr_policy_msg_t **v, size_t *n, const char *message,
                      const char *parameter, const char *policy);
int atr__decision_set(atr_decision_t *d, const char *name, const char *value,
                      const char *policy);

#endif
