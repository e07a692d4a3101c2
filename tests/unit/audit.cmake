# The audit log (core/domain/audit.c and audit_query.c, core/api/api_audit.c)
# on the real storage plugins (atr_add_domain_test: SQLite, and PostgreSQL
# as test_audit_postgres). One program: main and the test list in
# test_audit.c.
atr_add_domain_test(test_audit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_audit.c
          ${CMAKE_CURRENT_LIST_DIR}/test_audit_reading.c
          ${CMAKE_CURRENT_LIST_DIR}/audit_fixture.c)
