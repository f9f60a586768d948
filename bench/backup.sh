#!/usr/bin/env bash
# backup.sh: push-backup benchmark.  Full and incremental (1 % and 10 % dirty) push backups
# of a 4 GiB qcow2 filled with random data, measured four ways:
#
#   lv-virsh   real libvirt 9.0, embedded QEMU driver (qemu:///embed?root=...), QEMU 7.2 under
#              TCG with an idle guest, driven by one long-lived virsh session, the way
#              /work/shared/tools/libvirt-qemu-reference.sh times it (poll `domjobinfo`)
#   lv-c       the same libvirt domain driven by bench/backup.c through the C API
#   vb-off     virbackup (<repo>/build/libvirt.so.0), shut-off domain, bench/backup.c
#   vb-run     virbackup, running domain (its qemu-storage-daemon owns the disk), bench/backup.c
#
# This script compares virbackup with libvirt.  The copy speed of a full backup against
# `qemu-img convert -t none` is measured by bench/speed.py, which interleaves the methods in
# every round: each method here runs in its own phase, minutes apart, and this machine's
# buffered writeback drifts 2-4x between phases, so a copy-speed ratio across phases would
# measure the drift.
#
# Usage:
#   bench/backup.sh [--runs N] [--work DIR] [--keep] [--skip-libvirt] [--skip-libvirt-c]
#                   [--skip-virbackup] [--cold] [--verify first|all|none] [--size-mib M]
#                   [--seed S] [--poll-us U] [--lib DIR] [--no-warmup] [--skip-install]
#
#   --runs N          runs per case; medians are reported (default 3; $BENCH_RUNS)
#   --work DIR        work folder (default /tmp/vbbackup-bench; $BENCH_WORK).  It must not exist
#                     or must be a folder this script made earlier.  Keep the path short: unix
#                     socket paths under it must stay below 108 bytes.
#   --keep            keep the work folder (image, backups, roots, logs).  A kept folder is
#                     reused: the source image is not generated again.
#   --skip-libvirt    no libvirt at all (no install, no QEMU); --skip-libvirt-c skips only
#                     the lv-c runs
#   --skip-virbackup  no virbackup runs
#   --cold            drop the page cache (sync; echo 3 > /proc/sys/vm/drop_caches) before
#                     every timed operation.  Default is warm: nothing is dropped, the source
#                     image was just written or read so it is in the page cache, and `sync`
#                     runs before every timed operation so no earlier dirty data is flushed
#                     inside a measurement.
#   --verify MODE     restore checks: on the first run of each method (default), on every
#                     run, or never
#   --size-mib M      image size (default 4096); the dirty amounts are 1 % and 10 % of it,
#                     rounded to whole MiB (41 MiB and 410 MiB for 4 GiB)
#   --seed S          seed of the image contents and the dirty extents (default 20251122)
#   --poll-us U       virDomainGetJobInfo poll interval of backup.c in microseconds (default
#                     2000; 0 = no polling while the job runs: wait for the job-completed
#                     event, then poll every 1 ms)
#   --lib DIR         directory with virbackup's libvirt.so.0 (default <repo>/build); the
#                     library is copied into the work folder and used from there, so a
#                     rebuild during the benchmark does not mix versions
#   --no-warmup       skip the untimed warm-up (by default each method first makes one
#                     untimed full copy/backup, without a checkpoint, so that its first timed
#                     run starts under the same conditions as the others; on this VM the first
#                     big write after a 4 GiB image copy was often 2x slower)
#   --skip-install    do not apt-get anything (also implied when not root)
#
# The scenario, per method and run r (checkpoints <m><r>a, <m><r>b, <m><r>c; m = v, c, o, n):
#   1. full push backup of vda into a new qcow2, creating checkpoint <m><r>a atomically
#   2. write 1 % of the disk (random 64 KiB-1 MiB extents at random 64 KiB-aligned offsets,
#      not overlapping, fixed seed per run) through the owner of the disk:
#        libvirt   HMP `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write ..."`
#        vb-run    `qemu-io -f raw <root>/run/qemu/<dom>/disks/vda` (the disk's FUSE file)
#        vb-off    `qemu-io -f qcow2 <image>`
#   3. incremental push backup since <m><r>a, creating <m><r>b atomically
#   4. write 10 % the same way (other extents)
#   5. incremental push backup since <m><r>b, creating <m><r>c
#   6. delete the three checkpoints and the backups
# With --verify, after each backup: the chain full <- inc1 <- inc10 is put together with
# `qemu-img rebase -u` and `qemu-img compare`d with the source at that moment (libvirt: after
# an HMP flush, compare -U on the image; vb-run: through its NBD export).  For an incremental,
# the chain without it must differ from the source (so the writes happened and compare sees
# them).
#
# What is timed:
#   wall       from sending backup-begin / calling virDomainBackupBegin until the job is no
#              longer active (virsh: `domjobinfo` polled every 5 ms in the same session;
#              backup.c: virDomainGetJobInfo polled every --poll-us)
#   elapsed    libvirt's own "Time elapsed" (virDomainGetJobStats COMPLETED / domjobinfo
#              --completed)
#   +sync      wall plus a `sync` right after (virbackup flushes its targets before the job
#              ends, so its sync takes milliseconds; libvirt's QEMU writes through the cache)
# The byte count each backup reports as processed is checked against the written amount
# (full: the whole disk; incremental: exactly the dirty bytes, since the extents are
# 64 KiB-aligned and disjoint).
#
# Installing (root only, unless --skip-install): missing packages are apt-get installed,
# refusing if apt would remove anything.  qemu-system-x86 7.2 is NOT installed (it would
# remove qemu-utils 10): it is `apt-get download`ed and unpacked under the work folder, as in
# /work/shared/tools/libvirt-qemu-reference.sh.  libvirt's embedded driver runs in a private
# mount namespace (unshare -m) where /etc/passwd and /etc/group are bind-mounted copies with a
# libvirt-qemu user; nothing outside the work folder changes and no mount outlives a command.
#
# Cleanup: every QEMU / qemu-storage-daemon started here is stopped (destroy; if one is still
# alive, it is killed by the pid from its own pid file after checking its command line).  The
# work folder is removed unless --keep; the transcript is copied to
# /tmp/vbbackup-bench.<epoch>.log.  Results (medians and ratios) go to stdout at the end.
set -uo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo_dir=$(dirname "$script_dir")
self="$script_dir/$(basename "${BASH_SOURCE[0]}")"

########################################################################################
# Internal subcommands, run by backup.c's "sh" action (it starts /bin/sh, so these cannot be
# shell functions).

# __qio FMT TARGET FILE COUNT: feed qemu-io the commands in FILE; check every write succeeded.
if [ "${1:-}" = __qio ]; then
    fmt=$2 target=$3 file=$4 count=$5
    n=$(qemu-io -f "$fmt" "$target" < "$file" 2>&1 | grep -c '^.*wrote [0-9]')
    if [ "$n" = "$count" ]; then echo "dirty ok=1 writes=$n"; exit 0; fi
    echo "dirty ok=0 writes=$n expected=$count"; exit 1
fi
# __check LABEL SRC SRCFMT TOP BACKING: rebase TOP onto BACKING ("-": leave it), then compare
# TOP (qcow2) with SRC.  SRC is a file (opened with -U, as someone else has it open) or an
# nbd+unix:// URI.  With a BACKING, BACKING alone (the restore without TOP) is compared first
# and must differ: that shows the dirty writes happened and that compare would notice a
# backup missing them.
if [ "${1:-}" = __check ]; then
    label=$2 src=$3 srcfmt=$4 top=$5 backing=$6
    u=-U; case "$src" in nbd*) u= ;; esac
    neg=""
    if [ "$backing" != - ]; then
        out=$(qemu-img compare $u -f qcow2 -F "$srcfmt" "$backing" "$src" 2>&1); rc=$?
        [ $rc = 1 ] || { echo "check label=$label ok=0 detail=\"without the incremental: ${out//$'\n'/ } (expected a mismatch)\""; exit 1; }
        neg=" (without it: ${out//$'\n'/ })"
        qemu-img rebase -u -F qcow2 -b "$backing" "$top" || { echo "check label=$label ok=0 detail=\"rebase failed\""; exit 1; }
    fi
    out=$(qemu-img compare $u -f qcow2 -F "$srcfmt" "$top" "$src" 2>&1); rc=$?
    echo "check label=$label ok=$([ $rc = 0 ] && echo 1 || echo 0) detail=\"${out//$'\n'/ }$neg\""
    exit $rc
fi

########################################################################################
# Options

WORK=${BENCH_WORK:-/tmp/vbbackup-bench}
RUNS=${BENCH_RUNS:-3}
KEEP=0 SKIP_LV=0 SKIP_LVC=0 SKIP_VB=0 COLD=0 VERIFY=first SIZE_MIB=4096 SEED=20251122
POLL_US=2000 VB_LIB=${VIRBACKUP_LIB_DIR:-$repo_dir/build} SKIP_INSTALL=0 WARMUP=1

usage() { sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$self"; }
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --skip-libvirt) SKIP_LV=1; shift ;;
    --skip-libvirt-c) SKIP_LVC=1; shift ;;
    --skip-virbackup) SKIP_VB=1; shift ;;
    --cold) COLD=1; shift ;;
    --verify) VERIFY=$2; shift 2 ;;
    --size-mib) SIZE_MIB=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --poll-us) POLL_US=$2; shift 2 ;;
    --lib) VB_LIB=$2; shift 2 ;;
    --skip-install) SKIP_INSTALL=1; shift ;;
    --no-warmup) WARMUP=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "backup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
is_uint() { case "$1" in ''|*[!0-9]*) return 1 ;; esac; }
for v in RUNS SIZE_MIB SEED POLL_US; do
    is_uint "${!v}" || { echo "backup.sh: bad value for $v: ${!v}" >&2; exit 2; }
done
[ "$RUNS" -ge 1 ] && [ "$SIZE_MIB" -ge 64 ] || { echo "backup.sh: need --runs >= 1 and --size-mib >= 64" >&2; exit 2; }
case "$VERIFY" in first|all|none) ;; *) echo "backup.sh: --verify first|all|none" >&2; exit 2 ;; esac
case "$WORK" in /*) ;; *) WORK=$PWD/$WORK ;; esac
WORK=${WORK%/}
[ "$(id -u)" = 0 ] || SKIP_INSTALL=1
if [ "$(id -u)" != 0 ] && [ "$SKIP_LV" = 0 ]; then
    echo "backup.sh: libvirt's embedded driver needs root here (unshare -m, bind mounts); skipping libvirt" >&2
    SKIP_LV=1
fi
[ "$SKIP_LV" = 1 ] && SKIP_LVC=1
[ -d "$VB_LIB" ] && VB_LIB=$(cd "$VB_LIB" && pwd -P)

########################################################################################
# Work folder, transcript, cleanup

STAMP=.vbbackup-bench
if [ -e "$WORK" ] && [ ! -e "$WORK/$STAMP" ]; then
    echo "backup.sh: $WORK exists and was not made by this script; remove it or pass --work" >&2
    exit 2
fi
mkdir -p "$WORK" && touch "$WORK/$STAMP" || exit 2
IMG=$WORK/img BK=$WORK/bk XD=$WORK/xml DIRTY=$WORK/dirty
LVROOT=$WORK/lvroot VBROOT=$WORK/vbroot QDIR=$WORK/qemu
LVDOM=lvbench VBDOM=vbbench
LVURI="qemu:///embed?root=$LVROOT" VBURI="qemu:///embed?root=$VBROOT"
QOM=/machine/peripheral/virtio-disk0/virtio-backend
RES=$WORK/results.txt      # one line per measurement: METHOD CASE RUN wall sync elapsed processed event
CHK=$WORK/checks.txt       # one line per check: METHOD RUN LABEL ok|FAIL detail
NOTES=$WORK/notes.txt      # "not available" reasons etc.
# A QEMU or qemu-storage-daemon started under our roots that is still alive (only possible
# after this script was killed hard): kill it by the pid in its own pid file, after checking
# that its command line names the work folder.
kill_leftovers() {
    local f p
    for f in "$LVROOT/run/qemu/$LVDOM.pid" "$VBROOT"/run/qemu/*/*.pid; do
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null)
        is_uint "$p" && grep -qa "$WORK" "/proc/$p/cmdline" 2>/dev/null && { echo "# killing leftover pid $p ($f)"; kill "$p"; }
    done
    return 0
}
kill_leftovers
mkdir -p "$IMG" "$BK" "$XD" "$DIRTY" "$WORK/bin"
rm -f "$RES" "$CHK" "$NOTES" "$BK"/*
rm -rf "$LVROOT" "$VBROOT" "$WORK/vblib"
LOG=$WORK/transcript.log
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
T_START=${EPOCHREALTIME/./}

say()  { printf "\n######## %s   [load %s]\n" "$*" "$(cut -d" " -f1-3 /proc/loadavg)"; }
note() { printf '# %s\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; local rc=$?; [ $rc = 0 ] || printf '(exit %d)\n' $rc; return $rc; }
now_us() { echo "${EPOCHREALTIME/./}"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", (b-a)/1000}'; }
median() { sort -g | awk '{a[NR]=$1} END{ if(NR==0){print "NA"} else if(NR%2){print a[(NR+1)/2]} else {printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2} }'; }
addnote() { echo "$*" >> "$NOTES"; note "$*"; }
prepare_cache() {   # before every timed operation
    sync
    [ "$COLD" = 1 ] && echo 3 > /proc/sys/vm/drop_caches
    return 0
}

VPID=""
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    [ -n "$VPID" ] && stop_session
    if [ -d "$LVROOT" ] && [ "$SKIP_LV" = 0 ] && [ -x "$WORK/bin/lvenv" ]; then
        if [ -f "$LVROOT/run/qemu/$LVDOM.pid" ] && [ -x "$WORK/bin/backup" ]; then
            "$WORK/bin/lvenv" "$WORK/bin/backup" --no-event "$LVURI" "$LVDOM" settle destroy >/dev/null 2>&1
        fi
        "$WORK/bin/lvenv" virsh -q -c "$LVURI" undefine "$LVDOM" --checkpoints-metadata >/dev/null 2>&1
    fi
    if [ -d "$VBROOT" ] && [ -x "$WORK/bin/backup" ]; then
        LD_LIBRARY_PATH=$VB_LIB "$WORK/bin/backup" --no-event "$VBURI" "$VBDOM" destroy >/dev/null 2>&1
        LD_LIBRARY_PATH=$VB_LIB "$WORK/bin/backup" --no-event "$VBURI" "$VBDOM" undefine >/dev/null 2>&1
    fi
    kill_leftovers   # last resort

    if [ "$KEEP" != 1 ]; then
        local saved=/tmp/vbbackup-bench.$(date +%s).log
        sleep 0.2; cp "$LOG" "$saved" 2>/dev/null
        echo "removing $WORK; transcript copied to $saved"
        rm -rf "$WORK"
    else
        echo "kept $WORK (transcript $LOG)"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM

say "0. environment"
run uname -r; run nproc; run cat /proc/loadavg
note "$(qemu-img --version | head -1)"
note "work folder $WORK; runs $RUNS; image ${SIZE_MIB} MiB; cache $([ "$COLD" = 1 ] && echo cold || echo warm); verify $VERIFY; seed $SEED"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
awk -v l="${LOAD0%% *}" -v n="$(nproc)" 'BEGIN{exit !(l > n)}' && note "WARNING: load average $LOAD0 is above the CPU count: something else is running, expect noisy numbers"

########################################################################################
say "1. packages"
if [ "$SKIP_INSTALL" != 1 ]; then
    export DEBIAN_FRONTEND=noninteractive
    WANT="qemu-utils libvirt0 libvirt-dev gcc"
    command -v python3 >/dev/null || WANT="$WANT python3"
    command -v openssl >/dev/null || WANT="$WANT openssl"
    if [ "$SKIP_LV" = 0 ]; then
        WANT="$WANT libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu"
        # runtime dependencies of qemu-system-x86 + qemu-system-common, minus qemu-system-common
        QDEPS=$(apt-cache depends qemu-system-x86 qemu-system-common 2>/dev/null | awk '$1=="Depends:"{print $2}' \
                | grep -v '^<' | grep -vx qemu-system-common | sort -u)
        WANT="$WANT $QDEPS"
    fi
    NEED=""
    for p in $WANT; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"install ok installed"* ]] || NEED="$NEED $p"
    done
    note "missing:${NEED:- none}"
    if [ -n "$NEED" ]; then
        run apt-get update -q >/dev/null
        # (the output is captured first: with pipefail, "| grep -q" can fail on SIGPIPE)
        sim=$(apt-get install -s --no-install-recommends $NEED) || { echo "backup.sh: apt-get -s failed" >&2; exit 1; }
        if grep -q '^Remv' <<< "$sim"; then
            grep '^Remv' <<< "$sim"
            echo "backup.sh: refusing: apt would remove packages" >&2; exit 1
        fi
        run apt-get install -y -q --no-install-recommends $NEED >/dev/null || exit 1
    fi
fi
for t in qemu-img qemu-io gcc python3 openssl awk; do
    command -v "$t" >/dev/null || { echo "backup.sh: $t not found" >&2; exit 1; }
done
[ -f /usr/include/libvirt/libvirt.h ] || { echo "backup.sh: libvirt development files missing (libvirt-dev)" >&2; exit 1; }
if [ "$SKIP_LV" = 0 ]; then
    for t in virsh unshare stdbuf; do command -v "$t" >/dev/null || { echo "backup.sh: $t not found" >&2; exit 1; }; done
    if [ ! -x "$QDIR/usr/bin/qemu-system-x86_64" ]; then
        note "unpacking qemu-system-x86 7.2 under $QDIR (downloaded, not installed)"
        mkdir -p "$WORK/debs" "$QDIR"
        ( cd "$WORK/debs" && apt-get download qemu-system-x86 qemu-system-common > download.log 2>&1 ) \
            || { cat "$WORK/debs/download.log"; echo "backup.sh: apt-get download failed" >&2; exit 1; }
        for d in "$WORK"/debs/*.deb; do dpkg -x "$d" "$QDIR" || exit 1; done
        rm -rf "$WORK/debs"
        # QEMU looks for firmware and data relative to its binary: point those at the
        # installed seabios, ipxe-qemu and qemu-system-data.
        ln -sfn /usr/share/seabios "$QDIR/usr/share/seabios"
        mkdir -p "$QDIR/usr/lib"; ln -sfn /usr/lib/ipxe "$QDIR/usr/lib/ipxe"
        for f in /usr/share/qemu/*; do [ -e "$QDIR/usr/share/qemu/$(basename "$f")" ] || ln -s "$f" "$QDIR/usr/share/qemu/"; done
    fi
    EMU=$QDIR/usr/bin/qemu-system-x86_64
    note "$("$EMU" --version | head -1)"
    run dpkg-query -W libvirt0 libvirt-daemon-driver-qemu libvirt-clients
fi

########################################################################################
say "2. build bench/backup.c"
run gcc -O2 -Wall -Wextra -o "$WORK/bin/backup" "$script_dir/backup.c" -Wl,--no-as-needed -lvirt -pthread || exit 1
BACKUP=$WORK/bin/backup

########################################################################################
say "3. source image and dirty extents"
SIZE=$((SIZE_MIB * 1048576))
SRC=$IMG/src.qcow2
if [ -f "$SRC" ] && [ "$(cat "$IMG/src.stamp" 2>/dev/null)" = "$SIZE_MIB $SEED" ]; then
    note "reusing $SRC"
else
    rm -f "$SRC" "$IMG/src.stamp"
    t0=$(now_us)
    note "random bytes: AES-128-CTR keystream of /dev/zero (openssl, key from the seed) -> raw -> qcow2"
    openssl enc -aes-128-ctr -pass "pass:$SEED" -nosalt -pbkdf2 < /dev/zero 2>/dev/null | head -c "$SIZE" > "$IMG/src.raw"
    [ "$(stat -c %s "$IMG/src.raw")" = "$SIZE" ] || { echo "backup.sh: could not generate $IMG/src.raw" >&2; exit 1; }
    run qemu-img convert -f raw -O qcow2 "$IMG/src.raw" "$SRC" || exit 1
    rm -f "$IMG/src.raw"
    echo "$SIZE_MIB $SEED" > "$IMG/src.stamp"
    note "generated in $(ms_between "$t0" "$(now_us)") ms"
fi
qemu-img info "$SRC" | grep -E '^(virtual size|disk size|cluster_size):'
note "compressibility check: gzip -1 of the first 64 MiB of guest data"
qemu-img dd -f qcow2 -O raw if="$SRC" of=/dev/stdout bs=1M count=64 2>/dev/null | gzip -1 | wc -c | awk '{printf "# 67108864 -> %d bytes\n", $1}'

# Extent lists: DIRTY/p<pct>-r<run>.ext = "offset length pattern" lines; disjoint, 64 KiB
# aligned, lengths 64 KiB..1 MiB, total exactly round(pct % of the disk) MiB.  Next to each:
# .qio (qemu-io commands, for NBD or the image) and .hmp (HMP commands for libvirt's QEMU).
# Written by python because mawk's printf %d stops at 2^31-1.
python3 - "$DIRTY" "$SIZE" "$SEED" "$RUNS" "$QOM" <<'EOF' || exit 1
import random, sys
out, size, seed, runs, qom = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
G = 65536
nclu = size // G
for run in range(1, runs + 1):
    for pct in (1, 10):
        total = round(size / 1048576 * pct / 100) * 1048576 // G   # clusters
        rnd = random.Random(seed * 1000 + run * 10 + pct)
        used = bytearray(nclu)
        ext = []
        left = total
        while left > 0:
            n = min(rnd.randint(1, 16), left)
            c = rnd.randrange(0, nclu - n + 1)
            if any(used[c:c + n]):
                continue
            used[c:c + n] = b"\1" * n
            ext.append((c * G, n * G, 1 + (len(ext) * 37 + run * 11 + pct) % 255))
            left -= n
        ext.sort()
        base = f"{out}/p{pct}-r{run}"
        with open(base + ".ext", "w") as f:
            f.writelines(f"{o} {l} {p}\n" for o, l, p in ext)
        with open(base + ".qio", "w") as f:
            f.writelines(f"write -P 0x{p:02x} {o} {l}\n" for o, l, p in ext)
            f.write("flush\n")
        with open(base + ".hmp", "w") as f:
            f.writelines(f'qemu-io -d {qom} "write -P 0x{p:02x} {o} {l}"\n' for o, l, p in ext)
        with open(base + ".bytes", "w") as f:
            f.write(f"{sum(l for _, l, _ in ext)}\n")
with open(f"{out}/flush.hmp", "w") as f:
    f.write(f'qemu-io -d {qom} "flush"\n')
EOF
DIRTY1=$(cat "$DIRTY/p1-r1.bytes")
DIRTY10=$(cat "$DIRTY/p10-r1.bytes")
note "dirty per run: 1 % = $DIRTY1 bytes in $(wc -l < "$DIRTY/p1-r1.ext") extents, 10 % = $DIRTY10 bytes in $(wc -l < "$DIRTY/p10-r1.ext") extents (run 1)"
expected_bytes() { case "$1" in full) echo "$SIZE" ;; inc1) cat "$DIRTY/p1-r$2.bytes" ;; inc10) cat "$DIRTY/p10-r$2.bytes" ;; esac; }
verify_run() { [ "$VERIFY" = all ] || { [ "$VERIFY" = first ] && [ "$1" = 1 ]; }; }
record() {   # METHOD CASE RUN wall sync elapsed processed event
    echo "$*" >> "$RES"
    local exp; exp=$(expected_bytes "$2" "$3")
    if [ "$7" != "$exp" ]; then
        echo "$1 $3 $2-bytes FAIL processed=$7 expected=$exp" >> "$CHK"
        note "BYTE COUNT MISMATCH: $1 $2 run $3 processed $7, expected $exp"
    else
        echo "$1 $3 $2-bytes ok processed=$7" >> "$CHK"
    fi
}
# results of backup.c: parse its "result" and "check" lines from a log file
parse_c() {   # METHOD RUN LOGFILE
    local m=$1 r=$2 f=$3 line k
    local -A kv
    while IFS= read -r line; do
        case "$line" in
        "result "*)
            kv=()
            for k in $line; do case "$k" in *=*) kv[${k%%=*}]=${k#*=} ;; esac; done
            if [ "${kv[ok]:-0}" = 1 ] && [ "${kv[label]}" != warmup ]; then
                record "$m" "${kv[label]}" "$r" "${kv[wall_ms]}" "${kv[sync_ms]}" "${kv[elapsed_ms]}" "${kv[processed]}" "${kv[event_ms]}"
            fi ;;
        "check "*)
            local lab ok; lab=$(sed 's/.*label=\([^ ]*\).*/\1/' <<< "$line"); ok=$(sed 's/.* ok=\([01]\).*/\1/' <<< "$line")
            echo "$m $r $lab $([ "$ok" = 1 ] && echo ok || echo FAIL) ${line#*detail=}" >> "$CHK" ;;
        esac
    done < "$f"
}

########################################################################################
say "4. page cache"
note "warming: cat $SRC > /dev/null"; cat "$SRC" > /dev/null

########################################################################################
# libvirt

# virsh session helpers (the reference script's method: one interactive virsh fed through a
# FIFO, a marker echoed after each command)
start_session() {
    rm -f "$WORK/vin" "$WORK/vout"; mkfifo "$WORK/vin" "$WORK/vout"
    "$WORK/bin/lvenv" stdbuf -oL -eL virsh -c "$LVURI" < "$WORK/vin" > "$WORK/vout" 2>&1 &
    VPID=$!
    exec 7>"$WORK/vin" 8<"$WORK/vout"
    note "virsh session pid $VPID"
}
stop_session() {
    kill -0 "$VPID" 2>/dev/null && printf 'quit\n' >&7
    exec 7>&- 8<&-
    wait "$VPID" 2>/dev/null; note "virsh session pid $VPID exited"; VPID=""
    rm -f "$WORK/vin" "$WORK/vout"
}
vsh() {   # run one virsh command in the session; print its output
    local id=${EPOCHREALTIME/./} line
    printf '%s\necho "__E""ND_%s__"\n' "$*" "$id" >&7
    while IFS= read -r -t 900 line <&8; do
        case "$line" in
        *"__END_${id}__"*) break ;;
        "virsh # "*|"Welcome to virsh"*|"Type:  'help'"*|"       'quit' to quit"*|"") continue ;;
        *" info : "*|*"virSecurityManagerNew"*) continue ;;
        esac
        printf '%s\n' "$line"
    done
}
vshow() { printf 'virsh # %s\n' "$*"; vsh "$@"; }
wait_job() {   # poll domjobinfo until the job is gone
    local out
    while :; do
        out=$(vsh "domjobinfo $LVDOM")
        case "$out" in *"Job type:"*"Unbounded"*) sleep 0.005 ;; *) break ;; esac
    done
}
lv_hmp_file() {   # send the lines of an .hmp file through the session, 100 per round trip
    local lines i out bad=0          # (more could fill both FIFOs at once and deadlock)
    mapfile -t lines < "$1"
    for ((i = 0; i < ${#lines[@]}; i += 100)); do
        out=$(vsh "$(printf "qemu-monitor-command $LVDOM --hmp '%s'\n" "${lines[@]:i:100}")" | grep -v ' warning : ')
        # qemu-io prints into QEMU's log; anything here is an error
        [ -z "$out" ] || { bad=1; echo "$out"; }
    done
    [ "$bad" = 0 ]
}
push_xml() {  # FILE TARGET FROM(-=full)
    { echo "<domainbackup>"
      [ "$3" != - ] && echo "  <incremental>$3</incremental>"
      echo "  <disks><disk name='vda' backup='yes' type='file'><target file='$2'/><driver type='qcow2'/></disk></disks>"
      echo "</domainbackup>"; } > "$1"
}
cp_xml() { echo "<domaincheckpoint><name>$2</name><disks><disk name='vda' checkpoint='bitmap'/></disks></domaincheckpoint>" > "$1"; }
lv_backup() {   # CASE RUN TARGET FROM CP
    local c=$1 r=$2 tgt=$3 from=$4 cpn=$5 t0 t1 t2 raw el pr
    push_xml "$XD/b.xml" "$tgt" "$from"; cp_xml "$XD/c.xml" "$cpn"
    prepare_cache
    t0=$(now_us)
    out=$(vsh "backup-begin $LVDOM --backupxml $XD/b.xml --checkpointxml $XD/c.xml")
    case "$out" in *"Backup started"*) ;; *) note "backup-begin failed: $out"; return 1 ;; esac
    wait_job
    t1=$(now_us); sync; t2=$(now_us)
    raw=$(vsh "domjobinfo $LVDOM --completed --rawstats")
    el=$(awk -F': *' '$1 ~ /time_elapsed/ {gsub(/ /, "", $2); print $2}' <<< "$raw")
    pr=$(awk -F': *' '$1 ~ /disk_processed/ {gsub(/ /, "", $2); print $2}' <<< "$raw")
    # --rawstats prints the job type as a number: 3 = VIR_DOMAIN_JOB_COMPLETED
    case "$(awk -F': *' '/^Job type/ {print $2}' <<< "$raw")" in
    3|Completed) ;; *) note "job did not complete: ${raw//$'\n'/ }"; return 1 ;; esac
    record lv-virsh "$c" "$r" "$(ms_between "$t0" "$t1")" "$(ms_between "$t1" "$t2")" "${el:-NA}" "${pr:-NA}" NA
    note "lv-virsh $c run $r: wall $(ms_between "$t0" "$t1") ms, +sync $(ms_between "$t1" "$t2") ms, libvirt elapsed ${el} ms, processed ${pr} bytes"
}
lv_check() {   # RUN LABEL TOP BACKING
    vsh "qemu-monitor-command $LVDOM --hmp 'qemu-io -d $QOM \"flush\"'" >/dev/null
    local line; line=$("$self" __check "$2" "$LVIMG" qcow2 "$3" "$4"); echo "$line"
    echo "lv-virsh $1 $2 $(grep -q ' ok=1' <<< "$line" && echo ok || echo FAIL) ${line#*detail=}" >> "$CHK"
}

LVIMG=$IMG/lv.qcow2
if [ "$SKIP_LV" = 0 ]; then
    say "5. libvirt: embedded QEMU driver setup"
    cp /etc/passwd "$WORK/passwd"; cp /etc/group "$WORK/group"
    getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/nonexistent:/usr/sbin/nologin' >> "$WORK/passwd"
    getent group  libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >> "$WORK/group"
    getent group  kvm          >/dev/null || echo 'kvm:x:64056:' >> "$WORK/group"
    ln -sfn "$EMU" "$WORK/bin/qemu-system-x86_64"
    # lvenv CMD...: CMD in a private mount namespace with the passwd/group copies bind-mounted
    # (libvirt's Debian build needs a libvirt-qemu user) and only qemu-system-x86_64 added to PATH
    cat > "$WORK/bin/lvenv" <<EOF
#!/bin/sh
exec unshare -m sh -c 'mount --bind $WORK/passwd /etc/passwd && mount --bind $WORK/group /etc/group && PATH=$WORK/bin:\$PATH exec "\$@"' sh "\$@"
EOF
    chmod +x "$WORK/bin/lvenv"
    mkdir -p "$LVROOT/etc"
    cat > "$LVROOT/etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
    cat > "$XD/lvdomain.xml" <<EOF
<domain type='qemu'>
  <name>$LVDOM</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>$EMU</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$LVIMG'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
    t0=$(now_us); cp "$SRC" "$LVIMG"; sync; note "copied the source to $LVIMG in $(ms_between "$t0" "$(now_us)") ms"
    start_session
    vshow "version"
    vshow "define $XD/lvdomain.xml"
    vshow "start $LVDOM"
    if ! grep -q running <<< "$(vsh "domstate $LVDOM")"; then
        addnote "libvirt: not available: the domain did not start"; tail -20 "$LVROOT/log/qemu/$LVDOM.log"
        SKIP_LV=1 SKIP_LVC=1; stop_session
    fi
fi

if [ "$SKIP_LV" = 0 ]; then
    say "6. libvirt through virsh: $RUNS runs"
    if [ "$WARMUP" = 1 ]; then
        push_xml "$XD/w.xml" "$BK/warmup.qcow2" -; prepare_cache; t0=$(now_us)
        out=$(vsh "backup-begin $LVDOM --backupxml $XD/w.xml")
        case "$out" in *"Backup started"*) wait_job ;; *) echo "$out" ;; esac
        vsh "domjobinfo $LVDOM --completed" >/dev/null
        note "warm-up full backup (untimed, no checkpoint): $(ms_between "$t0" "$(now_us)") ms"
        rm -f "$BK/warmup.qcow2"; sync
    fi
    for r in $(seq 1 "$RUNS"); do
        F=$BK/lv-r$r-full.qcow2 I1=$BK/lv-r$r-inc1.qcow2 I10=$BK/lv-r$r-inc10.qcow2
        ok=0
        # checkpoints v<r>a, v<r>b, v<r>c (names differ per method, so a failed run leaves
        # nothing in the way of the next method)
        while :; do
            lv_backup full "$r" "$F" - "v${r}a" || break
            verify_run "$r" && lv_check "$r" full "$F" -
            t0=$(now_us); lv_hmp_file "$DIRTY/p1-r$r.hmp" || { note "dirty write failed"; break; }
            note "wrote 1 % through HMP qemu-io in $(ms_between "$t0" "$(now_us)") ms"
            lv_backup inc1 "$r" "$I1" "v${r}a" "v${r}b" || break
            verify_run "$r" && lv_check "$r" inc1 "$I1" "$F"
            t0=$(now_us); lv_hmp_file "$DIRTY/p10-r$r.hmp" || { note "dirty write failed"; break; }
            note "wrote 10 % through HMP qemu-io in $(ms_between "$t0" "$(now_us)") ms"
            lv_backup inc10 "$r" "$I10" "v${r}b" "v${r}c" || break
            verify_run "$r" && lv_check "$r" inc10 "$I10" "$I1"
            [ "$r" = 1 ] && { note "libvirt's incremental target (backing file rewritten by the check):"; qemu-img info -U "$I1" | grep -E '^(backing file|disk size):'; }
            ok=1; break
        done
        for c in c b a; do vsh "checkpoint-delete $LVDOM v$r$c" | grep -v -e 'deleted$' -e 'not found'; done
        rm -f "$F" "$I1" "$I10" "$BK/warmup.qcow2"; sync
        [ "$ok" = 1 ] || { addnote "libvirt via virsh: run $r failed"; break; }
    done
    vshow "checkpoint-list $LVDOM"
    stop_session

    if [ "$SKIP_LVC" = 0 ]; then
        say "7. libvirt through bench/backup.c (system libvirt.so.0): $RUNS runs"
        printf '$ ldd %s | grep libvirt\n' "$BACKUP"; ldd "$BACKUP" | grep libvirt
        for r in $(seq 1 "$RUNS"); do
            F=$BK/lvc-r$r-full.qcow2 I1=$BK/lvc-r$r-inc1.qcow2 I10=$BK/lvc-r$r-inc10.qcow2
            A=(settle)
            [ "$WARMUP" = 1 ] && [ "$r" = 1 ] && A+=(full warmup "$BK/warmup.qcow2" - sh "rm -f $BK/warmup.qcow2")
            A+=(full full "$F" "c${r}a")
            verify_run "$r" && A+=(hmp "$DIRTY/flush.hmp" sh "$self __check full $LVIMG qcow2 $F -")
            A+=(hmp "$DIRTY/p1-r$r.hmp" inc inc1 "c${r}a" "$I1" "c${r}b")
            verify_run "$r" && A+=(hmp "$DIRTY/flush.hmp" sh "$self __check inc1 $LVIMG qcow2 $I1 $F")
            A+=(hmp "$DIRTY/p10-r$r.hmp" inc inc10 "c${r}b" "$I10" "c${r}c")
            verify_run "$r" && A+=(hmp "$DIRTY/flush.hmp" sh "$self __check inc10 $LVIMG qcow2 $I10 $I1")
            A+=(cpdelete "c${r}c" cpdelete "c${r}b" cpdelete "c${r}a")
            dc=(); [ "$COLD" = 1 ] && dc=(--drop-caches)
            printf '$ lvenv backup --poll-us %s %s %s %s\n' "$POLL_US" "${dc[*]}" "$LVURI $LVDOM" "${A[*]}"
            "$WORK/bin/lvenv" "$BACKUP" --poll-us "$POLL_US" "${dc[@]}" "$LVURI" "$LVDOM" "${A[@]}" > "$WORK/c.out" 2>&1
            rc=$?; cat "$WORK/c.out"
            grep -q "^library=/.*libvirt.so.0" "$WORK/c.out" && ! grep -q "^library=$VB_LIB" "$WORK/c.out" \
                || note "WARNING: backup.c did not load the system libvirt"
            parse_c lv-c "$r" "$WORK/c.out"
            rm -f "$F" "$I1" "$I10" "$BK/warmup.qcow2"; sync
            [ $rc = 0 ] || { addnote "libvirt via backup.c: run $r failed (exit $rc)"; break; }
        done
    fi
    say "8. libvirt: stop and remove the domain"
    # through backup.c: "settle" first waits until the freshly started driver has reconnected
    # to QEMU (a one-shot `virsh destroy` can race with that reconnect and report an error)
    run "$WORK/bin/lvenv" "$BACKUP" --no-event "$LVURI" "$LVDOM" settle destroy undefine
    rm -f "$LVIMG"; sync
fi

########################################################################################
# virbackup

vb_c() {   # METHOD RUN ACTION... ; runs backup.c with virbackup's library; output in $WORK/c.out
    local m=$1 r=$2; shift 2
    local dc=(); [ "$COLD" = 1 ] && dc=(--drop-caches)
    printf '$ LD_LIBRARY_PATH=%s backup --poll-us %s %s %s %s %s\n' "$VB_LIB" "$POLL_US" "${dc[*]}" "$VBURI" "$VBDOM" "$*"
    LD_LIBRARY_PATH=$VB_LIB "$BACKUP" --poll-us "$POLL_US" "${dc[@]}" "$VBURI" "$VBDOM" "$@" > "$WORK/c.out" 2>&1
    local rc=$?; cat "$WORK/c.out"
    [ "$m" != - ] && parse_c "$m" "$r" "$WORK/c.out"
    return $rc
}
vb_reason() {   # why the last backup.c run failed, in one line
    local why
    why=$(grep -m1 -E '^unavailable:|ok=0' "$WORK/c.out" | sed -e 's/^unavailable: //' -e 's/.*error="\([^"]*\)".*/\1/')
    echo "${why:-backup.c failed (see transcript)}"
}
vb_runs() {   # METHOD SOURCE-FOR-CHECKS SOURCE-FORMAT QIO-FORMAT QIO-TARGET
    local m=$1 csrc=$2 cfmt=$3 qfmt=$4 qtgt=$5 r F I1 I10 A p
    p=$([ "$m" = vb-off ] && echo o || echo n)     # checkpoints o<r>a.. / n<r>a..
    for r in $(seq 1 "$RUNS"); do
        F=$BK/$m-r$r-full.qcow2 I1=$BK/$m-r$r-inc1.qcow2 I10=$BK/$m-r$r-inc10.qcow2
        A=()
        [ "$WARMUP" = 1 ] && [ "$r" = 1 ] && A+=(full warmup "$BK/warmup.qcow2" - sh "rm -f $BK/warmup.qcow2")
        A+=(full full "$F" "$p${r}a")
        verify_run "$r" && A+=(sh "$self __check full '$csrc' $cfmt $F -")
        A+=(sh "$self __qio $qfmt '$qtgt' $DIRTY/p1-r$r.qio $(wc -l < "$DIRTY/p1-r$r.ext")")
        A+=(inc inc1 "$p${r}a" "$I1" "$p${r}b")
        verify_run "$r" && A+=(sh "$self __check inc1 '$csrc' $cfmt $I1 $F")
        A+=(sh "$self __qio $qfmt '$qtgt' $DIRTY/p10-r$r.qio $(wc -l < "$DIRTY/p10-r$r.ext")")
        A+=(inc inc10 "$p${r}b" "$I10" "$p${r}c")
        verify_run "$r" && A+=(sh "$self __check inc10 '$csrc' $cfmt $I10 $I1")
        A+=(cpdelete "$p${r}c" cpdelete "$p${r}b" cpdelete "$p${r}a")
        vb_c "$m" "$r" "${A[@]}"; local rc=$?
        rm -f "$F" "$I1" "$I10" "$BK/warmup.qcow2"; sync
        if [ $rc != 0 ] || grep -q 'dirty ok=0' "$WORK/c.out"; then
            addnote "virbackup ($m): not available: $(vb_reason)"
            return 1
        fi
    done
}

VBIMG=$IMG/vb.qcow2
if [ "$SKIP_VB" = 0 ]; then
    say "9. virbackup: $VB_LIB/libvirt.so.0"
    VB_OK=1
    if [ ! -f "$VB_LIB/libvirt.so.0" ]; then
        addnote "virbackup: not available: no $VB_LIB/libvirt.so.0 (build it first)"; VB_OK=0
    else
        # Work on a snapshot of the library: the repository may be rebuilt while this runs,
        # and every backup.c run is a new process that would load whatever is there then.
        note "virbackup library: $(readlink -f "$VB_LIB/libvirt.so.0"), $(stat -L -c '%s bytes, modified %y' "$VB_LIB/libvirt.so.0"), sha256 $(sha256sum < "$VB_LIB/libvirt.so.0" | cut -c1-16)"
        mkdir -p "$WORK/vblib"; cp -L "$VB_LIB/libvirt.so.0" "$WORK/vblib/libvirt.so.0"
        VB_LIB=$WORK/vblib
        lddout=$(LD_LIBRARY_PATH=$VB_LIB ldd "$BACKUP" | grep libvirt)
        printf '$ LD_LIBRARY_PATH=%s ldd %s | grep libvirt\n%s\n' "$VB_LIB" "$BACKUP" "$lddout"
        if ! grep -q "libvirt.so.0 => $VB_LIB/libvirt.so.0" <<< "$lddout"; then
            addnote "virbackup: not available: the loader does not pick $VB_LIB/libvirt.so.0"; VB_OK=0
        elif ! grep -q ' virDomainBackupBegin' <<< "$(nm -D --defined-only "$VB_LIB/libvirt.so.0")"; then
            addnote "virbackup: not available: its libvirt.so.0 does not export virDomainBackupBegin"; VB_OK=0
        fi
    fi
    if [ "$VB_OK" = 1 ]; then
        t0=$(now_us); cp "$SRC" "$VBIMG"; sync; note "copied the source to $VBIMG in $(ms_between "$t0" "$(now_us)") ms"
        cat > "$XD/vbdomain.xml" <<EOF
<domain type='kvm'>
  <name>$VBDOM</name>
  <memory unit='MiB'>128</memory>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$VBIMG'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
        if ! vb_c - 0 define "$XD/vbdomain.xml"; then
            addnote "virbackup: not available: $(vb_reason)"; VB_OK=0
        fi
    fi
    if [ "$VB_OK" = 1 ]; then
        say "10. virbackup, shut-off domain: $RUNS runs"
        vb_runs vb-off "$VBIMG" qcow2 qcow2 "$VBIMG"
        say "11. virbackup, running domain: $RUNS runs"
        DISKFILE=$VBROOT/run/qemu/$VBDOM/disks/vda
        if vb_c - 0 start && [ -f "$DISKFILE" ]; then
            vb_runs vb-run "$DISKFILE" raw raw "$DISKFILE"
            vb_c - 0 destroy
        else
            addnote "virbackup (vb-run): not available: the domain did not start or $DISKFILE is missing"
            vb_c - 0 destroy >/dev/null
        fi
        vb_c - 0 undefine
    fi
    rm -f "$VBIMG"; sync
fi

########################################################################################
say "SUMMARY"
T_END=$(now_us)
med() {   # METHOD CASE COLUMN(4=wall 5=sync 6=elapsed 8=event; "ws" = wall+sync)
    [ -f "$RES" ] || { echo NA; return; }
    awk -v m="$1" -v c="$2" -v k="$3" 'BEGIN{OFMT="%.1f"} $1==m && $2==c { v = (k=="ws") ? $4+$5 : $k; if (v != "NA") print v }' "$RES" | median
}
runs_of() { [ -f "$RES" ] && awk -v m="$1" -v c="$2" -v k="$3" 'BEGIN{OFMT="%.1f"} $1==m && $2==c { v = (k=="ws") ? $4+$5 : $k; printf "%s ", v }' "$RES"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="NA" || b=="NA" || b==0) print "NA"; else printf "%.2f", a/b }'; }

echo "host: $(nproc) CPUs, $(uname -r); load average at start: $LOAD0, at end: $(cut -d' ' -f1-3 /proc/loadavg) (per phase: the ######## headers)"
echo "image: ${SIZE_MIB} MiB qcow2 of random data; dirty 1 % = $((DIRTY1 / 1048576)) MiB, 10 % = $((DIRTY10 / 1048576)) MiB in 64 KiB-1 MiB extents"
echo "runs: $RUNS per case; page cache: $([ "$COLD" = 1 ] && echo "dropped before every timed operation (cold)" || echo "warm (sync before every timed operation, nothing dropped)")"
echo "times in ms, medians (each run in brackets further down)"
echo
echo "Table 1: wall time until the job is no longer active"
printf '%-8s %10s %11s %9s %10s %10s\n' case "lv wall" "lv elapsed" "lv-C wall" "vb-run" "vb-off"
for c in full inc1 inc10; do
    printf '%-8s %10s %11s %9s %10s %10s\n' "$c" "$(med lv-virsh "$c" 4)" "$(med lv-virsh "$c" 6)" \
        "$(med lv-c "$c" 4)" "$(med vb-run "$c" 4)" "$(med vb-off "$c" 4)"
done
echo
echo "Table 2: wall time + sync right after (data on disk), and libvirt's elapsed as seen by backup.c"
printf '%-8s %10s %10s %12s %10s %10s\n' case "lv+sync" "lv-C+sync" "lv-C elapsed" "vb-run+s" "vb-off+s"
for c in full inc1 inc10; do
    printf '%-8s %10s %10s %12s %10s %10s\n' "$c" "$(med lv-virsh "$c" ws)" "$(med lv-c "$c" ws)" "$(med lv-c "$c" 6)" \
        "$(med vb-run "$c" ws)" "$(med vb-off "$c" ws)"
done
echo
echo "Ratios (target: libvirt / virbackup > 1 in every case)"
echo "  libvirt is taken as lv-C (same program and polling as virbackup); lv = the virsh session"
printf '%-8s %12s %12s %12s %12s\n' case "lvC/vb-run" "lvC/vb-off" "lv/vb-run" "lv/vb-off"
for c in full inc1 inc10; do
    printf '%-8s %12s %12s %12s %12s\n' "$c" \
        "$(ratio "$(med lv-c "$c" 4)" "$(med vb-run "$c" 4)")" "$(ratio "$(med lv-c "$c" 4)" "$(med vb-off "$c" 4)")" \
        "$(ratio "$(med lv-virsh "$c" 4)" "$(med vb-run "$c" 4)")" "$(ratio "$(med lv-virsh "$c" 4)" "$(med vb-off "$c" 4)")"
done
echo
verdict() {   # RATIO OP LIMIT  ->  met / MISSED / n/a
    awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN{ if (r=="NA") print "n/a"; else if ((op=="<=" && r<=l) || (op==">" && r>l)) print "met"; else print "MISSED" }'
}
echo "Targets:"
for v in vb-run vb-off; do
    for c in full inc1 inc10; do
        r=$(ratio "$(med lv-c "$c" 4)" "$(med "$v" "$c" 4)"); r2=$(ratio "$(med lv-virsh "$c" 4)" "$(med "$v" "$c" 4)")
        printf '  %-7s %-5s faster than libvirt: %s (libvirt C / %s = %s; libvirt virsh / %s = %s)\n' "$v" "$c" "$(verdict "$r" ">" 1)" "$v" "$r" "$v" "$r2"
    done
done
echo
echo "Each run (wall ms; wall+sync ms; elapsed ms; event ms for backup.c):"
for m in lv-virsh lv-c vb-off vb-run; do
    for c in full inc1 inc10; do
        w=$(runs_of "$m" "$c" 4); [ -n "$w" ] || continue
        printf '  %-8s %-5s wall [ %s]  +sync [ %s]  elapsed [ %s]  event [ %s]\n' "$m" "$c" "$w" "$(runs_of "$m" "$c" ws)" "$(runs_of "$m" "$c" 6)" "$(runs_of "$m" "$c" 8)"
    done
done
echo
echo "Checks (restore = full <- inc1 <- inc10 rebased and compared; bytes = processed count):"
if [ -f "$CHK" ]; then
    awk '{k=$1" "$3; n[k]++; if ($4=="ok") ok[k]++; else bad[k]=bad[k] " run" $2 ": " $0 "\n"} END{for (k in n) printf "  %-22s %d/%d ok\n%s", k, ok[k]+0, n[k], bad[k]}' "$CHK" | sort
else
    echo "  (none)"
fi
FAILS=$(grep -c ' FAIL' "$CHK" 2>/dev/null); FAILS=${FAILS:-0}
if [ -f "$NOTES" ]; then echo; echo "Notes:"; sed 's/^/  /' "$NOTES"; fi
echo
echo "total run time: $(awk -v a="$T_START" -v b="$T_END" 'BEGIN{printf "%.0f", (b-a)/1e6}') s"
[ "$FAILS" = 0 ] || { echo "$FAILS check(s) FAILED"; exit 1; }
exit 0
