# Writes and installs poolguard.pc at install time (tools/CMakeLists.txt runs it from install(CODE)),
# when CMAKE_INSTALL_PREFIX is the prefix the files go to (`cmake --install --prefix DIR` included):
# its paths are that prefix's, absolute and normalised, with no "${pcfiledir}/../.." for
# pkg-config to print as is. Inputs: PG_PC_IN (the template), PG_PC_OUT_DIR (where to write it),
# PG_PC_VERSION, PG_PC_LIBDIR and PG_PC_INCLUDEDIR (GNUInstallDirs' values: relative to the prefix,
# or absolute).
cmake_minimum_required(VERSION 3.20)

# Absolute and normalised, written ${prefix}/... when under the prefix.
set(prefix "${CMAKE_INSTALL_PREFIX}")
cmake_path(NORMAL_PATH prefix)
string(REGEX REPLACE "(.)/+$" "\\1" prefix "${prefix}")
foreach(kind LIBDIR INCLUDEDIR)
  set(dir "${PG_PC_${kind}}")
  if(NOT IS_ABSOLUTE "${dir}")
    set(dir "${prefix}/${dir}")
  endif()
  cmake_path(NORMAL_PATH dir)
  string(REGEX REPLACE "(.)/+$" "\\1" dir "${dir}")
  set(PG_PC_FULL_${kind} "${dir}")
  string(FIND "${dir}" "${prefix}/" at)
  if(NOT prefix STREQUAL "/" AND at EQUAL 0)
    string(LENGTH "${prefix}" n)
    string(SUBSTRING "${dir}" ${n} -1 rest)
    set(dir "\${prefix}${rest}")
  endif()
  set(PG_PC_${kind} "${dir}")
endforeach()
set(PG_PC_PREFIX "${prefix}")
# One file per destination: installs to two prefixes at once (the tests do) write two files.
string(MD5 dest "$ENV{DESTDIR}${prefix}")
set(out "${PG_PC_OUT_DIR}/${dest}/poolguard.pc")
configure_file("${PG_PC_IN}" "${out}" @ONLY)
# file(INSTALL) puts DESTDIR in front and records the file in install_manifest.txt.
file(INSTALL DESTINATION "${PG_PC_FULL_LIBDIR}/pkgconfig" TYPE FILE FILES "${out}")
