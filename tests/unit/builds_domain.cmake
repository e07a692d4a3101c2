# Builds through the domain, without HTTP (core/domain/builds*.c,
# workspaces.c), on the real storage plugins (atr_add_domain_test: SQLite,
# and PostgreSQL as test_builds_domain_postgres).
atr_add_domain_test(test_builds_domain
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builds_domain.c)
