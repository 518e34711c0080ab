#!/usr/bin/env bash
# Runs COMMAND inside the nested-KVM test host (L1): a Linux guest under QEMU
# TCG (software emulation) with emulated AMD SVM, whose kvm-amd provides a
# working /dev/kvm. For machines whose own /dev/kvm is unusable (CI).
#
# usage: run.sh [options] --payload-dir DIR --cmd "SHELL COMMAND"
#        run.sh [options] -- COMMAND [ARGS...]
#   --payload-dir DIR  copy DIR's contents to /payload in L1
#   --cmd STRING     run STRING with /bin/sh -c in /payload (busybox sh)
#   -- COMMAND ARGS  run COMMAND directly (no shell), in /
#   --timeout SECS   kill L1 after SECS (default 90, boot included); exit 124
#   --build-dir DIR  build directory (default $BUILD_DIR, else build in the repo)
#   --env NAME=VALUE set an environment variable for COMMAND (repeatable)
#   --file PATH      ship an absolute host PATH into L1 at the same path;
#                    directories recursively, a symlink as its target's
#                    content (repeatable). Shared libraries of
#                    every ELF shipped (and the dynamic loader) are added.
#   --mem MIB        L1 memory (default 2048; everything shipped lives in RAM)
#   --timing         print a timing summary on stderr
#   --verbose        show the full L1 console (kernel log) on stderr
#
# COMMAND runs as root with stdin from /dev/null; its stdout and stderr
# (merged, through the serial console) are copied to this script's stdout.
# If COMMAND is an absolute path it is shipped automatically.
#
# Exit status: COMMAND's exit status; 124 on timeout; 125 when L1 has no
# /dev/kvm or the test host itself failed (build, boot, crash before exit).
# QEMU's own stderr is kept out of the way and shown only when L1 fails.
#
# Environment: BUILD_DIR (as build.sh), TESTHOST_TSC_KHZ (host TSC kHz if it
# cannot be detected), TESTHOST_QEMU (QEMU binary), TESTHOST_CPU (QEMU -cpu),
# TESTHOST_APPEND (extra L1 kernel command line).
set -uo pipefail
shopt -s lastpipe

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build_dir=${BUILD_DIR:-build}   # relative: to the repo root

usage() { sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2; exit 125; }
die() { printf 'testhost/run: error: %s\n' "$*" >&2; exit 125; }

timeout_s=90
payload_dir=""
cmd_string=""
have_cmd=0
mem=2048
timing=0
verbose=0
envs=()
files=()
while (($#)); do
    case $1 in
        --timeout) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--timeout needs seconds"; timeout_s=$2; shift 2 ;;
        --env) [[ ${2:-} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
        --file) [[ ${2:-} == /* ]] || die "--file needs an absolute path"; files+=("$2"); shift 2 ;;
        --mem) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--mem needs MiB"; mem=$2; shift 2 ;;
        --build-dir) [[ -n ${2:-} ]] || die "--build-dir needs a directory"; build_dir=$(realpath -m -- "$2"); shift 2 ;;
        --payload-dir) [[ -d ${2:-} ]] || die "--payload-dir needs a directory"; payload_dir=$(cd "$2" && pwd); shift 2 ;;
        --cmd) [[ -n ${2:-} ]] || die "--cmd needs a command"; cmd_string=$2; have_cmd=1; shift 2 ;;
        --timing) timing=1; shift ;;
        --verbose) verbose=1; shift ;;
        --) shift; break ;;
        -h | --help) usage ;;
        *) die "unknown option $1 (COMMAND goes after --)" ;;
    esac
done
if ((have_cmd)); then
    (($# == 0)) || die "give either --cmd STRING or -- COMMAND ARGS, not both"
else
    (($#)) || usage
fi
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
out=$build_dir/testhost

t_start=$EPOCHREALTIME
"$here/build.sh" "$build_dir" || die "build.sh failed"
# Ship an absolute COMMAND unless the base tree has it (/bin/sh is busybox).
((have_cmd)) || { [[ $1 == /* && -e $1 && ! -e $out/base$1 && ! -L $out/base$1 ]] && files+=("$1"); }

# --- host TSC frequency -----------------------------------------------------
# Under TCG the guest TSC is the host TSC. Without tsc_early_khz L1 has to
# calibrate against the emulated PIT, which fails or hangs most boots because
# TCG time runs unevenly ("Unable to calibrate against PIT").
tsc_khz() {
    local mhz
    if [[ -n ${TESTHOST_TSC_KHZ:-} ]]; then echo "$TESTHOST_TSC_KHZ"; return; fi
    if [[ -r /sys/devices/system/cpu/cpu0/tsc_freq_khz ]]; then cat /sys/devices/system/cpu/cpu0/tsc_freq_khz; return; fi
    mhz=$( (dmesg 2>/dev/null || journalctl -k -b 2>/dev/null) |
        sed -n -e 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p' \
            -e 's/.*tsc: Detected \([0-9.]*\) MHz.*/\1/p' | tail -n1)
    if [[ -z $mhz ]] && "$out/tsc-khz" 2>/dev/null; then return; fi
    [[ -n $mhz ]] || mhz=$(sed -n 's/^cpu MHz[[:space:]]*: \([0-9.]*\).*/\1/p' /proc/cpuinfo | head -n1)
    [[ -n $mhz ]] || return 1
    awk -v m="$mhz" 'BEGIN { printf "%d\n", m * 1000 }'
}
khz=$(tsc_khz) || die "cannot determine the host TSC frequency; set TESTHOST_TSC_KHZ"

# --- per-run initramfs: payload files, their libraries, the command --------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/testhost.XXXXXX") || die "mktemp failed"
qemu_pid=""
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
stage=$tmp/root
mkdir -p "$stage/testhost"

# cp --parents misbehaves in coreutils 9.1 (depends on the cwd), so by hand.
copy_into_stage() { # copy_into_stage PATH [cp options]: same absolute path
    local src=$1; shift
    mkdir -p "$stage$(dirname "$src")" || return 1
    if [[ -d $src ]]; then
        mkdir -p "$stage$src" && cp -a "$@" "$src/." "$stage$src/"
    else
        # A named symlink is shipped as the file it points to.
        cp -a -L "$@" "$src" "$stage$src"
    fi
}
is_elf() { # no subprocess: build trees can hold many files
    local magic=""
    [[ -f $1 ]] && LC_ALL=C read -r -N 4 magic <"$1" 2>/dev/null
    [[ $magic == $'\x7fELF' ]]
}
for f in "${files[@]}"; do
    [[ -e $f ]] || die "--file $f does not exist"
    copy_into_stage "$f" || die "cannot copy $f"
done
mkdir -p "$stage/payload"
if [[ -n $payload_dir ]]; then
    cp -a "$payload_dir/." "$stage/payload/" || die "cannot copy $payload_dir"
fi
# Libraries for every ELF shipped (executables, shared objects), from one ldd
# call; ldd skips what is not dynamic, e.g. a guest's static vmlinux.
elves=()
find "$stage" -path "$stage/testhost" -prune -o -type f -perm -u+x -print -o -type f -name '*.so*' -print |
    while IFS= read -r f; do
        is_elf "$f" && elves+=("$f")   # the staged copy: /payload exists only there
    done
declare -A shipped_lib=()
if ((${#elves[@]})); then
    ldd "${elves[@]}" 2>/dev/null | while read -r line; do
        case $line in
            *' => '/*) lib=${line#* => }; lib=${lib%% (*} ;;
            /*' ('*) lib=${line%% (*} ;;   # the dynamic loader
            *) continue ;;
        esac
        [[ -n ${shipped_lib[$lib]:-} || ! -e $lib || -e $stage$lib ]] && continue
        shipped_lib[$lib]=1
        copy_into_stage "$lib" || die "cannot copy $lib"
    done
fi
((${#shipped_lib[@]} == 0)) || { [[ -f /etc/ld.so.cache ]] && copy_into_stage /etc/ld.so.cache; }

nonce=$(od -An -N 6 -t x1 /dev/urandom | tr -d ' \n')
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
    echo "# generated by run.sh"
    for e in "${envs[@]}"; do printf 'export %s=%s\n' "${e%%=*}" "$(sq "${e#*=}")"; done
    if ((have_cmd)); then
        printf 'cd /payload || exit 125\nexec /bin/sh -c %s\n' "$(sq "$cmd_string")"
    else
        printf 'exec'
        for a in "$@"; do printf ' %s' "$(sq "$a")"; done
        printf '\n'
    fi
} >"$stage/testhost/cmd.sh"
printf 'NONCE=%s\nVERBOSE=%s\n' "$nonce" "$verbose" >"$stage/testhost/run.conf"

# The kernel unpacks concatenated newc archives in order; later entries win.
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/extra.cpio" ||
    die "cpio failed"
cat "$out/base.cpio" "$tmp/extra.cpio" >"$tmp/initrd.cpio"
rm -f "$tmp/extra.cpio"
t_packed=$EPOCHREALTIME

# --- boot L1 ----------------------------------------------------------------
# qemu64 + svm + npt: the cheapest CPU model that gives kvm-amd what it needs
# (-cpu max roughly halves L2 speed under TCG). One vCPU: more do not help.
# reboot=t + -no-reboot: L1's final "reboot -f" ends QEMU.
# cryptomgr.notests: the crypto self-tests cost ~230 ms of L1 boot under TCG
# (initcall_debug: crypto_algapi_init 230-270 ms, 3 ms without them).
cmdline="console=ttyS0 panic=-1 reboot=t tsc_early_khz=$khz tsc=reliable cryptomgr.notests"
((verbose)) || cmdline+=" quiet"
cmdline+=" ${TESTHOST_APPEND:-}"
qemu=(
    "${TESTHOST_QEMU:-qemu-system-x86_64}" -accel tcg -M microvm
    -cpu "${TESTHOST_CPU:-qemu64,+svm,+npt}" -smp 1 -m "$mem"
    -nodefaults -no-user-config -display none -serial stdio -monitor none -no-reboot
    -kernel "$out/vmlinux" -initrd "$tmp/initrd.cpio" -append "$cmdline"
)

M="TESTHOST-$nonce:"
state=boot     # boot -> running -> done
kvm=unknown
rc=""
t_begin="" t_exit=""
up_begin="" up_exit=""
prelog=()
timeout -k 5 "$timeout_s" "${qemu[@]}" </dev/null 2>"$tmp/qemu.err" |
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line%$'\r'}
        ((verbose)) && printf '%s\n' "$line" >&2
        case $state in
            boot)
                case $line in
                    *"$M kvm ok"*) kvm=ok ;;
                    *"$M nokvm"*) kvm=no ;;
                    *"$M begin "*) state=running; t_begin=$EPOCHREALTIME; up_begin=${line##* } ;;
                    *) ((${#prelog[@]} < 400)) && prelog+=("$line") ;;
                esac
                ;;
            running)
                if [[ $line == *"$M exit "* ]]; then
                    printf '%s' "${line%%"$M exit "*}"
                    read -r rc up_exit <<<"${line##*"$M exit "}"
                    t_exit=$EPOCHREALTIME
                    state=done
                else
                    printf '%s\n' "$line"
                fi
                ;;
        esac
    done
qemu_rc=${PIPESTATUS[0]}
t_end=$EPOCHREALTIME

ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) * 1000 }'; }
if ((timing)) && [[ -n $t_begin ]]; then
    {
        printf 'testhost: pack %s ms, L1 boot to command %s ms (L1 uptime %s s), command %s ms (L1 %s s), ' \
            "$(ms "$t_start" "$t_packed")" "$(ms "$t_packed" "$t_begin")" "$up_begin" \
            "$(ms "$t_begin" "${t_exit:-$t_end}")" \
            "$(awk -v a="$up_begin" -v b="${up_exit:-0}" 'BEGIN { printf "%.2f", b - a }')"
        printf 'shutdown %s ms, total %s ms\n' "$(ms "${t_exit:-$t_end}" "$t_end")" "$(ms "$t_start" "$t_end")"
    } >&2
fi

if [[ -n $rc ]]; then
    exit "$rc"
fi
dump_prelog() {
    ((verbose)) || printf '  | %s\n' "${prelog[@]}" >&2
    [[ -s $tmp/qemu.err ]] && { echo 'testhost/run: QEMU stderr:' >&2; sed 's/^/  | /' "$tmp/qemu.err" >&2; }
}
if ((qemu_rc == 124 || qemu_rc == 137)); then
    printf 'testhost/run: timed out after %s s (state: %s)\n' "$timeout_s" "$state" >&2
    [[ $state == boot ]] && dump_prelog
    exit 124
fi
if [[ $kvm == no ]]; then
    printf 'testhost/run: L1 has no /dev/kvm; L1 console:\n' >&2
    dump_prelog
    exit 125
fi
printf 'testhost/run: L1 ended without a result (QEMU status %s, state %s); L1 console:\n' "$qemu_rc" "$state" >&2
dump_prelog
exit 125
