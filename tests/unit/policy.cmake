# Lua policies (core/policy*.c): loading, the helper library, decisions as
# JSON, and how deployment and template policies merge. The escape suite is
# in tests/lua.
atr_add_test(test_policy SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_policy.c
             LIBRARIES pthread)
