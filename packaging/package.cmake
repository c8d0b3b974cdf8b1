# Installing and packaging: the layout of Debian's own SQLite extensions.
#
#   cmake -S . -B build && cmake --build build
#   (cd build && cpack -G DEB)          # build/snapshot_<version>_<arch>.deb
#   apt-get install ./build/snapshot_*.deb
#   apt-get remove snapshot             # removes every file it installed
#
# Included by the top-level CMakeLists.txt. The files, under the prefix
# (/usr in the package):
#
#   lib/<multiarch>/snapshot.so          the extension
#   share/snapshot/sql/*.sql             the cron scripts (sql/)
#   lib/python3/dist-packages/snapshot_django/   the Django app
#   share/doc/snapshot/                  README, docs/*.md, copyright
#   share/man/man7/snapshot.7.gz         the functions and scripts, in brief
#
# Why /usr/lib/<multiarch>: a name without a slash, as in `.load snapshot`
# (the shell tries "snapshot", then "snapshot.so") or Django's default
# SNAPSHOT_EXTENSION, is found by the dynamic loader only through
# LD_LIBRARY_PATH, its cache, or its default directories
# (/lib/<multiarch>, /usr/lib/<multiarch>, /lib, /usr/lib). ldconfig caches
# only files named lib*.so*, so /usr/local/lib/snapshot.so is never found by
# its bare name, ldconfig or not. Debian puts its loadable SQLite extensions
# in /usr/lib/<multiarch> for that reason (mod_spatialite.so). `cmake
# --install` with the default prefix installs the same tree under
# /usr/local, where `.load` needs the extension's full path; the README
# recommends the package instead.
#
# Why /usr/lib/python3/dist-packages: it is on the path of every version of
# Debian's python3, which is the python3 that can load SQLite extensions.

# Where the loader looks by default. CMake knows Debian's multiarch triplet
# (x86_64-linux-gnu) from the compiler; elsewhere it is plain lib.
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(SNAPSHOT_INSTALL_EXTENSION_DIR lib/${CMAKE_LIBRARY_ARCHITECTURE})
else()
  set(SNAPSHOT_INSTALL_EXTENSION_DIR lib)
endif()
set(SNAPSHOT_INSTALL_DOC_DIR share/doc/snapshot)

install(TARGETS snapshot LIBRARY DESTINATION ${SNAPSHOT_INSTALL_EXTENSION_DIR})
# lintian expects a shared object in a library directory to be a library
# (a SONAME, an ldconfig trigger); this one is a loadable module, like the
# mod_spatialite.so whose package overrides the same tag.
install(FILES packaging/deb/lintian-overrides DESTINATION share/lintian/overrides RENAME snapshot)
install(FILES sql/backup.sql sql/nightly.sql sql/restore-latest.sql sql/verify.sql sql/list.sql
        DESTINATION share/snapshot/sql)
install(DIRECTORY django/snapshot_django DESTINATION lib/python3/dist-packages
        FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
install(FILES README.md docs/DESIGN.md docs/FORMAT.md docs/VFS.md docs/MIGRATION.md
              packaging/deb/copyright
        DESTINATION ${SNAPSHOT_INSTALL_DOC_DIR})
install(FILES django/README.md DESTINATION ${SNAPSHOT_INSTALL_DOC_DIR} RENAME README.django.md)

# Debian ships manual pages compressed (gzip -9n: no name, no timestamp).
set(SNAPSHOT_MAN_PAGE ${CMAKE_BINARY_DIR}/snapshot.7.gz)
add_custom_command(OUTPUT ${SNAPSHOT_MAN_PAGE}
  COMMAND sh -c "gzip -9n < \"$1\" > \"$2\"" sh ${CMAKE_SOURCE_DIR}/docs/snapshot.7 ${SNAPSHOT_MAN_PAGE}
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/snapshot.7
  VERBATIM)
add_custom_target(snapshot_man_page ALL DEPENDS ${SNAPSHOT_MAN_PAGE})
install(FILES ${SNAPSHOT_MAN_PAGE} DESTINATION share/man/man7)

# With another prefix than /usr, say where a bare name will not find it.
install(CODE [[
  if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    message(STATUS "Note: `.load snapshot` by its bare name finds the extension only in /usr/lib/<multiarch> "
                   "(the Debian package: README, Install); under ${CMAKE_INSTALL_PREFIX} give `.load` its full path.")
  endif()
]])

# The package's dependencies: dpkg-shlibdeps derives the shared libraries'
# (libzstd1, libstdc++6, libc6) from the built extension. SQLite is not
# linked, it is the process that loads the extension; require at least the
# version whose headers it was compiled with.
file(STRINGS ${SQLITE3_INCLUDE_DIR}/sqlite3.h SNAPSHOT_SQLITE_VERSION_LINE REGEX "^#define SQLITE_VERSION +\"")
string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" SNAPSHOT_SQLITE_VERSION "${SNAPSHOT_SQLITE_VERSION_LINE}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME snapshot)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "snapshot")
set(SNAPSHOT_PACKAGE_MAINTAINER "snapshot dev <dev@snapshot.local>" CACHE STRING
    "The Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${SNAPSHOT_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "online incremental snapshots of live SQLite databases")
set(CPACK_PACKAGE_DESCRIPTION
"A SQLite loadable extension that takes consistent, incremental, zstd-compressed
page snapshots of a live database while its writers keep writing, and restores
one atomically, from SQL: SELECT snapshot_backup(), snapshot_restore(),
snapshot_verify(), snapshot_prune().

The package installs the extension where `.load snapshot` finds it, the
sqlite3 shell scripts for cron in /usr/share/snapshot/sql/, and a Django app
(snapshot_django) for Debian's python3. See snapshot(7).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libsqlite3-0 (>= ${SNAPSHOT_SQLITE_VERSION})")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "sqlite3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3, python3-django")
# Byte-compiles the Django app on install and removes the bytecode before
# removal, as Debian's Python packages do, so that removal leaves nothing.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/postinst ${CMAKE_SOURCE_DIR}/packaging/deb/prerm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
