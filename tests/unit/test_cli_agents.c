/* What `atrium show` and `atrium list` print about workspace agents, from
 * saved WorkspaceAgent answers, held against a golden file
 * (tests/unit/golden/cli_agents.txt): one agent line per state and the
 * STATUS column it gives a running build. Set ATR_UPDATE_GOLDEN=1 to
 * rewrite the file after a deliberate change (then read its diff). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cli_agents.h"

#define GOLDEN ATR_TEST_SOURCE_DIR "/tests/unit/golden/cli_agents.txt"

/* One agent of each kind a user meets. */
static const char *const agents[] = {
    "{\"name\":\"main\",\"status\":\"connected\",\"lifecycle_state\":\"ready\","
    "\"started_at\":\"2026-12-07T21:50:00.000000Z\","
    "\"ready_at\":\"2026-12-07T21:50:04.200000Z\",\"version\":\"0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"connected\",\"lifecycle_state\":\"ready\","
    "\"version\":\"v0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"connected\","
    "\"lifecycle_state\":\"start_error\",\"version\":\"0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"connected\","
    "\"lifecycle_state\":\"start_error\",\"startup_script_exit_code\":3}",
    "{\"name\":\"main\",\"status\":\"connected\","
    "\"lifecycle_state\":\"starting\",\"version\":\"0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"connected\","
    "\"lifecycle_state\":\"created\"}",
    "{\"name\":\"main\",\"status\":\"connecting\","
    "\"lifecycle_state\":\"created\",\"version\":\"\"}",
    "{\"name\":\"dev\",\"status\":\"disconnected\","
    "\"lifecycle_state\":\"ready\",\"version\":\"0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"timeout\",\"lifecycle_state\":"
    "\"created\"}",
    "{\"name\":\"main\",\"status\":\"connected\","
    "\"lifecycle_state\":\"start_timeout\",\"version\":\"0.9.0\"}",
    "{\"name\":\"main\",\"status\":\"connected\",\"lifecycle_state\":\"off\","
    "\"version\":\"0.9.0\"}",
};

/* A build with one resource holding the agent (NULL: no agent). */
static json_t *build_with(const char *agent) {
  json_t *a = agent ? json_loads(agent, 0, NULL) : NULL;
  json_t *b = json_pack("{s:[{s:s, s:[]}, {s:s, s:o}]}", "resources", "name",
                        "volume", "agents", "name", "box", "agents",
                        a ? json_pack("[o]", a) : json_array());
  assert_non_null(b);
  return b;
}

static char *render(void) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  assert_non_null(out);
  for (size_t i = 0; i < sizeof agents / sizeof agents[0]; i++) {
    json_t *a = json_loads(agents[i], 0, NULL);
    json_t *b = build_with(agents[i]);
    char line[256], status[96];
    fprintf(out, "%s\n", atr__cli_agent_line(a, line, sizeof line));
    fprintf(out, "  list: %s | stopped build: %s\n",
            atr__cli_build_status_text("running", b, status, sizeof status),
            atr__cli_build_status_text("stopped", b, status, sizeof status));
    json_decref(a);
    json_decref(b);
  }
  json_t *none = build_with(NULL);
  char status[96];
  fprintf(out, "no agent\n  list: %s\n",
          atr__cli_build_status_text("running", none, status, sizeof status));
  json_decref(none);
  fclose(out);
  return text;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = calloc(1, 1 << 16);
  size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  (void)n;
  fclose(f);
  return buf;
}

static void agents_print_as_the_golden_file_says(void **state) {
  (void)state;
  char *got = render();
  const char *update = getenv("ATR_UPDATE_GOLDEN");
  if (update && strcmp(update, "1") == 0) {
    FILE *f = fopen(GOLDEN, "wb");
    assert_non_null(f);
    fputs(got, f);
    fclose(f);
  }
  char *want = slurp(GOLDEN);
  if (!want) {
    fail_msg("cannot read %s (ATR_UPDATE_GOLDEN=1 writes it)", GOLDEN);
    return;
  }
  if (strcmp(got, want) != 0)
    print_error("got:\n%s\nwant (%s):\n%s\n", got, GOLDEN, want);
  assert_string_equal(got, want);
  free(got);
  free(want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(agents_print_as_the_golden_file_says),
  };
  return cmocka_run_group_tests_name("cli_agents", tests, NULL, NULL);
}
