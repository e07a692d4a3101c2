/* core/policy/policy_stack.c — loads and evaluations on a stack of their
 * own (policy_internal.h).
 *
 * Lua bounds how deep a policy may recurse through C functions (pcall, a
 * sort comparator, gsub callbacks, metamethods) by counting calls, not
 * bytes: about 200 levels, each with its C frames. How much stack the
 * caller has varies (an HTTP worker, a job daemon, `atrium policy test`,
 * a unit test's thread, each with its own size), so the same policy could
 * pass offline and overflow online. An 8 MiB stack of its own gives every
 * load and evaluation the same limit, whoever calls. A thread per call
 * costs tens of microseconds, small beside an evaluation, and its stack is
 * mapped lazily, so the 8 MiB are address space, not memory. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "atrium/error.h"
#include "policy_internal.h"

typedef struct call {
  void (*fn)(void *arg);
  void *arg;
} call_t;

static void *trampoline(void *arg) {
  call_t *c = arg;
  c->fn(c->arg);
  return NULL;
}

int atr__policy_on_own_stack(void (*fn)(void *arg), void *arg) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return ATR_ENOMEM;
  call_t c = {fn, arg};
  pthread_t t;
  int rc = pthread_attr_setstacksize(&attr, ATR__POLICY_STACK);
  if (rc == 0)
    rc = pthread_create(&t, &attr, trampoline, &c);
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return ATR_ENOMEM;
  pthread_join(t, NULL);
  return 0;
}

/* ---- on a stack of their own -------------------------------------------- */

/* Loading runs the chunk and evaluating runs the hook; both may recurse
 * through C as deep as Lua allows, so both run on the policy thread
 * (atr__policy_on_own_stack), whatever thread asked. */

typedef struct load_call {
  const char *name, *text;
  size_t len;
  const atr_policy_limits_t *lim;
  atr_policy_t **out;
  char **err;
  int rc;
} load_call_t;

static void load_call(void *arg) {
  load_call_t *c = arg;
  c->rc =
      atr__policy_load_here(c->name, c->text, c->len, c->lim, c->out, c->err);
}

int atr_policy_load(const char *name, const char *text, size_t len,
                    const atr_policy_limits_t *lim, atr_policy_t **out,
                    char **err) {
  if (err)
    *err = NULL;
  if (out)
    *out = NULL;
  load_call_t c = {name, text, len, lim, out, err, 0};
  int rc = atr__policy_on_own_stack(load_call, &c);
  if (rc != 0 && err && !*err &&
      asprintf(err, "%s: cannot start the policy thread", name) < 0)
    *err = NULL;
  return rc ? rc : c.rc;
}

typedef struct eval_call {
  const atr_policy_t *p;
  const char *hook;
  json_t *input;
  const atr_policy_limits_t *lim;
  atr_decision_t *out;
  int rc;
} eval_call_t;

static void eval_call(void *arg) {
  eval_call_t *c = arg;
  c->rc = atr__policy_eval_here(c->p, c->hook, c->input, c->lim, c->out);
}

int atr_policy_eval(const atr_policy_t *p, const char *hook, json_t *input,
                    const atr_policy_limits_t *lim, atr_decision_t *out) {
  if (!out)
    return ATR_EINVAL;
  atr_decision_init(out);
  eval_call_t c = {p, hook, input, lim, out, 0};
  int rc = atr__policy_on_own_stack(eval_call, &c);
  return rc ? rc : c.rc;
}
