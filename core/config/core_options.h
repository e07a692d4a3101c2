/* core/config/core_options.h — the core's own options: their table (the
 * names, types, defaults, bounds and descriptions that `atrium server
 * --print-config`, the API's config view and docs/configuration.md show)
 * and the struct they fill by offset. The table is constant; a filled
 * struct belongs to the app that resolved it (app.h).
 * Threads: the table may be read from any thread. */
#ifndef ATRIUM_CORE_CORE_OPTIONS_H
#define ATRIUM_CORE_CORE_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "atrium/option.h"

/* The core's own options, filled by offset from atr_core_options. */
typedef struct atr_core_config {
  const char *http_address;
  int64_t http_threads;
  int64_t http_request_timeout_ms;
  uint64_t http_max_body_size;
  uint64_t http_max_header_size;
  int64_t http_header_timeout_ms;
  int64_t http_idle_timeout_ms;
  int64_t http_max_connections;
  int64_t http_max_connections_per_address;
  const char *access_url; /* "" for http://<first http.address> */
  const char *data_dir;
  const char *const *plugin_dirs;
  const char *log_level;
  const char *log_format;
  int64_t shutdown_grace_ms;
  int64_t session_lifetime_ms;
  int64_t token_max_lifetime_ms;
  bool secure_cookies;
  int64_t login_rate;
  int64_t api_rate;
  uint64_t file_max_size;
  uint64_t file_max_unpacked;
  int64_t file_max_entries;
  int64_t prov_daemons;
  const char *const *prov_tags; /* KEY=VALUE */
  int64_t prov_poll_ms;
  int64_t prov_heartbeat_ms;
  int64_t prov_hung_ms;
  int64_t prov_pending_ms;
  int64_t prov_reaper_ms;
  uint64_t prov_max_log;
  const char *prov_run_as; /* "" runs builds as the server's user */
  const char *const *policy_files;
  int64_t policy_instructions;
  int64_t policy_time_ms;
  uint64_t policy_memory;
  const char *db_encryption_keys;     /* secret: never log it */
  const char *db_encryption_key_file; /* "" for none */
  const char *agent_bundle_dir; /* "auto": found beside the binary; "": none */
  int64_t http_agent_threads;
  int64_t agent_heartbeat_ms;
} atr_core_config_t;

extern const atr_option_t atr_core_options[];

#endif
