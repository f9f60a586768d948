#!/usr/bin/env bash
# Builds a third-party program against virbackup as against libvirt: with
# `pkg-config --cflags --libs libvirt libvirt-qemu` and with meson's
# dependency('libvirt'), both finding the uninstalled libvirt.pc and libvirt-qemu.pc of
# the build folder. Each program must have compiled against virbackup's header and run on
# virbackup's library. Prints TAP.
#
# Usage: tests/pkgconfig.sh BUILD_DIR
set -uo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/vbpc.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PKG_CONFIG_PATH="$build/meson-uninstalled"
n=0
failed=0
report() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else failed=1; echo "not ok $n - $2"; fi; }

# The program must say: our header, our library, libvirt's version, and the test
# driver's answer to a monitor command (VIR_ERR_NO_SUPPORT, 3).
expect() {
  local out=$1
  grep -qx "header: virbackup" <<<"$out" && grep -qx "library: $build/libvirt.so.0" <<<"$out" \
    && grep -qx "version: 9000000" <<<"$out" && grep -qx "qemu monitor: 3" <<<"$out"
}

pkg-config --exists 'libvirt >= 9.0' libvirt-qemu
report $? "pkg-config finds libvirt 9.0 and libvirt-qemu in the build folder"
flags=$(pkg-config --cflags --libs libvirt libvirt-qemu)
cc -o "$work/prog" "$here/thirdparty/prog.c" $flags -ldl 2>"$work/cc.log"
report $? "cc \$(pkg-config --cflags --libs libvirt libvirt-qemu) builds the program"
out=$(LD_LIBRARY_PATH="$build" "$work/prog" 2>&1)
expect "$out"
report $? "it compiled against virbackup's header and runs on virbackup's library"
sed 's/^/# /' <<<"$out"

meson setup "$work/mbuild" "$here/thirdparty" >"$work/meson.log" 2>&1 && ninja -C "$work/mbuild" >>"$work/meson.log" 2>&1
rc=$?
report $rc "a meson project with dependency('libvirt') builds"
[ $rc = 0 ] || sed 's/^/# /' "$work/meson.log"
out=$(LD_LIBRARY_PATH="$build" "$work/mbuild/prog" 2>&1)
expect "$out"
report $? "and its program runs on virbackup"

echo "1..$n"
exit $failed
