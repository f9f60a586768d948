#!/usr/bin/env bash
# checkpoints.sh: run bench/checkpoints.c against the system libvirt and against virbackup's
# libvirt.so.0, and compare them phase by phase.
#
# Usage:
#   bench/checkpoints.sh [--lib DIR] [--ns "1000 10000"] [--runs K] [--max-run-seconds S] [DIR]
#
#   DIR / --lib DIR        directory holding virbackup's libvirt.so.0
#                          (default: $VIRBACKUP_LIB_DIR, else <repo>/build)
#   --ns LIST              the N values (default: $BENCH_NS, else "1000 10000")
#   --runs K               runs per configuration; the median of each phase is reported
#                          (default: $BENCH_RUNS, else 3)
#   --max-run-seconds S    a single run predicted to take longer than this is run with a
#                          smaller N instead, and the report says so
#                          (default: $BENCH_MAX_RUN_SECONDS, else 600)
#
# The program is compiled once, against the system libvirt.  The same binary is then run in
# two configurations:
#   libvirt    LD_LIBRARY_PATH removed, so the dynamic loader picks the system libvirt.so.0;
#   virbackup  LD_LIBRARY_PATH=DIR, so it picks DIR/libvirt.so.0.
# Both are checked twice: with ldd before running, and with the "library=" line the program
# prints (the file that really provided virDomainCheckpointCreateXML at run time).
#
# Every run is a separate process, so every run starts from an empty checkpoint tree and its
# peak RSS is its own.  Progress goes to stderr, the result tables to stdout.
#
# Keeping runs bounded: before running a configuration at a larger N, the script predicts how
# long one run will take from the numbers it already has.  It first assumes the worst
# plausible growth (quadratic); if that already fits under the limit it just runs.  Otherwise
# it makes one probe run at twice the previous N, measures how fast each phase really grows,
# and extrapolates with that.  A prediction above the limit makes the script pick the largest
# N that fits (rounded down to a tenth of N's leading power of ten, e.g. 9000, 8000, ... for
# N=10000) and print clearly that N was reduced.  Each run is also killed after twice the
# limit as a last resort.
#
# Works from any directory; needs bash, gcc, awk, ldd, nm, timeout (coreutils) and the libvirt
# development files.  Nothing in the repository is modified; build products go to a
# temporary directory that is removed at exit.

set -euo pipefail
trap 'echo "checkpoints.sh: unexpected failure at line $LINENO" >&2' ERR

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
repo_dir=$(dirname "$script_dir")
src="$script_dir/checkpoints.c"

vb_dir=${VIRBACKUP_LIB_DIR:-$repo_dir/build}
ns=${BENCH_NS:-1000 10000}
runs=${BENCH_RUNS:-3}
max_run=${BENCH_MAX_RUN_SECONDS:-600}
cc=${CC:-gcc}

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

while [ $# -gt 0 ]; do
    case "$1" in
    --lib) vb_dir=$2; shift 2 ;;
    --ns) ns=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --max-run-seconds) max_run=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "checkpoints.sh: unknown option $1" >&2; exit 2 ;;
    *) vb_dir=$1; shift ;;
    esac
done

is_uint() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
for n in $ns; do
    is_uint "$n" && [ "$n" -ge 1 ] || { echo "checkpoints.sh: bad N '$n'" >&2; exit 2; }
done
is_uint "$runs" && [ "$runs" -ge 1 ] || { echo "checkpoints.sh: bad --runs '$runs'" >&2; exit 2; }
is_uint "$max_run" && [ "$max_run" -ge 1 ] || { echo "checkpoints.sh: bad --max-run-seconds '$max_run'" >&2; exit 2; }
# The N values are processed in increasing order (the run-time predictions rely on it).
ns=$(printf '%s\n' $ns | sort -n -u | tr '\n' ' ')
[ -n "$ns" ] || { echo "checkpoints.sh: no N given" >&2; exit 2; }

for tool in "$cc" awk ldd nm timeout; do
    command -v "$tool" >/dev/null || { echo "checkpoints.sh: '$tool' not found" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/checkpoints-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin="$work/checkpoints"

say() { printf '%s\n' "$*" >&2; }

# ---- build -----------------------------------------------------------------------------

say "== building $src against the system libvirt"
# pkg-config only contributes include flags when it knows libvirt; -lvirt is what matters.
cflags=$(pkg-config --cflags libvirt 2>/dev/null || true)
# shellcheck disable=SC2086
"$cc" -O2 -Wall -Wextra $cflags -o "$bin" "$src" -lvirt

# ---- which libvirt.so.0 does each configuration load? ---------------------------------

# Print the file ldd resolves libvirt.so.0 to under the given environment (run via env).
# awk reads all its input (no early exit) so ldd never dies of SIGPIPE under pipefail.
ldd_libvirt() {
    { env "$@" ldd "$bin" 2>&1 || true; } | awk '$1 == "libvirt.so.0" && $2 == "=>" && !found { print $3; found = 1 }'
}

sys_lib=$(ldd_libvirt -u LD_LIBRARY_PATH)
if [ -z "$sys_lib" ] || [ "$sys_lib" = "not" ]; then
    say "checkpoints.sh: the system libvirt.so.0 was not found by the loader"
    exit 1
fi
sys_lib_real=$(readlink -f "$sys_lib")
say "   libvirt   : $sys_lib ($sys_lib_real)"

vb_ok=1
vb_reason=""
vb_lib="$vb_dir/libvirt.so.0"
if [ ! -e "$vb_lib" ]; then
    vb_ok=0
    vb_reason="virbackup library not built (no $vb_lib)"
else
    vb_lib_real=$(readlink -f "$vb_lib" || echo "$vb_lib")
    vb_ldd=$(env LD_LIBRARY_PATH="$vb_dir" ldd "$bin" 2>&1 || true)
    got=$(ldd_libvirt LD_LIBRARY_PATH="$vb_dir")
    if [ -z "$got" ] || [ "$(readlink -f "$got" 2>/dev/null)" != "$vb_lib_real" ]; then
        vb_ok=0
        vb_reason="with LD_LIBRARY_PATH=$vb_dir, ldd resolves libvirt.so.0 to '${got:-nothing}', not $vb_lib"
    elif [ "$vb_lib_real" = "$sys_lib_real" ]; then
        vb_ok=0
        vb_reason="$vb_lib is the system libvirt itself"
    else
        # Every libvirt symbol the benchmark imports must be defined by virbackup's library;
        # otherwise the loader would refuse to start it (or fail at the first call).
        missing=$(comm -23 \
            <(nm -D --undefined-only "$bin" | awk '{ sub(/@.*/, "", $2); print $2 }' | grep '^vir' | sort -u) \
            <(nm -D --defined-only "$vb_lib_real" | awk '{ sub(/@.*/, "", $3); print $3 }' | sort -u))
        if [ -n "$missing" ]; then
            vb_ok=0
            vb_reason="virbackup library at $vb_lib does not export: $(echo $missing)"
        elif printf '%s\n' "$vb_ldd" | grep -q 'not found'; then
            vb_ok=0
            vb_reason="ldd reports problems with $vb_lib: $(printf '%s\n' "$vb_ldd" | grep 'not found' | head -3 | tr '\n' ' ')"
        fi
    fi
fi
if [ "$vb_ok" = 1 ]; then
    say "   virbackup : $vb_lib ($vb_lib_real)"
    libs="libvirt virbackup"
else
    say "   virbackup : $vb_reason"
    libs="libvirt"
fi

# Other work on the machine skews the numbers; record how busy it was.
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
say "   load average at start: $load_start (CPUs: $(nproc 2>/dev/null || echo '?'))"

# ---- running ---------------------------------------------------------------------------

# run_once LIB N OUTFILE: one process; fails (returns 1) on a non-zero exit, a timeout, or
# when the program reports having loaded a different library than intended.
run_once() {
    local lib=$1 n=$2 out=$3 rc=0 loaded want
    if [ "$lib" = libvirt ]; then
        timeout --kill-after=10 "$((max_run * 2))" env -u LD_LIBRARY_PATH "$bin" "$n" >"$out" 2>"$out.err" || rc=$?
        want=$sys_lib_real
    else
        # The library may be rebuilt while the benchmark runs; note which build each run used.
        sha256sum "$vb_lib_real" 2>/dev/null | cut -d' ' -f1 >>"$work/vb-builds"
        timeout --kill-after=10 "$((max_run * 2))" env LD_LIBRARY_PATH="$vb_dir" "$bin" "$n" >"$out" 2>"$out.err" || rc=$?
        want=$vb_lib_real
    fi
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        say "   !! $lib N=$n: killed after $((max_run * 2)) s"
        return 1
    fi
    if [ "$rc" != 0 ]; then
        say "   !! $lib N=$n: exit status $rc"
        sed 's/^/      /' "$out.err" | head -20 >&2
        return 1
    fi
    loaded=$(awk -F= '$1 == "library" { print $2; exit }' "$out")
    if [ "$(readlink -f "$loaded" 2>/dev/null)" != "$want" ]; then
        say "   !! $lib N=$n: the program loaded '$loaded', expected $want"
        return 1
    fi
    return 0
}

# medians FILES...: print "phase median_seconds median_per_op_us" per phase (in the order the
# program prints them) and "peak_rss_kb median" last.
medians() {
    awk '
        /^N=/ {
            for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            if ("phase" in f) {
                p = f["phase"]
                if (!(p in cnt)) order[++np] = p
                cnt[p]++; sec[p, cnt[p]] = f["seconds"]; pop[p, cnt[p]] = f["per_op_us"]
            } else if ("peak_rss_kb" in f) {
                rss[++nr] = f["peak_rss_kb"]
            }
            delete f
        }
        function med(arr, key, n,    i, j, t, v) {
            for (i = 1; i <= n; i++) v[i] = (key == "" ? arr[i] : arr[key, i]) + 0
            for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
            return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }
        END {
            for (k = 1; k <= np; k++) { p = order[k]; printf "%s %.6f %.3f\n", p, med(sec, p, cnt[p]), med(pop, p, cnt[p]) }
            if (nr) printf "peak_rss_kb %d\n", med(rss, "", nr)
        }' "$@"
}

# predict PREV_MEDIANS N_PREV N [PROBE_MEDIANS N_PROBE]: predicted seconds for one run at N.
# Without a probe every phase is assumed to grow quadratically from N_PREV.  With a probe
# each phase grows with the exponent seen between N_PREV and N_PROBE, clamped to [1, 3] so
# that noise in tiny phases cannot make the estimate optimistic.
predict() {
    awk -v n0="$2" -v n="$3" -v n1="${5:-0}" '
        FNR == 1 { file++ }
        $1 == "peak_rss_kb" { next }
        file == 1 { t0[$1] = $2; order[++np] = $1 }
        file == 2 { t1[$1] = $2 }
        END {
            total = 0
            for (k = 1; k <= np; k++) {
                p = order[k]
                if (n1 > 0) {
                    e = (t0[p] > 0 && t1[p] > 0) ? log(t1[p] / t0[p]) / log(n1 / n0) : 1
                    if (e < 1) e = 1; if (e > 3) e = 3
                    total += t1[p] * (n / n1) ^ e
                } else {
                    total += t0[p] * (n / n0) ^ 2
                }
            }
            printf "%.1f\n", total
        }' "$1" ${4:+"$4"}
}

# round_step N: the step used when shrinking N, one tenth of N's leading power of ten
# (10000 -> 1000, 1000 -> 100), at least 1.
round_step() {
    awk -v n="$1" 'BEGIN { s = 1; while (s * 100 <= n) s *= 10; print s }'
}

# largest_fitting PREV_MEDIANS N_PREV PROBE_MEDIANS N_PROBE N: the largest N' <= N, a
# multiple of round_step(N), whose predicted run time is within the limit (at least N_PREV).
largest_fitting() {
    local step m
    step=$(round_step "$5")
    m=$(( $5 / step * step ))
    while [ "$m" -gt "$2" ]; do
        if awk -v p="$(predict "$1" "$2" "$m" "$3" "$4")" -v l="$max_run" 'BEGIN { exit !(p <= l) }'; then
            echo "$m"; return
        fi
        m=$((m - step))
    done
    echo "$2"
}

notes=""
note() { notes="$notes$*"$'\n'; say "   NOTE: $*"; }

for lib in $libs; do
    prev_n=""
    for n in $ns; do
        actual=$n
        if [ -n "$prev_n" ]; then
            prev_med="$work/$lib-$prev_n.med"
            # Worst-case guess first; only probe when the guess does not fit.
            guess=$(predict "$prev_med" "$prev_actual" "$n")
            if awk -v p="$guess" -v l="$max_run" 'BEGIN { exit !(p > l) }'; then
                probe_n=$((prev_actual * 2))
                if [ "$probe_n" -lt "$n" ]; then
                    say "== $lib: a run at N=$n could take up to ${guess}s if it grew quadratically; probing N=$probe_n once"
                    if run_once "$lib" "$probe_n" "$work/$lib-probe-$probe_n.out"; then
                        medians "$work/$lib-probe-$probe_n.out" >"$work/$lib-probe.med"
                        est=$(predict "$prev_med" "$prev_actual" "$n" "$work/$lib-probe.med" "$probe_n")
                        say "   predicted single run at N=$n: ${est}s"
                        if awk -v p="$est" -v l="$max_run" 'BEGIN { exit !(p > l) }'; then
                            actual=$(largest_fitting "$prev_med" "$prev_actual" "$work/$lib-probe.med" "$probe_n" "$n")
                        elif awk -v p="$est" 'BEGIN { exit !(p > 60) }'; then
                            note "$lib is slow at N=$n: about ${est}s per run predicted; measuring it anyway ($runs runs)"
                        fi
                    else
                        say "   probe failed; running N=$n without a prediction"
                    fi
                else
                    # No room for a probe: shrink N by the quadratic guess alone.
                    actual=$(awk -v p="$guess" -v l="$max_run" -v n0="$prev_actual" -v n="$n" -v s="$(round_step "$n")" \
                        'BEGIN { m = int(n * sqrt(l / p) / s) * s; if (m > n) m = n; if (m < n0) m = n0; print m }')
                fi
                if [ "$actual" -le "$prev_actual" ]; then
                    note "SKIPPED: $lib at N=$n: a run would exceed ${max_run}s even with N reduced; not measured"
                    echo skipped >"$work/$lib-$n.status"
                    continue
                elif [ "$actual" != "$n" ]; then
                    note "REDUCED: $lib at N=$n would exceed ${max_run}s per run; measured at N=$actual instead"
                fi
            fi
        fi

        say "== $lib N=$actual: $runs run(s)"
        outs=()
        failed=0
        for r in $(seq 1 "$runs"); do
            out="$work/$lib-$n-$r.out"
            start=$(date +%s.%N)
            if ! run_once "$lib" "$actual" "$out"; then failed=1; break; fi
            say "   run $r: $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s"
            outs+=("$out")
        done
        if [ "$failed" = 1 ]; then
            note "$lib N=$n FAILED; no numbers for it or any larger N (see the error above)"
            for m in $ns; do
                [ "$m" -lt "$n" ] || echo failed >"$work/$lib-$m.status"
            done
            break   # larger N would fail the same way
        fi
        medians "${outs[@]}" >"$work/$lib-$n.med"
        echo "$actual" >"$work/$lib-$n.actual"
        prev_n=$n
        prev_actual=$actual
    done
done

# ---- report ----------------------------------------------------------------------------

# value LIB N PHASE FIELD(2=seconds, 3=per_op_us): median from the .med file, or empty.
value() {
    local f="$work/$1-$2.med"
    [ -f "$f" ] && awk -v p="$3" -v c="$4" '$1 == p { print $c; exit }' "$f" || true
}
actual_n() { cat "$work/$1-$2.actual" 2>/dev/null || true; }

first_med=$(ls "$work"/libvirt-*.med "$work"/virbackup-*.med 2>/dev/null | grep -v probe | head -1 || true)
if [ -z "$first_med" ]; then
    echo "no configuration produced results"
    exit 1
fi
phases=$(awk '$1 != "peak_rss_kb" { print $1 }' "$first_med")

echo
echo "Checkpoint benchmark: median of $runs run(s) per configuration; test:///default, domain 'test'"
echo "libvirt   = $sys_lib_real"
if [ "$vb_ok" = 1 ]; then
    echo "virbackup = $vb_lib_real"
else
    echo "virbackup = $vb_reason"
fi
echo "list phases: per op = one list call (5 calls per run); other phases: per op = one checkpoint"
echo "load average: $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) at end ($(nproc 2>/dev/null || echo '?') CPUs)"
echo

# cell LIB N VALUE: what to show for one configuration.
cell() {
    if [ -n "$3" ]; then echo "$3"
    elif [ "$1" = virbackup ] && [ "$vb_ok" != 1 ]; then echo "not built"
    elif [ -f "$work/$1-$2.status" ]; then tr a-z A-Z <"$work/$1-$2.status"
    else echo "-"
    fi
}

printf '%-16s %-16s %13s %13s %12s %12s %12s\n' phase N "libvirt s" "virbackup s" "ratio lv/vb" "lv us/op" "vb us/op"
for n in $ns; do
    an_lv=$(actual_n libvirt "$n"); an_vb=$(actual_n virbackup "$n")
    nshow=$n
    [ -n "$an_lv" ] && [ "$an_lv" != "$n" ] && nshow="$nshow lv:$an_lv"
    [ -n "$an_vb" ] && [ "$an_vb" != "$n" ] && nshow="$nshow vb:$an_vb"
    for p in $phases peak_rss_kb; do
        lv=$(value libvirt "$n" "$p" 2); vb=$(value virbackup "$n" "$p" 2)
        label=$p
        [ "$p" = peak_rss_kb ] && label="peak RSS KiB"
        ratio="-"
        if [ -n "$lv" ] && [ -n "$vb" ]; then
            if [ "$an_lv" != "$an_vb" ]; then
                ratio="n/a"   # different N; compare the us/op columns instead
            else
                ratio=$(awk -v a="$lv" -v b="$vb" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
            fi
        fi
        lvop=""; vbop=""
        if [ "$p" != peak_rss_kb ]; then lvop=$(value libvirt "$n" "$p" 3); vbop=$(value virbackup "$n" "$p" 3); fi
        printf '%-16s %-16s %13s %13s %12s %12s %12s\n' "$label" "$nshow" "$(cell libvirt "$n" "$lv")" \
            "$(cell virbackup "$n" "$vb")" "$ratio" "${lvop:--}" "${vbop:--}"
    done
    echo
done

# Growth between consecutive N values: time ratio compared with the N ratio.  An exponent
# near 1 means linear, near 2 quadratic, near 0 constant.  Phases that take under 10 ms at
# the larger N are reported but not judged (timer noise and fixed costs dominate there).
set -- $ns
if [ $# -ge 2 ]; then
    echo "Growth in N (t(big N) / t(small N); linear growth gives the ratio of the N values)"
    printf '%-10s %-18s %11s %11s %11s %8s %9s  %s\n' library phase "N pair" "t small s" "t big s" ratio exponent verdict
    for lib in $libs; do
        ns_arr=($ns)
        for ((i = 0; i + 1 < ${#ns_arr[@]}; i++)); do
            a=${ns_arr[$i]}; b=${ns_arr[$((i + 1))]}
            na=$(actual_n "$lib" "$a"); nb=$(actual_n "$lib" "$b")
            [ -n "$na" ] && [ -n "$nb" ] && [ "$na" -lt "$nb" ] || continue
            for p in $phases; do
                ta=$(value "$lib" "$a" "$p" 2); tb=$(value "$lib" "$b" "$p" 2)
                awk -v lib="$lib" -v p="$p" -v na="$na" -v nb="$nb" -v ta="$ta" -v tb="$tb" 'BEGIN {
                    r = (ta > 0) ? tb / ta : 0
                    e = (ta > 0 && tb > 0) ? log(tb / ta) / log(nb / na) : 0
                    if (tb < 0.01) v = "too short to judge"
                    else if (e < 0.5) v = "about constant"
                    else if (e < 1.3) v = "linear"
                    else if (e < 1.7) v = "SUPERLINEAR"
                    else v = "QUADRATIC or worse"
                    printf "%-10s %-18s %11s %11.6f %11.6f %8.2f %9.2f  %s\n", lib, p, na "->" nb, ta, tb, r, e, v
                }'
            done
        done
    done
    echo
fi

# Phases that dominate a run: anything taking at least 5 s at some N.
slow=$(for lib in $libs; do for n in $ns; do
    f="$work/$lib-$n.med"; [ -f "$f" ] || continue
    awk -v lib="$lib" -v n="$(actual_n "$lib" "$n")" '$1 != "peak_rss_kb" && $2 >= 5 {
        printf "%s N=%s phase %s takes %.1f s (%.0f us per op)\n", lib, n, $1, $2, $3 }' "$f"
done; done)
if [ -n "$slow" ]; then
    echo "Slow phases (>= 5 s per run):"
    printf '%s\n' "$slow" | sed 's/^/  /'
    echo
fi
if [ -n "$notes" ]; then
    echo "Notes:"
    printf '%s' "$notes" | sed 's/^/  /'
    echo
fi
if [ "$vb_ok" != 1 ]; then
    echo "$vb_reason; only libvirt numbers are shown."
elif [ "$(sort -u "$work/vb-builds" 2>/dev/null | wc -l)" -gt 1 ]; then
    echo "WARNING: $vb_lib_real was rebuilt between virbackup runs; its numbers mix builds."
fi
