/* core/cli/cli_agents.c — workspace agents in `atrium show`, `list` and
 * `logs --agent` (cli_agents.h). */
#include "cli_agents.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "cli_output.h"
#include "cli_session.h"

#define MAX_LOG_LINES 10000
#define PAGE 1000

/* ---- formatting --------------------------------------------------------- */

const char *atr__cli_agent_line(const json_t *agent, char *buf, size_t size) {
  const char *status = atr__cli_str(agent, "status");
  const char *life = atr__cli_str(agent, "lifecycle_state");
  const char *version = atr__cli_str(agent, "version");
  char took[40] = "", ver[80] = "";
  const json_t *code = json_object_get(agent, "startup_script_exit_code");
  double secs = atr__cli_seconds(atr__cli_str(agent, "started_at"),
                                 atr__cli_str(agent, "ready_at"));
  if (life && strcmp(life, "ready") == 0 && secs >= 0)
    snprintf(took, sizeof took, " in %.1fs", secs);
  else if (life && strcmp(life, "start_error") == 0 && json_is_integer(code))
    snprintf(took, sizeof took, " (startup script exited %lld)",
             (long long)json_integer_value(code));
  if (version && *version)
    snprintf(ver, sizeof ver, " (v%s)", version + (version[0] == 'v'));
  snprintf(buf, size, "agent %s: %s, %s%s%s", atr__cli_txt(agent, "name"),
           status ? status : "unknown", life ? life : "unknown", took, ver);
  return buf;
}

/* One agent's problem word, or NULL when it is connected and ready. */
static const char *problem_of(const json_t *agent) {
  const char *status = atr__cli_str(agent, "status");
  const char *life = atr__cli_str(agent, "lifecycle_state");
  if (!status || strcmp(status, "connected") != 0)
    return status ? status : "unknown";
  if (!life || strcmp(life, "created") == 0 || strcmp(life, "starting") == 0)
    return "starting";
  return strcmp(life, "ready") == 0 ? NULL : life;
}

const char *atr__cli_agent_problem(const json_t *build, char *buf,
                                   size_t size) {
  size_t i, j;
  json_t *res, *agent;
  json_array_foreach(json_object_get(build, "resources"), i, res) {
    json_array_foreach(json_object_get(res, "agents"), j, agent) {
      const char *p = problem_of(agent);
      if (p) {
        snprintf(buf, size, "agent %s", p);
        return buf;
      }
    }
  }
  return NULL;
}

const char *atr__cli_build_status_text(const char *status, const json_t *build,
                                       char *buf, size_t size) {
  char problem[64];
  if (!status)
    status = "-";
  if (strcmp(status, "running") != 0 ||
      !atr__cli_agent_problem(build, problem, sizeof problem))
    return status;
  snprintf(buf, size, "%s (%s)", status, problem);
  return buf;
}

/* ---- show ----------------------------------------------------------------- */

/* The last n lines of the agent's log, in order; *out owned. */
static int last_lines(atr__cli_t *cli, const char *id, size_t n, json_t **out) {
  json_t *ring = json_array();
  json_int_t after = 0;
  int rc = ring ? 0 : atr__cli_oom(cli);
  for (bool more = true; rc == 0 && more;) {
    char *base = atr__cli_path("/api/v2/workspaceagents/%s/logs", id, NULL);
    char *path = NULL;
    if (!base || asprintf(&path, "%s?after=%" JSON_INTEGER_FORMAT "&limit=%d",
                          base, after, PAGE) < 0)
      path = NULL;
    free(base);
    json_t *page = NULL;
    rc = path ? atr__cli_get(cli, path, &page) : atr__cli_oom(cli);
    free(path);
    size_t i;
    json_t *line;
    json_array_foreach(page, i, line) {
      json_array_append(ring, line);
      if (json_array_size(ring) > n)
        json_array_remove(ring, 0);
      after = json_integer_value(json_object_get(line, "id"));
    }
    more = json_array_size(page) == PAGE;
    json_decref(page);
  }
  *out = rc == 0 ? ring : NULL;
  if (rc != 0)
    json_decref(ring);
  return rc;
}

static int print_log_lines(const json_t *lines) {
  size_t i;
  json_t *line;
  json_array_foreach(lines, i, line) {
    printf("  %s\n", atr__cli_txt(line, "output"));
  }
  return 0;
}

long atr__cli_agent_log_lines(const atr__cli_t *cli) {
  if (!cli->o.log_lines)
    return ATR__CLI_AGENT_LOG_LINES;
  char *end = NULL;
  long n = strtol(cli->o.log_lines, &end, 10);
  if (!*cli->o.log_lines || *end || n < 0 || n > MAX_LOG_LINES) {
    atr__cli_usage_error(cli, "--log-lines %s is not a number from 0 to 10000",
                         cli->o.log_lines);
    return -1;
  }
  return n;
}

int atr__cli_print_agents(atr__cli_t *cli, const json_t *build, long n) {
  size_t i, j;
  json_t *res, *agent;
  int rc = 0;
  json_array_foreach(json_object_get(build, "resources"), i, res) {
    json_array_foreach(json_object_get(res, "agents"), j, agent) {
      char line[512];
      printf("%s\n", atr__cli_agent_line(agent, line, sizeof line));
      json_t *lines = NULL;
      const char *id = atr__cli_str(agent, "id");
      if (n > 0 && id && rc == 0)
        rc = last_lines(cli, id, (size_t)n, &lines);
      print_log_lines(lines);
      json_decref(lines);
    }
  }
  return rc;
}

/* ---- logs --agent ------------------------------------------------------------ */

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig) {
  (void)sig;
  got_sigint = 1;
}

static int on_event(const atr_client_event_t *ev, void *ud) {
  (void)ud;
  if (strcmp(ev->event, "log") != 0)
    return 0;
  json_t *line = json_loads(ev->data, 0, NULL);
  printf("%s\n", atr__cli_txt(line, "output"));
  fflush(stdout);
  json_decref(line);
  return 0;
}

static int follow_agent(atr__cli_t *cli, const char *id) {
  char *base = atr__cli_path("/api/v2/workspaceagents/%s/logs", id, NULL);
  char *path = NULL;
  if (!base || asprintf(&path, "%s?follow=true", base) < 0) {
    free(base);
    return atr__cli_oom(cli);
  }
  free(base);
  struct sigaction on = {.sa_handler = on_sigint}, old;
  sigemptyset(&on.sa_mask);
  got_sigint = 0;
  sigaction(SIGINT, &on, &old);
  atr_client_set_interrupt(cli->client, &got_sigint);
  atr_client_res_t res = {0};
  char *err = NULL;
  int rc = atr_client_stream(cli->client, path, on_event, NULL, &res, &err);
  atr_client_set_interrupt(cli->client, NULL);
  sigaction(SIGINT, &old, NULL);
  free(path);
  if (rc == ATR_ECANCELED) {
    rc = 130;
  } else if (rc == ATR_EIO && res.status != 0) {
    atr_client_print_error(cli->what, &res);
    rc = 1;
  } else if (rc != 0) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : atr_strerror(rc));
    rc = 1;
  }
  free(err);
  atr_client_res_free(&res);
  return rc;
}

/* The build's first agent, or NULL. */
static const json_t *first_agent(const json_t *build) {
  size_t i;
  json_t *res;
  json_array_foreach(json_object_get(build, "resources"), i, res) {
    const json_t *a = json_array_get(json_object_get(res, "agents"), 0);
    if (a)
      return a;
  }
  return NULL;
}

int atr__cli_agent_logs(atr__cli_t *cli, const json_t *build) {
  const json_t *agent = first_agent(build);
  const char *id = atr__cli_str(agent, "id");
  if (!id) {
    fprintf(stderr, "%s: build %" JSON_INTEGER_FORMAT " of %s has no agent\n",
            cli->what,
            json_integer_value(json_object_get(build, "build_number")),
            cli->o.args[0]);
    return 1;
  }
  if (cli->o.follow)
    return follow_agent(cli, id);
  json_t *lines = NULL;
  int rc = last_lines(cli, id, SIZE_MAX, &lines); /* all: at most 1 MiB */
  if (rc == 0) {
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) {
      printf("%s\n", atr__cli_txt(line, "output"));
    }
  }
  json_decref(lines);
  return rc;
}
