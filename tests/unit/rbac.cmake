# The RBAC matrix: who may call each /api/v2 route, the permission table and
# route matching. Included from tests/unit/CMakeLists.txt.
# One program: main and the test list in test_rbac_matrix.c.
atr_add_test(test_rbac_matrix
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rbac_matrix.c
          ${CMAKE_CURRENT_LIST_DIR}/test_rbac_matrix_routes.c
          ${CMAKE_CURRENT_LIST_DIR}/test_rbac_matrix_table.c)
