/* core/policy.h — Lua policies: compile a policy once, evaluate one of its
 * hooks against a JSON input in a fresh sandbox each time, and merge the
 * decisions of a deployment's policies and a template's.
 *
 * A policy is Lua 5.4 text that defines global functions named after the
 * hooks (template_push, workspace_create, build, schedule). Each gets a
 * read-only `input` and decides through the `policy` library:
 * policy.deny(msg [, param]), policy.warn(msg), policy.set(param, value);
 * it returns nothing. A hook the policy does not define has no opinion.
 * docs/policies.md is the authors' guide; this header is the host's side.
 *
 * Every evaluation gets a new lua_State (nothing survives between two
 * evaluations) with only base, string, table, math and utf8, read-only
 * libraries and input, and three limits: VM instructions, wall-clock time
 * and memory. Anything that goes wrong — a runtime error, a limit, a
 * return value, a malformed decision — becomes a deny whose message names
 * the policy and the line: "policy caps.lua:12: attempt to index a nil
 * value (field 'user')". So atr_policy_eval succeeds (returns 0) whatever
 * the policy does; it fails only for the caller's mistakes (an unknown
 * hook: ATR_EINVAL) or when the host is out of memory (ATR_ENOMEM).
 *
 * Ownership: an atr_policy_t is reference counted and immutable once
 * loaded; atr_policy_unref frees it with the last reference. A decision
 * owns its strings (atr_decision_clear). A set holds one reference to
 * each of its policies. Inputs are borrowed and never modified.
 *
 * Threads: loading, evaluating and the reference counts are safe from any
 * thread; one policy may be evaluated by many threads at once. A decision
 * or a set belongs to one thread at a time.
 */
#ifndef ATRIUM_CORE_POLICY_H
#define ATRIUM_CORE_POLICY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The hooks, in the order atrium documents them. */
#define ATR_POLICY_HOOK_NAMES "template_push, workspace_create, build, schedule"

/* Per evaluation of one policy. A zero field takes its default. */
typedef struct atr_policy_limits {
  uint64_t instructions; /* Lua VM instructions (policy.instruction_limit) */
  int64_t time_ms;       /* wall-clock milliseconds (policy.time_limit) */
  uint64_t memory;       /* bytes the Lua state may hold
                            (policy.memory_limit) */
} atr_policy_limits_t;

#define ATR_POLICY_INSTRUCTION_LIMIT 1000000u
#define ATR_POLICY_TIME_LIMIT_MS 100
#define ATR_POLICY_MEMORY_LIMIT (8u << 20)

typedef enum atr_policy_scope {
  ATR_POLICY_DEPLOYMENT = 1, /* config/policies: admins; run first */
  ATR_POLICY_TEMPLATE = 2,   /* a template's policy.lua; can only narrow */
} atr_policy_scope_t;

/* A deny, a warning or a line a policy printed. */
typedef struct atr_policy_msg {
  char *message;
  char *parameter; /* denies: the parameter it names, or NULL */
  char *policy;    /* the name of the policy that said it */
} atr_policy_msg_t;

/* A value a policy set: a parameter (workspace_create, build) or a
 * schedule field (schedule: "autostart", "ttl_ms"), as text the way the
 * API passes parameter values ("8", "true", "[\"a\"]"). */
typedef struct atr_policy_setting {
  char *name;
  char *value;
  char *policy;
} atr_policy_setting_t;

typedef struct atr_decision {
  atr_policy_msg_t *denies;
  size_t ndenies;
  atr_policy_msg_t *warnings;
  size_t nwarnings;
  atr_policy_setting_t *sets; /* one per name, in the order first set */
  size_t nsets;
  atr_policy_msg_t *output; /* print() lines, capped; for logs and the CLI */
  size_t noutput;
} atr_decision_t;

typedef struct atr_policy atr_policy_t;

/* Whether hook is one of ATR_POLICY_HOOK_NAMES. */
bool atr_policy_hook_valid(const char *hook);

/* Compile `text` (Lua source; binary chunks are refused) as the policy
 * called `name` — the name messages and decisions carry: "caps.lua", or
 * "policy.lua" for a template's. The file's top level runs once, under
 * the limits, to learn which hooks it defines; it must define at least
 * one. On failure ATR_EINVAL (or ATR_ENOMEM) and *err is a message such
 * as "caps.lua:3: '=' expected near 'x'" (caller frees). */
int atr_policy_load(const char *name, const char *text, size_t len,
                    const atr_policy_limits_t *lim, atr_policy_t **out,
                    char **err);
/* The same from a file; the name is the file's base name. A file that
 * cannot be read is ATR_EIO (ATR_ENOENT when missing) with *err naming
 * the path. */
int atr_policy_load_file(const char *path, const atr_policy_limits_t *lim,
                         atr_policy_t **out, char **err);
atr_policy_t *atr_policy_ref(atr_policy_t *p);
void atr_policy_unref(atr_policy_t *p); /* NULL is fine */
const char *atr_policy_name(const atr_policy_t *p);
/* Whether the policy defined this hook when it was loaded. */
bool atr_policy_has_hook(const atr_policy_t *p, const char *hook);

/* Evaluate p's `hook` on `input` (a JSON object, see docs/policies.md)
 * into *out, which this initializes (clear it after, whatever the result).
 * lim NULL: the defaults. Returns 0 — a failing policy is a deny in *out —
 * or ATR_EINVAL for an unknown hook or a NULL argument, ATR_ENOMEM. */
int atr_policy_eval(const atr_policy_t *p, const char *hook, json_t *input,
                    const atr_policy_limits_t *lim, atr_decision_t *out);

void atr_decision_init(atr_decision_t *d);
void atr_decision_clear(atr_decision_t *d);
bool atr_decision_denied(const atr_decision_t *d);
/* The value set for name, or NULL. */
const char *atr_decision_get_set(const atr_decision_t *d, const char *name);
/* {"denies": [{"message", "parameter", "policy"}], "warnings":
 * [{"message", "policy"}], "sets": {name: value}, "set_by": {name:
 * policy}}; NULL on ENOMEM. For the audit log and `atrium policy eval`;
 * print() output is left out. */
json_t *atr_decision_to_json(const atr_decision_t *d);

/* The policies that apply to one request, with their scopes. */
typedef struct atr_policy_set {
  struct atr_policy_set_item {
    atr_policy_t *policy; /* one reference held */
    atr_policy_scope_t scope;
  } * items;
  size_t n;
  size_t cap;
} atr_policy_set_t;

void atr_policy_set_init(atr_policy_set_t *s);
/* Add p with a new reference. 0, ATR_EINVAL, ATR_ENOMEM. */
int atr_policy_set_add(atr_policy_set_t *s, atr_policy_t *p,
                       atr_policy_scope_t scope);
/* Add every policy of src to s, with its scope and a new reference: a
 * request copies the current deployment set (under the lock that guards
 * its swap on reload), adds the template's policy and evaluates without
 * holding the lock. 0, or ATR_ENOMEM with s as it was. */
int atr_policy_set_add_all(atr_policy_set_t *s, const atr_policy_set_t *src);
/* Load every file the glob patterns match (each pattern's matches in name
 * order; a pattern without wildcards must name an existing file) and add
 * them with `scope`. All or nothing: on the first failure *s is left as it
 * was and *err says which file and why — so a reload that fails keeps the
 * previous policies. */
int atr_policy_set_load_files(atr_policy_set_t *s, const char *const *globs,
                              atr_policy_scope_t scope,
                              const atr_policy_limits_t *lim, char **err);
void atr_policy_set_clear(atr_policy_set_t *s);

/* Evaluate hook with every policy of the set into *out (initialized
 * here): the deployment policies first, in the order added, then the
 * template's. Each sees the values the ones before it set (in
 * input.parameters.new, or input.schedule.new for schedule).
 *
 * A template policy can only narrow: its denies and warnings add up with
 * the deployment's, a deny always wins, it cannot set what a deployment
 * policy set (ignored, with a warning), and when it sets anything the
 * deployment policies run again on the final values: their new denies
 * are added and their sets win. The caller still validates the final
 * values against the template's parameter schema. Returns as
 * atr_policy_eval. */
int atr_policy_set_eval(const atr_policy_set_t *s, const char *hook,
                        json_t *input, const atr_policy_limits_t *lim,
                        atr_decision_t *out);

#endif
