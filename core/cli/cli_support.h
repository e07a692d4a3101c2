/* core/cli/cli_support.h — `atrium support bundle [WORKSPACE] [-o FILE]`: a
 * tar.gz of what support asks for first, fetched from the server as the
 * signed-in user (an owner: the debug routes are theirs).
 *
 * The bundle holds, each at its root:
 *   buildinfo.json   the server's build info and the CLI's
 *   config.json      the effective configuration, secrets redacted
 *   health.json      the health report
 *   plugins.json     the plugin list
 *   logs.txt         the server's recent log lines
 *   metrics.json     a snapshot of every metric
 * and with WORKSPACE (NAME or OWNER/NAME):
 *   workspace.json, builds/<n>/build.json, builds/<n>/parameters.json and
 *   builds/<n>/logs.txt for its last 5 builds, template_version.json and
 *   template_version_rich_parameters.json for its latest build's version.
 * A file that cannot be fetched is replaced by <name>.error.txt (the name
 * without its extension) saying why, so a partial bundle still helps;
 * buildinfo.json is always written with the CLI's side. Values come as
 * the server sends them: it redacts secrets and masks sensitive
 * parameters; the CLI adds nothing secret (never the session token).
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_SUPPORT_H
#define ATRIUM_CORE_CLI_SUPPORT_H

/* Run `atrium support ...` (name is "support"); argv is what follows it.
 * The exit status: 0 when the bundle was written (partial or not), 1 when
 * it could not be, 2 for a wrong command line. */
int atr_cli_support(const char *name, int argc, char **argv);

#endif
