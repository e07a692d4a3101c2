/* core/config/core_options.c — the core's own option table (see
 * core_options.h); docs/configuration.md is generated from it. */
#include "core_options.h"

#include <stddef.h>

#define ATR_CORE_FIELD(f) offsetof(atr_core_config_t, f)

static const char *const log_levels[] = {"error", "warn", "info", "debug",
                                         NULL};
static const char *const log_formats[] = {"auto", "text", "json", NULL};

const atr_option_t atr_core_options[] = {
    {ATR_OPT_STRING, "http.address", "127.0.0.1:3000", 0,
     ATR_CORE_FIELD(http_address),
     "Address and port the API and dashboard listen on: HOST:PORT, "
     "[IPv6]:PORT, or several separated by commas.",
     NULL, 0, 0},
    {ATR_OPT_INT, "http.threads", "16", 0, ATR_CORE_FIELD(http_threads),
     "Request worker threads: each runs one request's handler at a time. "
     "Connections are not tied to them (one event loop thread holds every "
     "connection), /healthz and /readyz never wait for them, and followed "
     "logs are streamed by a fixed pump, so this bounds concurrent handlers, "
     "not clients.",
     NULL, 1, 1024},
    {ATR_OPT_INT, "http.agent_threads", "2", 0,
     ATR_CORE_FIELD(http_agent_threads),
     "Threads of the agents' own lane: workspace agents' session upgrades, "
     "the requests inside their sessions and plain requests under "
     "/api/v2/workspaceagents/me/. Kept apart from http.threads, so API "
     "load never queues in front of agents, nor agents in front of the API.",
     NULL, 1, 256},
    {ATR_OPT_DURATION, "http.request_timeout", "30s", 0,
     ATR_CORE_FIELD(http_request_timeout_ms),
     "How long a client may take to send a request body (its headers: "
     "http.header_timeout), and to read the end of an answer the server "
     "closes the connection after.",
     NULL, 1000, 3600000},
    {ATR_OPT_DURATION, "http.header_timeout", "10s", 0,
     ATR_CORE_FIELD(http_header_timeout_ms),
     "How long a client may take from the first byte of a request to the "
     "end of its headers, and at most between two reads of its body; a "
     "client trickling bytes is cut off then, without holding a worker.",
     NULL, 100, 3600000},
    {ATR_OPT_DURATION, "http.idle_timeout", "60s", 0,
     ATR_CORE_FIELD(http_idle_timeout_ms),
     "How long a connection may stay open with no request (a new one, or "
     "kept alive after an answer) before the server closes it.",
     NULL, 100, 86400000.0},
    {ATR_OPT_INT, "http.max_connections", "10000", 0,
     ATR_CORE_FIELD(http_max_connections),
     "Connections open at once; more are closed as soon as accepted. The "
     "server raises its open-file limit to the hard limit at start; keep "
     "this below it. 0: no cap.",
     NULL, 0, 10000000},
    {ATR_OPT_INT, "http.max_connections_per_address", "0", 0,
     ATR_CORE_FIELD(http_max_connections_per_address),
     "Connections open at once from one client IP address; more are closed "
     "as soon as accepted. 0: off. Behind a load balancer or reverse proxy "
     "every client shares its address: keep this off there, or above what "
     "the proxy opens.",
     NULL, 0, 10000000},
    {ATR_OPT_SIZE, "http.max_body_size", "16MiB", 0,
     ATR_CORE_FIELD(http_max_body_size),
     "Largest request body accepted; larger ones get 413.", NULL, 1024,
     1099511627776.0},
    {ATR_OPT_SIZE, "http.max_header_size", "8KiB", 0,
     ATR_CORE_FIELD(http_max_header_size),
     "Largest request line plus headers accepted; larger ones get 431 "
     "before the rest is read.",
     NULL, 1024, 16384},
    {ATR_OPT_SIZE, "files.max_size", "10MiB", 0, ATR_CORE_FIELD(file_max_size),
     "Largest file (template archive) that POST /api/v2/files accepts; it "
     "must also fit in http.max_body_size.",
     NULL, 1024, 1073741824.0},
    {ATR_OPT_SIZE, "files.max_unpacked_size", "256MiB", 0,
     ATR_CORE_FIELD(file_max_unpacked),
     "What an uploaded archive may unpack to, all files together.", NULL, 1024,
     68719476736.0},
    {ATR_OPT_INT, "files.max_entries", "10000", 0,
     ATR_CORE_FIELD(file_max_entries),
     "How many entries (files, directories, links) an archive may hold.", NULL,
     1, 1000000},
    {ATR_OPT_STRING, "access_url", "", 0, ATR_CORE_FIELD(access_url),
     "The URL people and workspaces reach this deployment at "
     "(https://atrium.example.com), as Coder's access URL. Empty means "
     "http:// and the first http.address. The health report checks that "
     "<access_url>/healthz answers.",
     NULL, 0, 0},
    {ATR_OPT_STRING, "data_dir", "./atrium-data", 0, ATR_CORE_FIELD(data_dir),
     "Directory for local state (the SQLite database, job working "
     "directories); created with mode 0700 if missing.",
     NULL, 0, 0},
    {ATR_OPT_LIST, "plugin_dirs", "", 0, ATR_CORE_FIELD(plugin_dirs),
     "Directories plugins are loaded from; empty means "
     "<dir of the atrium binary>/../lib/atrium/plugins.",
     NULL, 0, 0},
    {ATR_OPT_ENUM, "log.level", "info", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(log_level), "Least severe log level written.", log_levels,
     0, 0},
    {ATR_OPT_ENUM, "log.format", "auto", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(log_format),
     "text: one readable line per message; json: one JSON object per line "
     "({time, level, component, msg}) for log collectors; auto: text on a "
     "terminal, json otherwise.",
     log_formats, 0, 0},
    {ATR_OPT_DURATION, "session.lifetime", "24h", 0,
     ATR_CORE_FIELD(session_lifetime_ms),
     "How long a sign-in session lasts without use; each use extends it.", NULL,
     60000, 2592000000.0},
    {ATR_OPT_DURATION, "session.max_token_lifetime", "720h", 0,
     ATR_CORE_FIELD(token_max_lifetime_ms),
     "The longest lifetime a long-lived API token may ask for.", NULL, 60000,
     31622400000.0},
    {ATR_OPT_INT, "http.rate_limit.login", "10", 0, ATR_CORE_FIELD(login_rate),
     "Sign-in attempts allowed per minute from one IP address (not per "
     "account, so failures from elsewhere never lock a user out); more get "
     "429 with Retry-After. 0 turns the limit off.",
     NULL, 0, 100000},
    {ATR_OPT_INT, "http.rate_limit.api", "600", 0, ATR_CORE_FIELD(api_rate),
     "API requests allowed per minute for one signed-in user; 0 turns the "
     "limit off.",
     NULL, 0, 10000000},
    {ATR_OPT_BOOL, "http.secure_cookies", "false", 0,
     ATR_CORE_FIELD(secure_cookies),
     "Mark session cookies Secure (set when atrium is served over HTTPS, "
     "e.g. behind a TLS-terminating proxy).",
     NULL, 0, 0},
    {ATR_OPT_INT, "provisioner.daemons", "3", 0, ATR_CORE_FIELD(prov_daemons),
     "Built-in provisioner daemons: how many jobs (template imports and "
     "workspace builds) this server runs at once. 0 runs none (external "
     "daemons only).",
     NULL, 0, 256},
    {ATR_OPT_LIST, "provisioner.tags", "", 0, ATR_CORE_FIELD(prov_tags),
     "Tags the built-in daemons hold, as KEY=VALUE items; they take only "
     "jobs whose tags (from the template version) they all hold. A job "
     "without tags fits any daemon.",
     NULL, 0, 0},
    {ATR_OPT_DURATION, "provisioner.poll_interval", "1s", 0,
     ATR_CORE_FIELD(prov_poll_ms),
     "How often an idle daemon looks for jobs without being told of one. "
     "New jobs are announced and start at once; this only catches "
     "announcements that were missed.",
     NULL, 50, 600000},
    {ATR_OPT_DURATION, "provisioner.heartbeat_interval", "10s", 0,
     ATR_CORE_FIELD(prov_heartbeat_ms),
     "How often a running job tells the database it is alive.", NULL, 50,
     600000},
    {ATR_OPT_DURATION, "provisioner.heartbeat_timeout", "5m", 0,
     ATR_CORE_FIELD(prov_hung_ms),
     "The reaper fails a running job that has not sent a heartbeat for "
     "this long (its daemon died); the workspace keeps the previous "
     "build's state.",
     NULL, 100, 86400000},
    {ATR_OPT_DURATION, "provisioner.pending_timeout", "30m", 0,
     ATR_CORE_FIELD(prov_pending_ms),
     "The reaper fails a job that no daemon has claimed for this long.", NULL,
     100, 604800000},
    {ATR_OPT_DURATION, "provisioner.reaper_interval", "30s", 0,
     ATR_CORE_FIELD(prov_reaper_ms), "How often the reaper looks for jobs.",
     NULL, 50, 3600000},
    {ATR_OPT_SIZE, "provisioner.max_log_size", "1MiB", 0,
     ATR_CORE_FIELD(prov_max_log),
     "Log output kept per job; past it, one line says the log was cut and "
     "the rest is dropped (the job shows logs_overflowed).",
     NULL, 4096, 1048576},
    {ATR_OPT_STRING, "provisioner.run_as", "atrium-build", 0,
     ATR_CORE_FIELD(prov_run_as),
     "The user builds run as when the server runs as root: their working "
     "directories are that user's and the processes a provisioner starts "
     "drop to it. Empty: builds run as the server's user. A server that is "
     "not root runs them as its own user. See docs/security.md.",
     NULL, 0, 0},
    {ATR_OPT_LIST, "policy.files", "config/policies/*.lua", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_files),
     "Deployment policies (Lua): glob patterns, each pattern's files in "
     "name order; they run before a template's own policy. Reloaded on "
     "SIGHUP; when a file fails to load, the previous policies stay. See "
     "docs/policies.md.",
     NULL, 0, 0},
    {ATR_OPT_INT, "policy.instruction_limit", "1000000", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_instructions),
     "Lua instructions one policy may run per evaluation; past it the "
     "policy denies.",
     NULL, 1000, 1000000000},
    {ATR_OPT_DURATION, "policy.time_limit", "100ms", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_time_ms),
     "Wall-clock time one policy may take per evaluation; past it the "
     "policy denies.",
     NULL, 1, 60000},
    {ATR_OPT_SIZE, "policy.memory_limit", "8MiB", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_memory),
     "Memory one policy evaluation may hold; past it the policy denies.", NULL,
     65536, 1073741824.0},
    {ATR_OPT_SECRET, "database.encryption_keys", "", 0,
     ATR_CORE_FIELD(db_encryption_keys),
     "Keys that encrypt secrets in the database (sensitive parameter "
     "values, provisioner states, sensitive resource metadata, OAuth "
     "tokens, workspaces' SSH host keys) with AES-256-GCM: base64 of 32 "
     "bytes each (`openssl rand "
     "-base64 32`), separated by commas. The first encrypts; the others "
     "only decrypt, during a rotation. Empty (and no key file): secrets are "
     "stored in clear, which is not recommended. See docs/security.md.",
     NULL, 0, 0},
    {ATR_OPT_STRING, "database.encryption_key_file", "", 0,
     ATR_CORE_FIELD(db_encryption_key_file),
     "A file of database encryption keys, one a line, read after "
     "database.encryption_keys (its first key is the primary when that "
     "option is empty). It must not be readable by group or others.",
     NULL, 0, 0},
    {ATR_OPT_DURATION, "shutdown_grace", "4s", 0,
     ATR_CORE_FIELD(shutdown_grace_ms),
     "On SIGTERM, how long in-flight requests may take to finish before the "
     "server exits anyway (with status 1).",
     NULL, 0, 600000},
    {ATR_OPT_STRING, "agent.bundle_dir", "auto", 0,
     ATR_CORE_FIELD(agent_bundle_dir),
     "The directory holding the workspace agent for linux/amd64 as a "
     "bundle (the launcher atrium-agent, bin/ and lib/), which provisioners "
     "mount into workspaces at /opt/atrium. \"auto\": the agent-bundle "
     "directory beside the server's own directory (the build tree's, or "
     "<prefix>/libexec/atrium/agent-bundle when installed); empty: none, so "
     "only templates that install the agent themselves get one.",
     NULL, 0, 0},
    {ATR_OPT_DURATION, "agent.heartbeat_interval", "15s", 0,
     ATR_CORE_FIELD(agent_heartbeat_ms),
     "How often the server PINGs each connected agent's session; a session "
     "that sent nothing for three intervals is closed (the agent "
     "reconnects). Also keeps proxies' idle timers from firing.",
     NULL, 50, 3600000},
    {0},
};
