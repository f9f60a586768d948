#!/usr/bin/env bash
# Debian's virtnbdbackup and virtnbdrestore, unmodified, on virbackup's embedded QEMU
# driver: a running domain is backed up full, written to, backed up incrementally and
# restored, and the restored image must equal the disk. Then a second full backup over
# the existing chain (virtnbdbackup deletes the old checkpoints), and an incremental
# backup after the checkpoint metadata was lost (virtnbdbackup redefines it from its own
# copies). Prints TAP.
#
# Usage: tests/virtnbdbackup.sh BUILD_DIR    (the folder holding libvirt.so.0)
set -uo pipefail

build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
export LD_LIBRARY_PATH="$build"
py=/usr/bin/python3
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check() { local what=$1; shift; if "$@" >"$work/last.log" 2>&1; then ok "$what"; else not_ok "$what"; sed 's/^/# /' "$work/last.log"; fi; }

# Short paths: unix sockets under the root must fit in 108 bytes. Everything runs from
# there: Python would take a libvirt.so in the current folder (the build folder has
# one) for an extension module.
work=$(mktemp -d /tmp/vnbd.XXXXXX)
cd "$work" || exit 1

if ! command -v virtnbdbackup >/dev/null || ! "$py" -c "import libvirt" 2>"$work/import.log"; then
  sed "s/^/# /" "$work/import.log"
  echo "1..0 # SKIP virtnbdbackup or python3-libvirt is not installed"
  rm -rf "$work"
  exit 0
fi

root=$work/root
uri="qemu:///embed?root=$root"
disk=$work/disk.qcow2
# While the domain runs, its disk is this file (a FUSE export), as its live XML says.
running_disk=$root/run/qemu/vm/disks/vda

# Runs python3-libvirt code (through virbackup) with `conn` and `dom` set.
api() {
  "$py" - "$uri" <<EOF
import sys, libvirt
libvirt.registerErrorHandler(lambda *a: None, None)
conn = libvirt.open(sys.argv[1])
dom = conn.lookupByName('vm') if 'vm' in [d.name() for d in conn.listAllDomains()] else None
$1
EOF
}

cleanup() {
  api "dom and dom.isActive() and dom.destroy()" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

backup() { virtnbdbackup -U "$uri" -d vm -n -S "$work" -f "$work/nbd.$1" -l "$1" -o "$2"; }
restore() { rm -rf "$2" && virtnbdrestore -U "$uri" -i "$1" -o "$2"; }
same() { qemu-img compare -U -f qcow2 -F qcow2 "$disk" "$1"; }
write() { qemu-io -f raw -c "write -P $1 $2 $3" "$running_disk"; }
checkpoints() { api "print(' '.join(sorted(c.getName() for c in dom.listAllCheckpoints())))"; }

qemu-img create -q -f qcow2 "$disk" 64M
check "an image with 10 MiB of data" qemu-io -f qcow2 -c "write -P 0x11 0 8M" -c "write -P 0x12 40M 2M" "$disk"
cat >"$work/vm.xml" <<EOF
<domain type='kvm'>
  <name>vm</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$disk'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
check "define and start the domain" api "conn.defineXML(open('$work/vm.xml').read()).create()"

# Full, writes, incremental, restore.
check "virtnbdbackup -l full" backup full "$work/out"
check "write 4 MiB through the running domain's disk" write 0x22 16M 4M
check "virtnbdbackup -l inc" backup inc "$work/out"
check "the chain has two checkpoints" test "$(checkpoints)" = "virtnbdbackup.0 virtnbdbackup.1"
check "virtnbdrestore of full + inc" restore "$work/out" "$work/restore"
check "the restored image equals the disk (qemu-img compare)" same "$work/restore/disk.qcow2"

# A second full over the existing chain deletes the old checkpoints and starts anew.
before=$(api "print(dom.checkpointLookupByName('virtnbdbackup.0').getXMLDesc(libvirt.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))")
sleep 1 # a new checkpoint gets a new creation time
check "virtnbdbackup -l full into a new folder" backup full "$work/out2"
check "the old chain is gone: one new checkpoint" test "$(checkpoints)" = "virtnbdbackup.0"
after=$(api "print(dom.checkpointLookupByName('virtnbdbackup.0').getXMLDesc(libvirt.VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))")
check "virtnbdbackup.0 is a new checkpoint (another creation time)" test "$before" != "$after"

# The checkpoint metadata is lost (as when a host forgets it); the bitmaps stay.
rm -f "$root"/lib/qemu/checkpoint/vm/*.xml "$root/lib/qemu/checkpoint/vm/.current"
check "the metadata is gone" test -z "$(checkpoints)"
check "write 2 MiB more" write 0x33 30M 2M
check "virtnbdbackup -l inc redefines the lost checkpoint and backs up" backup inc "$work/out2"
check "the chain is back, with the new checkpoint" test "$(checkpoints)" = "virtnbdbackup.0 virtnbdbackup.1"
check "virtnbdrestore of the second chain" restore "$work/out2" "$work/restore2"
check "the restored image equals the disk (qemu-img compare)" same "$work/restore2/disk.qcow2"

# Nothing of the backups is left behind.
check "no backup job remains" api "assert dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE"
check "no scratch file remains" test -z "$(find "$work" -maxdepth 1 -name 'backup.*')"
check "the domain stops cleanly" api "dom.destroy()"
check "the image holds both checkpoints' bitmaps" sh -c "qemu-img info '$disk' | grep -c 'name: virtnbdbackup' | grep -qx 2"

echo "1..$n"
exit "$failed"
