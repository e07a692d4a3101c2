/* core/server.h — `atrium server`: the long-running process.
 *
 * Starts the plugins the config enables, the HTTP server and a libuv loop on
 * the main thread that owns timers and signals: SIGTERM/SIGINT drain
 * in-flight requests (for at most shutdown_grace) and exit, SIGHUP reloads
 * the configuration's reloadable options.
 *
 * Threads: main thread only.
 */
#ifndef ATRIUM_CORE_SERVER_H
#define ATRIUM_CORE_SERVER_H

#include "app.h"

/* Runs until a signal stops it; returns the process exit status. */
int atr_server_run(atr_app_t *app);

#endif
