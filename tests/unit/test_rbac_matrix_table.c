/* tests/unit/test_rbac_matrix_table.c — the permission table read
 * directly (atr_rbac_allowed), cell by cell, and role and resource names.
 * Run by test_rbac_matrix.c's main. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "rbac.h"
#include "rbac_matrix.h"

/* ---- the permission table, cell by cell ----------------------------------- */

void permission_table_cells(void **state) {
  (void)state;
  /* the audit log: owners and auditors read it */
  assert_true(
      atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_AUDIT_LOG, ATR_ACT_READ, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_AUDITOR, ATR_RES_AUDIT_LOG,
                               ATR_ACT_READ, false));
  assert_false(
      atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_AUDIT_LOG, ATR_ACT_READ, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_AUDIT_LOG,
                                ATR_ACT_READ, false));
  /* a member: their own password and keys, nobody else's */
  assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_USER_SECRET,
                               ATR_ACT_UPDATE, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_USER_SECRET,
                                ATR_ACT_UPDATE, false));
  for (int act = 0; act < ATR_ACT_COUNT; act++) {
    assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_API_KEY,
                                 (atr_action_t)act, true));
    assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_API_KEY,
                                  (atr_action_t)act, false));
  }
  assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_WORKSPACE,
                               ATR_ACT_CREATE, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_WORKSPACE,
                                ATR_ACT_READ, false));
  /* templates are read within their organization only */
  assert_false(
      atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_TEMPLATE, ATR_ACT_READ, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_ORG_MEMBER, ATR_RES_TEMPLATE,
                               ATR_ACT_READ, false));
  /* user admins manage people, not their secrets */
  assert_true(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_USER,
                               ATR_ACT_DELETE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_USER_SECRET,
                                ATR_ACT_UPDATE, false));
  /* template admins: templates, and a look at workspaces */
  assert_true(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_TEMPLATE,
                               ATR_ACT_DELETE, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_WORKSPACE,
                               ATR_ACT_READ, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_WORKSPACE,
                                ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_USER,
                                ATR_ACT_CREATE, false));
  /* organization roles */
  assert_true(atr_rbac_allowed(ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION,
                               ATR_ACT_READ, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION,
                                ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(
      ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION_MEMBER, ATR_ACT_CREATE, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION,
                               ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION,
                                ATR_ACT_DELETE, false));
  /* deployment configuration: owners read and change it, nobody deletes */
  assert_true(atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_DEPLOYMENT_CONFIG,
                               ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_DEPLOYMENT_CONFIG,
                                ATR_ACT_DELETE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_AUDITOR, ATR_RES_DEPLOYMENT_CONFIG,
                                ATR_ACT_READ, false));
  /* roles add up */
  uint32_t both = ATR_ROLE_AUDITOR | ATR_ROLE_TEMPLATE_ADMIN;
  assert_true(atr_rbac_allowed(both, ATR_RES_TEMPLATE, ATR_ACT_CREATE, false));
  assert_true(atr_rbac_allowed(both, ATR_RES_AUDIT_LOG, ATR_ACT_READ, false));
  /* an action outside the table is nobody's */
  assert_false(atr_rbac_allowed(ALL_ROLES, ATR_RES_USER, ATR_ACT_COUNT, true));
}

void nobody_may_change_the_audit_log(void **state) {
  (void)state;
  for (uint32_t roles = 0; roles <= ALL_ROLES; roles++)
    for (int act = 0; act < ATR_ACT_COUNT; act++)
      if (act != ATR_ACT_READ &&
          atr_rbac_allowed(roles, ATR_RES_AUDIT_LOG, (atr_action_t)act, true))
        fail_msg("roles 0x%x may %s the audit log", roles,
                 atr_action_name((atr_action_t)act));
}

void no_roles_allow_nothing(void **state) {
  (void)state;
  for (int res = 0; res < ATR_RES_COUNT; res++)
    for (int act = 0; act < ATR_ACT_COUNT; act++)
      assert_false(
          atr_rbac_allowed(0, (atr_resource_t)res, (atr_action_t)act, true));
}

/* "self" only ever adds, and a set of roles may do exactly what one of
 * them may. */
void self_only_adds_and_roles_combine_as_a_union(void **state) {
  (void)state;
  for (uint32_t a = 1; a <= ATR_ROLE_ORG_MEMBER; a <<= 1)
    for (uint32_t b = 1; b <= ATR_ROLE_ORG_MEMBER; b <<= 1)
      for (int res = 0; res < ATR_RES_COUNT; res++)
        for (int act = 0; act < ATR_ACT_COUNT; act++)
          for (int self = 0; self < 2; self++) {
            atr_resource_t rs = (atr_resource_t)res;
            atr_action_t ac = (atr_action_t)act;
            bool alone = atr_rbac_allowed(a, rs, ac, self);
            assert_int_equal(atr_rbac_allowed(a | b, rs, ac, self),
                             alone || atr_rbac_allowed(b, rs, ac, self));
            if (alone && !self)
              assert_true(atr_rbac_allowed(a, rs, ac, true));
          }
}

/* ---- roles and names -------------------------------------------------------- */

void role_names_round_trip(void **state) {
  (void)state;
  static const struct {
    const char *name;
    uint32_t role;
    bool org;
  } known[] = {
      {"owner", ATR_ROLE_OWNER, false},
      {"user-admin", ATR_ROLE_USER_ADMIN, false},
      {"template-admin", ATR_ROLE_TEMPLATE_ADMIN, false},
      {"auditor", ATR_ROLE_AUDITOR, false},
      {"member", ATR_ROLE_MEMBER, false},
      {"organization-admin", ATR_ROLE_ORG_ADMIN, true},
      {"organization-member", ATR_ROLE_ORG_MEMBER, true},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    assert_string_equal(atr_role_name(known[i].role), known[i].name);
    assert_int_equal(atr_role_parse(known[i].name, known[i].org),
                     known[i].role);
    /* site names are not organization roles, and the other way round */
    assert_int_equal(atr_role_parse(known[i].name, !known[i].org), 0);
  }
  assert_null(atr_role_name(0));
  assert_null(atr_role_name(ATR_ROLE_OWNER | ATR_ROLE_MEMBER));
  assert_null(atr_role_name(1u << 7));
  assert_int_equal(atr_role_parse("Owner", false), 0);
  assert_int_equal(atr_role_parse("admin", false), 0);
  assert_int_equal(atr_role_parse("", false), 0);
  assert_int_equal(atr_role_parse(NULL, false), 0);
  assert_int_equal(atr_role_parse(NULL, true), 0);
}

void only_explicit_roles_are_assignable(void **state) {
  (void)state;
  assert_true(atr_role_assignable(ATR_ROLE_OWNER, false));
  assert_true(atr_role_assignable(ATR_ROLE_USER_ADMIN, false));
  assert_true(atr_role_assignable(ATR_ROLE_TEMPLATE_ADMIN, false));
  assert_true(atr_role_assignable(ATR_ROLE_AUDITOR, false));
  assert_true(atr_role_assignable(ATR_ROLE_ORG_ADMIN, true));
  /* implied for everyone */
  assert_false(atr_role_assignable(ATR_ROLE_MEMBER, false));
  assert_false(atr_role_assignable(ATR_ROLE_ORG_MEMBER, true));
  /* in the wrong scope */
  assert_false(atr_role_assignable(ATR_ROLE_OWNER, true));
  assert_false(atr_role_assignable(ATR_ROLE_ORG_ADMIN, false));
  /* not one role */
  assert_false(atr_role_assignable(0, false));
  assert_false(atr_role_assignable(ATR_ROLE_OWNER | ATR_ROLE_AUDITOR, false));
}

void resources_and_actions_have_names(void **state) {
  (void)state;
  assert_string_equal(atr_resource_name(ATR_RES_USER), "user");
  assert_string_equal(atr_resource_name(ATR_RES_USER_SECRET), "user_secret");
  assert_string_equal(atr_resource_name(ATR_RES_ROLE_ASSIGNMENT),
                      "role_assignment");
  assert_string_equal(atr_resource_name(ATR_RES_API_KEY), "api_key");
  assert_string_equal(atr_resource_name(ATR_RES_ORGANIZATION), "organization");
  assert_string_equal(atr_resource_name(ATR_RES_ORGANIZATION_MEMBER),
                      "organization_member");
  assert_string_equal(atr_resource_name(ATR_RES_AUDIT_LOG), "audit_log");
  assert_string_equal(atr_resource_name(ATR_RES_TEMPLATE), "template");
  assert_string_equal(atr_resource_name(ATR_RES_WORKSPACE), "workspace");
  assert_string_equal(atr_resource_name(ATR_RES_DEPLOYMENT_CONFIG),
                      "deployment_config");
  assert_string_equal(atr_resource_name(ATR_RES_COUNT), "unknown");
  assert_string_equal(atr_action_name(ATR_ACT_CREATE), "create");
  assert_string_equal(atr_action_name(ATR_ACT_READ), "read");
  assert_string_equal(atr_action_name(ATR_ACT_UPDATE), "update");
  assert_string_equal(atr_action_name(ATR_ACT_DELETE), "delete");
  assert_string_equal(atr_action_name(ATR_ACT_COUNT), "unknown");
}
