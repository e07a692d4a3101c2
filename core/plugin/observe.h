/* core/plugin/observe.h — handing the core's events to observer plugins.
 *
 * The core calls atr_observe_emit() where something an observer cares about
 * happened: an audit entry was recorded (type "audit"), a workspace build
 * ended ("build"), a provisioner job ended ("job_completed"). Every running
 * observer plugin whose ops have on_event gets an atr_event_t with the
 * fields as one JSON object, on the calling thread, in load order.
 *
 * The loader adds an observer when its init() succeeded and removes it
 * before its fini(); with no loader (unit tests that record audit entries
 * without a server) there is nobody to tell and emitting costs one lock.
 *
 * Ownership: emit steals `fields` (a NULL from a failed json_pack is
 * dropped). The event is borrowed by the plugin for the call only.
 * Threads: emit from any thread; add and remove on the main thread. An
 * observer's on_event runs under a read lock that remove waits for, so no
 * event reaches a plugin once its fini() may run.
 */
#ifndef ATRIUM_CORE_OBSERVE_H
#define ATRIUM_CORE_OBSERVE_H

#include <jansson.h>

#include "loader.h"

/* Tell every running observer: type is "audit", "build" or
 * "job_completed"; fields is stolen. */
void atr_observe_emit(const char *type, json_t *fields);

/* The loader's side: h is a running observer plugin / one about to stop. */
int atr__observe_add(atr_handle_t *h);
void atr__observe_remove(const atr_handle_t *h);

#endif
