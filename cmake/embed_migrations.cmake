# cmake -DDIR=core/store/migrations -DOUT=migrations_gen.c -P embed_migrations.cmake
# Compiles every NNNN_name.sql of DIR, in order, into atr_migrations[].
file(GLOB files ${DIR}/*.sql)
list(SORT files)
set(arrays "")
set(entries "")
set(count 0)
foreach(f IN LISTS files)
  get_filename_component(base ${f} NAME_WE)
  if(NOT base MATCHES "^([0-9][0-9][0-9][0-9])_([a-z0-9_]+)$")
    message(FATAL_ERROR "${f}: migration files are named NNNN_name.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  set(name ${CMAKE_MATCH_2})
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "static const char m${version}[] = {${bytes}0x00};\n")
  string(APPEND entries "    {${version}, \"${name}\", m${version}},\n")
  math(EXPR count "${count} + 1")
endforeach()
file(WRITE ${OUT}
  "/* Generated from core/store/migrations/ by cmake/embed_migrations.cmake. */\n"
  "#include \"migrate.h\"\n\n${arrays}\n"
  "const atr_migration_t atr_migrations[] = {\n${entries}    {0, 0, 0}};\n"
  "const size_t atr_nmigrations = ${count};\n")
