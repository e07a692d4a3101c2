# The people domain (core/domain/users*, keys, orgs*) called without HTTP:
# permission checks, rules and audit entries on the real password plugin
# and storage plugins (atr_add_domain_test: SQLite, and PostgreSQL as
# test_domain_users_postgres). Included from tests/unit/CMakeLists.txt.
atr_add_domain_test(test_domain_users
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_domain_users.c)
