/* core/agent/agent_main.c — `atrium-agent agent` / `atrium agent`: the
 * command line and environment into an agent_config_t (agent.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "agent_envfile.h"
#include "agent_internal.h"
#include "agent_util.h"
#include "log.h"
#include "version.h"

static void usage(const char *prog, FILE *out) {
  fprintf(out,
          "usage: %s agent [--env-file FILE] [--log-dir DIR] "
          "[--init [-- CMD [ARG]...]]\n"
          "\n"
          "The workspace agent: connects to ATRIUM_AGENT_URL with the token "
          "in\nATRIUM_AGENT_TOKEN (or both from --env-file, mode 0600), runs "
          "the\ntemplate's startup script and reports to the server "
          "(docs/agent.md).\n"
          "  --env-file FILE  KEY=VALUE lines; exit after shutting down\n"
          "  --log-dir DIR    write the agent's log to DIR/atrium-agent.log\n"
          "  --init           run as the container's PID 1: start CMD, "
          "reap every\n                   child, exit with CMD's status\n",
          prog);
}

static void read_tunables(agent_config_t *c) {
  c->stats_ms = agent_env_ms("ATRIUM_AGENT_STATS_INTERVAL", 0);
  c->ports_ms = agent_env_ms("ATRIUM_AGENT_PORTS_INTERVAL", 5000);
  c->flush_ms = agent_env_ms("ATRIUM_AGENT_LOG_FLUSH", 250);
  c->kill_grace_ms = agent_env_ms("ATRIUM_AGENT_KILL_GRACE", 5000);
  c->final_wait_ms = agent_env_ms("ATRIUM_AGENT_FINAL_WAIT", 30000);
  c->heartbeat_ms = agent_env_ms("ATRIUM_AGENT_HEARTBEAT", 0);
  c->backoff_max_ms = agent_env_ms("ATRIUM_AGENT_BACKOFF_MAX", 0);
  c->proc_dir = "/proc";
  c->cgroup_dir = "/sys/fs/cgroup";
}

/* URL and token from the env file, else the environment; the token then
 * leaves the environment so no script or workload inherits it. */
static int read_credentials(const char *prog, const char *env_file,
                            agent_config_t *c) {
  if (env_file) {
    agent_envfile_t ef;
    char *err = NULL;
    if (agent_envfile_load(env_file, &ef, &err) != 0) {
      fprintf(stderr, "%s agent: %s\n", prog, err ? err : "bad env file");
      free(err);
      return 1;
    }
    c->url = ef.url;
    c->token = ef.token;
  }
  const char *url = getenv("ATRIUM_AGENT_URL");
  const char *token = getenv("ATRIUM_AGENT_TOKEN");
  if (!c->url && url)
    c->url = strdup(url);
  if (!c->token && token)
    c->token = strdup(token);
  if (token)
    explicit_bzero((char *)token, strlen(token));
  unsetenv("ATRIUM_AGENT_TOKEN");
  if (!c->url || !*c->url || !c->token || !*c->token) {
    fprintf(stderr,
            "%s agent: ATRIUM_AGENT_URL and ATRIUM_AGENT_TOKEN must be set "
            "(in the environment or in --env-file)\n",
            prog);
    return 2;
  }
  return 0;
}

static FILE *open_log(const char *prog, const char *dir) {
  char path[4096];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "%s agent: %s: %s\n", prog, dir, strerror(errno));
    return NULL;
  }
  snprintf(path, sizeof path, "%s/atrium-agent.log", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
  if (!f) {
    fprintf(stderr, "%s agent: %s: %s\n", prog, path, strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  setvbuf(f, NULL, _IOLBF, 0);
  return f;
}

/* Flags into c; 0, or the exit status of a bad command line. */
static int parse_args(const char *prog, int argc, char **argv,
                      agent_config_t *c, const char **env_file, bool *init) {
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(prog, stdout);
      return -1;
    } else if (strcmp(a, "--env-file") == 0 && i + 1 < argc) {
      *env_file = argv[++i];
    } else if (strcmp(a, "--log-dir") == 0 && i + 1 < argc) {
      c->log_dir = argv[++i];
    } else if (strcmp(a, "--init") == 0) {
      *init = true;
    } else if (strcmp(a, "--") == 0 && *init) {
      c->init_argv = argv + i + 1;
      break;
    } else {
      fprintf(stderr, "%s agent: unexpected argument %s\n", prog, a);
      usage(prog, stderr);
      return 2;
    }
  }
  return 0;
}

int agent_command(const char *prog, int argc, char **argv) {
  agent_config_t c = {0};
  const char *env_file = NULL;
  bool init = false;
  int rc = parse_args(prog, argc, argv, &c, &env_file, &init);
  if (rc != 0)
    return rc < 0 ? 0 : rc;
  static char *no_workload[] = {NULL};
  if (init && !c.init_argv)
    c.init_argv = no_workload;
  c.exit_on_final = env_file != NULL || init;
  read_tunables(&c);
  rc = read_credentials(prog, env_file, &c);
  FILE *log = NULL;
  if (rc == 0 && c.log_dir && !(log = open_log(prog, c.log_dir)))
    rc = 1;
  if (rc == 0) {
    atr_log_set_format(ATR_LOG_FORMAT_TEXT);
    if (log)
      atr_log_set_stream(log);
    atr_log(ATR_LOG_INFO, "agent", "atrium-agent %s (commit %s)", ATR_VERSION,
            ATR_COMMIT);
    rc = agent_run(&c);
    atr_log_set_stream(NULL);
  }
  if (log)
    fclose(log);
  free(c.url);
  if (c.token) {
    explicit_bzero(c.token, strlen(c.token));
    free(c.token);
  }
  return rc;
}
