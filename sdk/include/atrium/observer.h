/* atrium/observer.h — the observer kind.
 *
 * An observer receives the host's events (requests served, builds, audit
 * entries, log lines) and may serve endpoints of its own, through
 * host->route_add() or on a listener it runs itself — observer_prometheus
 * serves /metrics on its own address by walking host->metrics_collect()
 * and host->plugins_each(). Any number of observers may be loaded.
 *
 * on_event() is called on the thread where the event happened and must not
 * block: copy what you need and return. The event is borrowed for the call.
 * It is called only between a successful init() and fini(), and fini() is
 * not called while an on_event() is still running.
 *
 * Events (type: the JSON object's members; new members and new types may
 * appear in any minor version, so ignore what you do not know):
 *   "audit"          an audit entry was recorded: action, resource_type,
 *                    resource_id, resource_target, user_id, username,
 *                    status_code, stored (false when writing it failed)
 *   "build"          a workspace build ended: build_id, workspace_id,
 *                    workspace_name, build_number, transition (start, stop,
 *                    delete), status (succeeded, failed, canceled)
 *   "job_completed"  a provisioner job ended: job_id, type
 *                    (template_version_import, workspace_build), result
 *                    (succeeded, failed, canceled), error, provisioner
 */
#ifndef ATRIUM_OBSERVER_H
#define ATRIUM_OBSERVER_H

#include <stdint.h>

#include "atrium/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct atr_event {
  uint32_t struct_size;
  const char *type; /* "audit", "build", "job_completed" */
  int64_t time_ms;
  const char *json; /* the event's fields as a JSON object */
} atr_event_t;

typedef struct atr_observer_ops {
  uint32_t struct_size;
  void (*on_event)(void *ctx, const atr_event_t *event); /* may be NULL */
} atr_observer_ops_t;

#define ATR_OBSERVER_OPS_MIN_SIZE                                              \
  (offsetof(atr_observer_ops_t, on_event) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_OBSERVER_H */
