/* tests/abi/test_abi_agent.c — what ABI 1.3 added for the workspace agent,
 * seen from both sides of the boundary: a request from a 1.2 host is too
 * short to carry `agent` (ATR_PROV_REQUEST_HAS_AGENT is false), a 1.3 one
 * carries it; a result from a 1.2 plugin has no hosts_agent, so nothing it
 * wrote past its elements is taken for one and its first resource hosts
 * the agent; a 1.3 plugin chooses the resource. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/provisioner.h"
#include "prov_agent.h"

/* The size of a resource element in ABI 1.2: everything before hosts_agent. */
#define RESOURCE_1_2_SIZE offsetof(atr_prov_resource_t, hosts_agent)

static void a_1_2_request_has_no_agent(void **state) {
  (void)state;
  atr_prov_agent_t agent = {.struct_size = sizeof agent, .name = "main"};
  atr_prov_apply_request_t req;
  /* A 1.2 host's request ends before agent; whatever lies there in the
   * plugin's view is not read. */
  memset(&req, 0xff, sizeof req);
  req.struct_size = (uint32_t)offsetof(atr_prov_apply_request_t, agent);
  assert_false(ATR_PROV_REQUEST_HAS_AGENT(&req));
  req.struct_size = sizeof req;
  req.agent = &agent;
  assert_true(ATR_PROV_REQUEST_HAS_AGENT(&req));
  assert_string_equal(req.agent->name, "main");
}

/* n resources of elem bytes each, in one block filled with 0xff first so
 * that bytes a reader must not take for hosts_agent are nonzero. */
static atr_prov_apply_result_t result_of(size_t n, size_t elem) {
  atr_prov_apply_result_t res = {.struct_size = sizeof res, .nresources = n};
  unsigned char *block = malloc(n * elem + sizeof(atr_prov_resource_t));
  memset(block, 0xff, n * elem + sizeof(atr_prov_resource_t));
  for (size_t i = 0; i < n; i++) {
    atr_prov_resource_t r = {.struct_size = (uint32_t)elem};
    memcpy(block + i * elem, &r, elem);
  }
  res.resources = (atr_prov_resource_t *)(void *)block;
  return res;
}

static void a_1_2_result_makes_the_first_resource_host_the_agent(void **s) {
  (void)s;
  atr_prov_apply_result_t res = result_of(3, RESOURCE_1_2_SIZE);
  const atr_prov_resource_t *last =
      (const atr_prov_resource_t *)(const void *)((const char *)res.resources +
                                                  2 * RESOURCE_1_2_SIZE);
  /* Past the last 1.2 element lie nonzero bytes where a 1.3 reader would
   * find hosts_agent: the macro does not look there. */
  assert_false(ATR_PROV_RESOURCE_HOSTS_AGENT(last));
  assert_int_equal(atr_prov_result_agent_host(&res), 0);
  free(res.resources);
}

static void a_1_3_plugin_chooses_the_resource(void **state) {
  (void)state;
  atr_prov_apply_result_t res = result_of(3, sizeof(atr_prov_resource_t));
  for (size_t i = 0; i < 3; i++)
    res.resources[i].hosts_agent = 0;
  assert_int_equal(atr_prov_result_agent_host(&res), 0);
  res.resources[2].hosts_agent = 1;
  assert_true(ATR_PROV_RESOURCE_HOSTS_AGENT(&res.resources[2]));
  assert_int_equal(atr_prov_result_agent_host(&res), 2);
  res.resources[1].hosts_agent = 1;
  assert_int_equal(atr_prov_result_agent_host(&res), 1);
  res.nresources = 0;
  assert_int_equal(atr_prov_result_agent_host(&res), (size_t)-1);
  free(res.resources);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_1_2_request_has_no_agent),
      cmocka_unit_test(a_1_2_result_makes_the_first_resource_host_the_agent),
      cmocka_unit_test(a_1_3_plugin_chooses_the_resource),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
