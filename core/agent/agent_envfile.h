/* core/agent/agent_envfile.h — the agent's env file (`--env-file FILE`).
 *
 * A provisioner that cannot pass the agent its environment (terraform
 * local, echo's agent_env_dir) writes a file of KEY=VALUE lines instead:
 * ATRIUM_AGENT_URL and ATRIUM_AGENT_TOKEN. Blank lines and lines starting
 * with '#' are skipped, "export " before a key is allowed, a value in
 * matching single or double quotes loses them. The token is a secret: a
 * file that group or others may read is refused, and no message ever
 * quotes a value.
 *
 * Threads: no shared state. Memory: the caller frees with
 * agent_envfile_free.
 */
#ifndef ATRIUM_AGENT_ENVFILE_H
#define ATRIUM_AGENT_ENVFILE_H

#include <stddef.h>

#define AGENT_ENVFILE_MAX 65536

typedef struct agent_envfile {
  char *url;   /* ATRIUM_AGENT_URL, or NULL */
  char *token; /* ATRIUM_AGENT_TOKEN, or NULL */
} agent_envfile_t;

/* Parse text. 0, or ATR_EINVAL with *err naming the line. Keys other than
 * the two above are ignored. */
int agent_envfile_parse(const char *text, size_t len, agent_envfile_t *out,
                        char **err);
/* Read and parse path; ATR_EACCES when the file is readable by group or
 * others (or not a regular file), ATR_ERANGE past AGENT_ENVFILE_MAX. */
int agent_envfile_load(const char *path, agent_envfile_t *out, char **err);
void agent_envfile_free(agent_envfile_t *e);

#endif
