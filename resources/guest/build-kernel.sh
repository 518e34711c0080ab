#!/usr/bin/env bash
# Builds a minimal guest kernel for ember from Debian 12's linux-source-6.1 package: `make
# allnoconfig`, then microvm-x86_64-6.1.config merged on top, `make olddefconfig`, a check that
# every option of the fragment kept its value, and `make vmlinux bzImage`.
#   build-kernel.sh [OUT_DIR] [--config-only]
# OUT_DIR (default build/guest-kernel in the repo) receives vmlinux (ELF, PVH entry: what
# Firecracker boots), bzImage and the final .config. --config-only stops after the check (about
# a minute): the fragment is verified without compiling. The compile takes minutes to tens of
# minutes depending on the cores (make -j$(nproc)). Needs Debian 12; installs the build
# dependencies with apt-get when run as root. The source package is downloaded, never installed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/build/guest-kernel
config_only=0
for a in "$@"; do
  case $a in
    --config-only) config_only=1 ;;
    -*) echo "usage: build-kernel.sh [OUT_DIR] [--config-only]" >&2; exit 2 ;;
    *) out=$(realpath -m -- "$a") ;;
  esac
done
fragment=$here/microvm-x86_64-6.1.config
log() { printf 'guest-kernel: %s\n' "$*" >&2; }

# --- tools and source ------------------------------------------------------------------------
tools=(make gcc flex bison bc perl xz cpio)
missing=()
for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
[[ -e /usr/include/libelf.h ]] || missing+=(libelf-dev)
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { log "missing: ${missing[*]}; install them or run as root"; exit 1; }
  pkgs=(make gcc flex bison bc perl xz-utils cpio libelf-dev libssl-dev)
  log "apt-get install ${pkgs[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi

mkdir -p "$out/cache"
src=$out/linux-source
if [[ ! -f $src/Makefile ]]; then
  deb=$(ls "$out/cache"/linux-source-6.1_*.deb 2>/dev/null | head -n1 || true)
  if [[ -z $deb ]]; then
    log "downloading linux-source-6.1"
    (cd "$out/cache" && apt-get download -qq linux-source-6.1)
    deb=$(ls "$out/cache"/linux-source-6.1_*.deb | head -n1)
  fi
  rm -rf "$out/cache/pkg" "$src"
  dpkg-deb -x "$deb" "$out/cache/pkg"
  tarball=$(ls "$out/cache/pkg/usr/src"/linux-source-6.1*.tar.xz | head -n1)
  log "unpacking $(basename "$tarball")"
  mkdir -p "$src"
  tar -xJf "$tarball" -C "$src" --strip-components=1
  rm -rf "$out/cache/pkg"
fi

# --- configuration ---------------------------------------------------------------------------
log "allnoconfig + $(basename "$fragment") + olddefconfig"
make -C "$src" -s allnoconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" "$fragment" >/dev/null
make -C "$src" -s olddefconfig
# merge_config.sh only warns; a dependency that silently drops an option must fail the build.
bad=0
while IFS= read -r line; do
  case $line in
    CONFIG_*=n) opt=${line%=n}; grep -q "^$opt=" "$src/.config" && { log "$opt is set, wanted off"; bad=1; } ;;
    CONFIG_*=*) grep -qx "$line" "$src/.config" || { log "$line did not survive olddefconfig"; bad=1; } ;;
  esac
done < <(grep -E '^CONFIG_' "$fragment")
((bad == 0)) || exit 1
cp "$src/.config" "$out/config"
log "configuration checked: $out/config"
((config_only)) && exit 0

# --- build -----------------------------------------------------------------------------------
log "make -j$(nproc) vmlinux bzImage"
make -C "$src" -s -j"$(nproc)" vmlinux bzImage
cp "$src/vmlinux" "$out/vmlinux"
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
log "done: $out/vmlinux $out/bzImage"
