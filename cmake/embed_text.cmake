# cmake -DIN=file -DOUT=file.c -P embed_text.cmake
# Writes `const char atr_default_config[]` holding IN's bytes and a NUL.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n  " bytes "${bytes}")
get_filename_component(name ${IN} NAME)
file(WRITE ${OUT}
  "/* Generated from ${name} by cmake/embed_text.cmake; do not edit. */\n"
  "extern const char atr_default_config[];\n"
  "const char atr_default_config[] = {\n  ${bytes}0x00};\n")
