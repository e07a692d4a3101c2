/* template.yaml `agent:`: a full section becomes exactly the agent spec
 * JSON that template_versions.agent_spec keeps, defaults filled in; an
 * empty section is an agent with the defaults; every mistake is reported
 * with its field path, file:line:col and what is allowed, all at once;
 * sizes and counts are bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "atrium/error.h"
#include "manifest.h"
#include "manifest_errors.h"

/* The section starts on line 3, its keys at column 3. */
#define HEAD "name: t\nprovisioner: docker\nagent:\n"

static void assert_errors(const char *yaml, const char *expected) {
  atr_manifest_t m;
  manifest_assert_errors(yaml, expected, &m);
  assert_null(m.agent_spec);
}

/* The spec of yaml, which must parse, compared as JSON with expected. */
static void assert_spec(const char *yaml, const char *expected) {
  atr_manifest_t m;
  json_t *errors = NULL;
  int rc = atr_manifest_parse("template.yaml", yaml, strlen(yaml), &m, &errors);
  if (rc != 0) {
    char *got = manifest_errors_text(errors);
    fprintf(stderr, "unexpected errors:\n%s", got);
    free(got);
  }
  assert_int_equal(rc, 0);
  assert_non_null(m.agent_spec);
  json_t *got = json_loads(m.agent_spec, 0, NULL);
  json_t *want = json_loads(expected, 0, NULL);
  assert_non_null(want);
  if (!json_equal(got, want))
    fprintf(stderr, "got:\n%s\n", m.agent_spec);
  assert_true(json_equal(got, want));
  json_decref(got);
  json_decref(want);
  atr_manifest_free(&m);
}

#define DEFAULTS_BUT(x)                                                        \
  "{\"name\":\"main\",\"arch\":\"amd64\",\"directory\":\"\",\"env\":{},"       \
  "\"connection_timeout_s\":120,\"startup_script\":\"\","                      \
  "\"startup_script_behavior\":\"non-blocking\","                              \
  "\"startup_script_timeout_s\":300,\"shutdown_script\":\"\","                 \
  "\"shutdown_script_timeout_s\":300,\"motd_file\":\"\","                      \
  "\"troubleshooting_url\":\"\",\"apps\":[]" x "}"

static void a_full_agent_section_becomes_the_spec(void **state) {
  (void)state;
  assert_spec(
      HEAD
      "  name: dev\n"
      "  arch: arm64\n"
      "  directory: ~/src\n"
      "  env: { EDITOR: vi, GOPATH: /go }\n"
      "  connection_timeout: 2m\n"
      "  startup_script: |\n"
      "    code-server --auth none &\n"
      "  startup_script_behavior: blocking\n"
      "  startup_script_timeout: 0\n"
      "  shutdown_script: sync\n"
      "  shutdown_script_timeout: 1h\n"
      "  motd_file: /etc/motd\n"
      "  troubleshooting_url: https://wiki.example.com/atrium\n"
      "  metadata:\n"
      "    - { key: load, display_name: Load, script: cat /proc/loadavg, "
      "interval: 10s, timeout: 1s }\n"
      "    - { key: disk, script: df -h /, interval: 1m, timeout: 5s }\n"
      "  apps:\n"
      "    - { slug: code-server, display_name: code-server, url: "
      "\"http://localhost:13337/\", share: authenticated, subdomain: true,\n"
      "        healthcheck: { url: \"http://localhost:13337/healthz\", "
      "interval: 5s, threshold: 6 } }\n"
      "    - { slug: docs, url: \"https://example.com/\", icon: /icon/book.svg "
      "}\n",
      "{\"name\":\"dev\",\"arch\":\"arm64\",\"directory\":\"~/src\","
      "\"env\":{\"EDITOR\":\"vi\",\"GOPATH\":\"/go\"},"
      "\"connection_timeout_s\":120,"
      "\"startup_script\":\"code-server --auth none &\\n\","
      "\"startup_script_behavior\":\"blocking\","
      "\"startup_script_timeout_s\":0,\"shutdown_script\":\"sync\","
      "\"shutdown_script_timeout_s\":3600,\"motd_file\":\"/etc/motd\","
      "\"troubleshooting_url\":\"https://wiki.example.com/atrium\","
      "\"metadata\":[{\"key\":\"load\",\"display_name\":\"Load\","
      "\"script\":\"cat /proc/loadavg\",\"interval_s\":10,\"timeout_s\":1},"
      "{\"key\":\"disk\",\"display_name\":\"disk\",\"script\":\"df -h /\","
      "\"interval_s\":60,\"timeout_s\":5}],"
      "\"apps\":[{\"slug\":\"code-server\",\"display_name\":\"code-server\","
      "\"url\":\"http://localhost:13337/\",\"icon\":\"\","
      "\"share\":\"authenticated\",\"subdomain\":true,"
      "\"healthcheck\":{\"url\":\"http://localhost:13337/healthz\","
      "\"interval_s\":5,\"threshold\":6}},"
      "{\"slug\":\"docs\",\"display_name\":\"docs\","
      "\"url\":\"https://example.com/\",\"icon\":\"/icon/book.svg\","
      "\"share\":\"owner\",\"subdomain\":false}]}");
}

static void an_empty_section_is_an_agent_with_the_defaults(void **state) {
  (void)state;
  assert_spec(HEAD, DEFAULTS_BUT(",\"metadata\":[]"));
  assert_spec("name: t\nprovisioner: docker\nagent: {}\n",
              DEFAULTS_BUT(",\"metadata\":[]"));
  assert_spec(HEAD "  metadata:\n    - { key: k, script: uptime }\n",
              DEFAULTS_BUT(",\"metadata\":[{\"key\":\"k\",\"display_name\":"
                           "\"k\",\"script\":\"uptime\",\"interval_s\":10,"
                           "\"timeout_s\":1}]"));
}

static void a_template_without_agent_has_no_spec(void **state) {
  (void)state;
  const char *yaml = "name: t\nprovisioner: docker\n";
  atr_manifest_t m;
  json_t *errors = NULL;
  assert_int_equal(
      atr_manifest_parse("template.yaml", yaml, strlen(yaml), &m, &errors), 0);
  assert_null(m.agent_spec);
  atr_manifest_free(&m);
}

static void agent_field_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors("name: t\nprovisioner: docker\nagent: yes\n",
                "agent|template.yaml:3:8: must be a map with keys: name, "
                "arch, directory, env, connection_timeout, startup_script, "
                "startup_script_behavior, startup_script_timeout, "
                "shutdown_script, shutdown_script_timeout, motd_file, "
                "troubleshooting_url, metadata, apps\n");
  assert_errors(HEAD "  image: x\n  name: Main\n  arch: x86\n"
                     "  directory: src\n  startup_script_behavior: later\n",
                "agent.image|template.yaml:4:10: unknown key \"image\"; valid "
                "keys: name, arch, directory, env, connection_timeout, "
                "startup_script, startup_script_behavior, "
                "startup_script_timeout, shutdown_script, "
                "shutdown_script_timeout, motd_file, troubleshooting_url, "
                "metadata, apps\n"
                "agent.name|template.yaml:5:9: \"Main\" is not a valid agent "
                "name; use 1-64 characters of a-z, 0-9 and -\n"
                "agent.arch|template.yaml:6:9: \"x86\" is not a supported "
                "arch; use amd64 or arm64\n"
                "agent.directory|template.yaml:7:14: \"src\" is not a "
                "directory the agent can find; use an absolute path or one "
                "under ~/ (like /home/dev or ~/src)\n"
                "agent.startup_script_behavior|template.yaml:8:28: \"later\" "
                "is not valid; use blocking or non-blocking\n");
  assert_errors(HEAD "  connection_timeout: 2h\n  startup_script_timeout: 10\n"
                     "  shutdown_script_timeout: 1.5s\n"
                     "  troubleshooting_url: ftp://x\n",
                "agent.connection_timeout|template.yaml:4:23: 2h is out of "
                "range; use 0 (none) to 1h\n"
                "agent.startup_script_timeout|template.yaml:5:27: \"10\" is "
                "not a duration; use a number and a unit, like 30s, 5m or "
                "1h\n"
                "agent.shutdown_script_timeout|template.yaml:6:28: 1.5s is "
                "not a whole number of seconds\n"
                "agent.troubleshooting_url|template.yaml:7:24: \"ftp://x\" "
                "is not a URL; use http:// or https:// and a host\n");
}

static void env_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(HEAD "  env: [A]\n",
                "agent.env|template.yaml:4:8: must be a map of NAME: value\n");
  assert_errors(HEAD "  env:\n    1X: a\n    ATRIUM_AGENT_TOKEN: t\n"
                     "    OK: [a]\n",
                "agent.env.1X|template.yaml:5:9: \"1X\" is not a valid "
                "variable name; use letters, digits and _, not starting "
                "with a digit\n"
                "agent.env.ATRIUM_AGENT_TOKEN|template.yaml:6:25: "
                "ATRIUM_AGENT_TOKEN is reserved: names starting ATRIUM_AGENT_ "
                "are set by atrium\n"
                "agent.env.OK|template.yaml:7:9: must be a single value\n");
}

static void metadata_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(HEAD "  metadata:\n"
                     "    - { key: load, script: x, interval: 10s, timeout: "
                     "20s }\n"
                     "    - { key: Load, interval: 0s, colour: red }\n"
                     "    - { key: load, script: y, timeout: 11s }\n"
                     "    - 3\n",
                "agent.metadata[0].timeout|template.yaml:5:55: 20s is longer "
                "than the interval 10s\n"
                "agent.metadata[1].key|template.yaml:6:14: \"Load\" is not a "
                "valid key; use 1-64 characters of a-z, 0-9 and _\n"
                "agent.metadata[1].interval|template.yaml:6:30: 0s is out of "
                "range; use 1s to 1h\n"
                "agent.metadata[1].colour|template.yaml:6:42: unknown key "
                "\"colour\"; valid keys: key, display_name, script, interval, "
                "timeout\n"
                "agent.metadata[1].script|template.yaml:6:7: script is "
                "required\n"
                "agent.metadata[2].key|template.yaml:7:14: duplicate key "
                "\"load\" (also agent.metadata[0])\n"
                "agent.metadata[2].timeout|template.yaml:7:40: 11s is longer "
                "than the interval 10s\n"
                "agent.metadata[3]|template.yaml:8:7: must be a map with "
                "keys: key, display_name, script, interval, timeout\n");
}

static void app_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(
      HEAD "  apps:\n"
           "    - { slug: code-server, url: \"http://localhost:13337/\" }\n"
           "    - { slug: Code Server, url: \"http://localhost:8080/\" }\n"
           "    - { slug: code-server, url: localhost, share: everyone,\n"
           "        subdomain: maybe, healthcheck: { url: "
           "\"https://x/\", interval: 2h, threshold: 0, retries: 3 } }\n"
           "    - { slug: -a, display_name: A, healthcheck: {} }\n",
      "agent.apps[1].slug|template.yaml:6:15: \"Code Server\" is not a valid "
      "slug; use 1-32 characters of a-z, 0-9 and - (like code-server)\n"
      "agent.apps[2].url|template.yaml:7:33: \"localhost\" is not a URL; use "
      "http:// or https:// and a host\n"
      "agent.apps[2].share|template.yaml:7:51: \"everyone\" is not valid; use "
      "owner, authenticated or public\n"
      "agent.apps[2].subdomain|template.yaml:8:20: \"maybe\" is not a bool; "
      "use true or false\n"
      "agent.apps[2].healthcheck.url|template.yaml:8:47: \"https://x/\" is "
      "not a URL; use http://host:port/path\n"
      "agent.apps[2].healthcheck.interval|template.yaml:8:71: 2h is out of "
      "range; use 1s to 1h\n"
      "agent.apps[2].healthcheck.threshold|template.yaml:8:86: \"0\" is not "
      "a valid threshold; use a whole number from 1 to 100\n"
      "agent.apps[2].healthcheck.retries|template.yaml:8:98: unknown key "
      "\"retries\"; valid keys: url, interval, threshold\n"
      "agent.apps[2].slug|template.yaml:7:15: duplicate slug \"code-server\" "
      "(also agent.apps[0])\n"
      "agent.apps[3].slug|template.yaml:9:15: \"-a\" is not a valid slug; use "
      "1-32 characters of a-z, 0-9 and - (like code-server)\n"
      "agent.apps[3].healthcheck.url|template.yaml:9:49: url is required "
      "(http://host:port/path)\n"
      "agent.apps[3].url|template.yaml:9:7: url is required (like "
      "http://localhost:13337/)\n");
}

/* YAML with `count` metadata items, or one script of `size` bytes. */
static char *big_yaml(size_t count, size_t size) {
  size_t cap = 200 + count * 64 + size;
  char *y = malloc(cap);
  size_t used = (size_t)snprintf(y, cap, "%s", HEAD);
  if (size) {
    used += (size_t)snprintf(y + used, cap - used, "  startup_script: ");
    memset(y + used, 'x', size);
    used += size;
    used += (size_t)snprintf(y + used, cap - used, "\n");
  } else {
    used += (size_t)snprintf(y + used, cap - used, "  metadata:\n");
  }
  for (size_t i = 0; i < count; i++)
    used += (size_t)snprintf(y + used, cap - used,
                             "    - { key: k%zu, script: x }\n", i);
  return y;
}

static void sizes_and_counts_are_bounded(void **state) {
  (void)state;
  char *y = big_yaml(32, 0);
  atr_manifest_t m;
  json_t *errors = NULL;
  assert_int_equal(
      atr_manifest_parse("template.yaml", y, strlen(y), &m, &errors), 0);
  atr_manifest_free(&m);
  free(y);
  y = big_yaml(33, 0);
  assert_errors(y, "agent.metadata|template.yaml:5:5: has 33 items; the limit "
                   "is 32\n");
  free(y);
  y = big_yaml(0, 64 * 1024);
  assert_int_equal(
      atr_manifest_parse("template.yaml", y, strlen(y), &m, &errors), 0);
  atr_manifest_free(&m);
  free(y);
  y = big_yaml(0, 64 * 1024 + 1);
  assert_errors(y, "agent.startup_script|template.yaml:4:19: is 65537 bytes "
                   "long; the limit is 65536\n");
  free(y);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_full_agent_section_becomes_the_spec),
      cmocka_unit_test(an_empty_section_is_an_agent_with_the_defaults),
      cmocka_unit_test(a_template_without_agent_has_no_spec),
      cmocka_unit_test(agent_field_mistakes_are_reported),
      cmocka_unit_test(env_mistakes_are_reported),
      cmocka_unit_test(metadata_mistakes_are_reported),
      cmocka_unit_test(app_mistakes_are_reported),
      cmocka_unit_test(sizes_and_counts_are_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
