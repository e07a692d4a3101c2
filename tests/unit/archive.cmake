# Template archives (core/archive.c): tar and tar.gz built in memory with
# libarchive's writer, unpacked into temporary directories.
atr_add_test(test_archive SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_archive.c)
