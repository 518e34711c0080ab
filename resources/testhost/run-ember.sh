#!/usr/bin/env bash
# Runs ember inside the nested-KVM test host: run-ember.sh ARGS...
# is "<BUILD_DIR>/bin/ember ARGS..." in L1 (see run.sh), shipping:
#   - <BUILD_DIR>/bin/ember and <BUILD_DIR>/guest (the guest images; with
#     EMBER_BIN=X/bin/ember, X/guest),
#   - files named by --config-file, --seccomp-filter and --metadata,
#   - from the config file: boot-source kernel_image_path / initrd_path and
#     drives[].path_on_host.
# ember runs in L1 with the host's current directory (created in L1), so the
# relative paths used by resources/examples/*.json ("build/guest/...") work
# when run from the repo root, as on the host. Parent directories of
# --api-sock, --log-path and --metrics-path are created.
#
# Environment: BUILD_DIR (as build.sh), EMBER_BIN (default <BUILD_DIR>/bin/ember),
# TESTHOST_RUN_OPTS (extra run.sh options, e.g. "--timeout 120 --timing").
# Exit status: ember's, or 124/125 as run.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build_dir=${BUILD_DIR:-build}
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
ember=${EMBER_BIN:-$build_dir/bin/ember}
[[ $ember == /* ]] || ember=$PWD/$ember
[[ -x $ember ]] || { echo "testhost/run-ember: no ember binary at $ember (build it first)" >&2; exit 125; }

abs() { [[ $1 == /* ]] && printf '%s\n' "$1" || printf '%s\n' "$PWD/$1"; }
files=(--file "$ember")
guest_dir=$(dirname "$(dirname "$ember")")/guest   # next to bin/ember
[[ -d $guest_dir ]] && files+=(--file "$guest_dir")
mkdirs=()
add_file() {
    local p
    p=$(abs "$1")
    [[ -e $p ]] || { echo "testhost/run-ember: $1 does not exist" >&2; exit 125; }
    files+=(--file "$p")
}

args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    a=${args[i]}
    val=""
    case $a in
        --*=*) opt=${a%%=*}; val=${a#*=} ;;
        *) opt=$a; ((i + 1 < ${#args[@]})) && val=${args[i + 1]} ;;
    esac
    case $opt in
        --config-file)
            add_file "$val"
            # Paths the config names: kernel, initrd, drive backing files.
            while IFS= read -r p; do
                [[ -n $p ]] && add_file "$p"
            done < <(python3 - "$(abs "$val")" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    cfg = json.load(f)
boot = cfg.get("boot-source") or {}
for key in ("kernel_image_path", "initrd_path"):
    if boot.get(key):
        print(boot[key])
for drive in cfg.get("drives") or []:
    if drive.get("path_on_host"):
        print(drive["path_on_host"])
PY
            )
            ;;
        --seccomp-filter | --metadata) add_file "$val" ;;
        --api-sock | --log-path | --metrics-path) mkdirs+=("$(dirname "$(abs "$val")")") ;;
    esac
done

# In L1: create the host cwd and output directories, cd, exec ember.
script='mkdir -p "$EMBER_CWD" '"${mkdirs[*]@Q}"' && cd "$EMBER_CWD" && unset EMBER_CWD && exec "$@"'
# shellcheck disable=SC2086 # TESTHOST_RUN_OPTS is a list of options
exec "$here/run.sh" ${TESTHOST_RUN_OPTS:-} "${files[@]}" --env "EMBER_CWD=$PWD" -- \
    /bin/sh -c "$script" ember "$ember" "$@"
