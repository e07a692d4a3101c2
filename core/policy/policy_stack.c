/* core/policy/policy_stack.c — loads and evaluations on a stack of their
 * own (policy_internal.h).
 *
 * Lua bounds how deep a policy may recurse through C functions (pcall, a
 * sort comparator, gsub callbacks, metamethods) by counting calls, not
 * bytes: about 200 levels, which needs far more than the 100 KiB civetweb
 * gives its workers. A thread per call costs tens of microseconds, small
 * beside an evaluation, and its stack is mapped lazily, so the 8 MiB are
 * address space, not memory. */
#include <pthread.h>

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
