/* core/routes.c — the table of HTTP routes plugins add (see routes.h).
 *
 * A handful of exact method+path entries, searched linearly: plugins add a
 * route or two each, so a list beats a hash here. Writers are the main
 * thread during init() and rollback; readers are the HTTP workers, hence a
 * rwlock (routes_lock) rather than a mutex.
 */
#include "routes.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

typedef struct route {
  char *owner;
  char *method;
  char *path;
  atr_route_fn fn;
  void *user_data;
} route_t;

static pthread_rwlock_t routes_lock = PTHREAD_RWLOCK_INITIALIZER;
static route_t *routes;
static size_t nroutes;
static size_t routes_cap;

/* The core dispatches these itself before it looks at this table, so a
 * plugin route there could never be reached; refuse it up front. */
static bool reserved_path(const char *path) {
  return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
         strncmp(path, "/api/", 5) == 0;
}

static void route_free(route_t *r) {
  free(r->owner);
  free(r->method);
  free(r->path);
}

/* Caller holds routes_lock. */
static const route_t *find(const char *method, const char *path,
                           bool *path_seen) {
  *path_seen = false;
  for (size_t i = 0; i < nroutes; i++) {
    if (strcmp(routes[i].path, path) != 0)
      continue;
    *path_seen = true;
    if (strcmp(routes[i].method, method) == 0)
      return &routes[i];
  }
  return NULL;
}

static int append(route_t r) {
  if (nroutes == routes_cap) {
    size_t cap = routes_cap ? routes_cap * 2 : 8;
    route_t *grown = realloc(routes, cap * sizeof(*grown));
    if (grown == NULL)
      return ATR_ENOMEM;
    routes = grown;
    routes_cap = cap;
  }
  routes[nroutes++] = r;
  return 0;
}

int atr_routes_add(const char *owner, const char *method, const char *path,
                   atr_route_fn fn, void *user_data) {
  if (method == NULL || *method == '\0' || path == NULL || path[0] != '/' ||
      fn == NULL)
    return ATR_EINVAL;
  if (reserved_path(path))
    return ATR_EEXIST;
  route_t r = {strdup(owner ? owner : "core"), strdup(method), strdup(path), fn,
               user_data};
  int rc = (r.owner && r.method && r.path) ? 0 : ATR_ENOMEM;
  bool seen;
  pthread_rwlock_wrlock(&routes_lock);
  if (rc == 0 && find(method, path, &seen) != NULL)
    rc = ATR_EEXIST;
  if (rc == 0)
    rc = append(r);
  pthread_rwlock_unlock(&routes_lock);
  if (rc != 0)
    route_free(&r);
  return rc;
}

int atr_routes_lookup(const char *method, const char *path, atr_route_fn *fn,
                      void **user_data) {
  bool seen = false;
  int rc = ATR_ENOENT;
  if (method == NULL || path == NULL)
    return ATR_EINVAL;
  pthread_rwlock_rdlock(&routes_lock);
  const route_t *r = find(method, path, &seen);
  if (r != NULL) {
    if (fn != NULL)
      *fn = r->fn;
    if (user_data != NULL)
      *user_data = r->user_data;
    rc = 0;
  } else if (seen) {
    rc = ATR_EPERM;
  }
  pthread_rwlock_unlock(&routes_lock);
  return rc;
}

size_t atr_routes_remove_owner(const char *owner) {
  size_t removed = 0, kept = 0;
  if (owner == NULL)
    return 0;
  pthread_rwlock_wrlock(&routes_lock);
  for (size_t i = 0; i < nroutes; i++) {
    if (strcmp(routes[i].owner, owner) == 0) {
      route_free(&routes[i]);
      removed++;
    } else {
      routes[kept++] = routes[i];
    }
  }
  nroutes = kept;
  pthread_rwlock_unlock(&routes_lock);
  return removed;
}

size_t atr_routes_count(void) {
  pthread_rwlock_rdlock(&routes_lock);
  size_t n = nroutes;
  pthread_rwlock_unlock(&routes_lock);
  return n;
}

void atr_routes_reset(void) {
  pthread_rwlock_wrlock(&routes_lock);
  for (size_t i = 0; i < nroutes; i++)
    route_free(&routes[i]);
  free(routes);
  routes = NULL;
  nroutes = 0;
  routes_cap = 0;
  pthread_rwlock_unlock(&routes_lock);
}
