# `make package` / cpack: a Debian package of amoauth (docs/operations.md, "Installing the Debian
# package"; docs/adr/0004-debian-package.md). It holds /usr/bin/amoauth, the systemd unit
# /lib/systemd/system/amoauth.service and the settings template /etc/amoauth/amoauth.env (a
# conffile, mode 0600); postinst creates the system user `amoauth`. Depends: from
# dpkg-shlibdeps (the shared libraries the binary links) plus adduser.
#
# Whatever tree cpack runs in is packaged as built: `make package` uses the release tree; the
# `package` test packages the dev tree's binary it already has (stripped) instead of building
# a second tree.

if(NOT TARGET amoauth)
  return()
endif()

set(AMOAUTH_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/packaging)

install(TARGETS amoauth RUNTIME DESTINATION bin COMPONENT amoauth)
# Absolute destinations: these paths are fixed by Debian and systemd, not by the prefix.
install(FILES ${AMOAUTH_PACKAGING_DIR}/amoauth.service
        DESTINATION /lib/systemd/system
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
        COMPONENT amoauth)
install(FILES ${AMOAUTH_PACKAGING_DIR}/amoauth.env
        DESTINATION /etc/amoauth
        PERMISSIONS OWNER_READ OWNER_WRITE
        COMPONENT amoauth)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "amoauth")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "amoauth maintainers <amoauth@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OAuth for amoCRM/Kommo integrations: keeps tokens fresh, serves them over HTTP")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES TRUE)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};amoauth;amoauth;/")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # amoauth_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_COMPRESSION_TYPE "xz")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${AMOAUTH_PACKAGING_DIR}/debian/conffiles
    ${AMOAUTH_PACKAGING_DIR}/debian/postinst
    ${AMOAUTH_PACKAGING_DIR}/debian/prerm
    ${AMOAUTH_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
