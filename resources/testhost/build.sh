#!/usr/bin/env bash
# usage: build.sh [BUILD_DIR]
# Builds the nested-KVM "test host" (L1) used by run.sh: a Debian cloud kernel
# booted by QEMU in pure software emulation (TCG) with emulated AMD SVM, whose
# own kvm-amd then gives the L1 userspace a working /dev/kvm.
#
# Outputs (nothing here is committed), in BUILD_DIR/testhost; BUILD_DIR is the
# argument (relative: to the cwd), else $BUILD_DIR, else "build" (both relative
# to the repo root):
#   vmlinux          ELF kernel extracted from the package's bzImage
#   modules/*.ko     irqbypass, kvm, kvm-amd (+ extras), decompressed
#   guest-modules/   virtio-mmio, virtio devices and vsock modules (+ order) for L2 Linux guests
#   base/            base initramfs tree: /init, /testhost/busybox, modules
#   base.cpio        base/ packed (newc, uncompressed: TCG decompresses slowly)
#   kvmcheck         static test program (kvmcheck.c)
#   tsc-khz          measures the host TSC frequency (tsc-khz.c), for run.sh
#   cache/           downloaded .debs and their extracted contents
#
# Idempotent: every step is skipped when its output is present and current.
# Needs root only to apt-get install missing host tools (Debian 12).
#
# Environment:
#   BUILD_DIR                 build directory when no argument is given
#   TESTHOST_KERNEL_PKG       kernel package (default: what linux-image-cloud-amd64
#                             depends on; once cached it is reused offline)
#   TESTHOST_EXTRA_MODULES    extra module names to ship (default: "tun")
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if (($#)); then build_dir=$(realpath -m -- "$1"); else build_dir=${BUILD_DIR:-build}; fi
[[ $build_dir == /* ]] || build_dir=$root/$build_dir
out=$build_dir/testhost
cache=$out/cache

log() { printf 'testhost/build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$out" "$cache"
# Serialise concurrent builds (parallel run.sh invocations share this tree).
exec 9>"$out/.lock"
flock 9

# --- host tools -------------------------------------------------------------
apt_updated=0
apt_update_once() {
    if [[ $apt_updated == 0 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
}

need_pkgs=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}
need dpkg-deb dpkg
need apt-get apt
need lz4 lz4
need xz xz-utils
need zstd zstd
need cpio cpio
need flock util-linux
need gcc gcc
need python3 python3   # run-ember.sh reads the JSON config
need mke2fs e2fsprogs  # tests/integration/linux-virtio: the guest's ext4 disk, checked in L1
need debugfs e2fsprogs
need qemu-system-x86_64 qemu-system-x86
[[ -e /usr/lib/x86_64-linux-gnu/libc.a || -e /usr/lib/libc.a ]] || need_pkgs+=(libc6-dev)
if ((${#need_pkgs[@]})); then
    [[ $(id -u) == 0 ]] || die "missing tools (${need_pkgs[*]}); install them or run as root"
    apt_update_once
    log "apt-get install ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# Fetch a .deb into the cache (never installed on the host) and extract it.
# Prints the extraction directory.
fetch_deb() { # fetch_deb PACKAGE
    local pkg=$1 dir=$cache/$1
    if [[ ! -e $dir/.extracted ]]; then
        local deb
        deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
        if [[ -z $deb ]]; then
            log "downloading $pkg"
            # apt-get download writes to the cwd (as root it warns that _apt
            # cannot write there; harmless). Retry once after apt-get update.
            (cd "$cache" && apt-get download -qq "$pkg" 2>/dev/null) ||
                { apt_update_once; (cd "$cache" && apt-get download -qq "$pkg" 2>&1 |
                    grep -v '^W: Download is performed unsandboxed' >&2 || true); }
            deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
            [[ -n $deb ]] || die "apt-get download $pkg produced no .deb"
        fi
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg-deb -x "$deb" "$dir"
        touch "$dir/.extracted"
    fi
    printf '%s\n' "$dir"
}

# --- kernel package ---------------------------------------------------------
kpkg=${TESTHOST_KERNEL_PKG:-}
if [[ -z $kpkg && -s $out/kernel.pkg ]]; then
    kpkg=$(<"$out/kernel.pkg")
fi
if [[ -z $kpkg ]]; then
    resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9.]*-[0-9]*-cloud-amd64\)$/\1/p' | head -n1; }
    kpkg=$(resolve)
    if [[ -z $kpkg ]]; then
        apt_update_once
        kpkg=$(resolve)
    fi
    [[ -n $kpkg ]] || die "cannot resolve linux-image-cloud-amd64 (set TESTHOST_KERNEL_PKG)"
fi
[[ $kpkg =~ ^linux-image-[0-9].*-amd64$ ]] || die "unexpected kernel package name: $kpkg"
kver=${kpkg#linux-image-}

# Outputs belong to one kernel; switching kernels rebuilds them.
if [[ ! -s $out/kernel.pkg || $(<"$out/kernel.pkg") != "$kpkg" ]]; then
    rm -rf "$out/vmlinux" "$out/modules" "$out/guest-modules" "$out/base" "$out/base.cpio"
fi

kdir=""
ensure_kdir() { [[ -n $kdir ]] || kdir=$(fetch_deb "$kpkg"); }

# --- vmlinux: the ELF inside the bzImage ------------------------------------
# bzImage layout (Documentation/arch/x86/boot.rst): setup_sects (u8 @0x1f1, 0
# means 4); the protected-mode part starts at (setup_sects+1)*512;
# payload_offset (u32 @0x248) and payload_length (u32 @0x24c) locate the
# compressed vmlinux relative to that start. QEMU microvm boots the ELF
# directly (PVH entry), skipping the in-guest decompressor that is slow under TCG.
u32le() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
u8() { od -An -t u1 -j "$2" -N 1 "$1" | tr -d ' '; }
if [[ ! -s $out/vmlinux ]]; then
    ensure_kdir
    bz=$kdir/boot/vmlinuz-$kver
    [[ -f $bz ]] || die "no $bz in $kpkg"
    [[ $(od -An -c -j 0x202 -N 4 "$bz" | tr -d ' ') == HdrS ]] || die "$bz: not a bzImage"
    sects=$(u8 "$bz" $((0x1f1)))
    ((sects == 0)) && sects=4
    poff=$(u32le "$bz" $((0x248)))
    plen=$(u32le "$bz" $((0x24c)))
    start=$(((sects + 1) * 512 + poff))
    magic=$(od -An -t x1 -j "$start" -N 6 "$bz" | tr -d ' \n')
    case $magic in
        02214c18*) dec=(lz4 -dc) ;;        # LZ4 legacy frame
        28b52ffd*) dec=(zstd -dc) ;;
        fd377a585a00) dec=(xz -dc) ;;
        1f8b*) dec=(gzip -dc) ;;
        425a68*) dec=(bzip2 -dc) ;;
        5d0000*) dec=(xz -dc --format=lzma) ;;
        *) die "$bz: unknown payload magic $magic" ;;
    esac
    log "extracting vmlinux from $(basename "$bz") (${dec[0]}, $plen bytes at $start)"
    # The kernel appends the decompressed size (4 bytes) to the payload; the
    # decompressors stop at the end of the stream and may complain about it.
    tail -c +$((start + 1)) "$bz" | head -c "$plen" | "${dec[@]}" >"$out/vmlinux.tmp" 2>/dev/null || true
    [[ $(od -An -t x1 -N 4 "$out/vmlinux.tmp" | tr -d ' ') == 7f454c46 ]] ||
        die "decompressed payload is not an ELF file"
    mv "$out/vmlinux.tmp" "$out/vmlinux"
fi

# --- modules ----------------------------------------------------------------
# extract_modules DEST NAME...: copies each module and, first, its dependencies (from each
# module's own modinfo "depends=": the package ships no modules.dep, depmod runs at install time)
# into DEST, decompressed, and writes DEST/order, the load order.
extract_modules() {
    local dest=$1; shift
    ensure_kdir
    mkdir -p "$dest"
    local mroot=$kdir/lib/modules/$kver
    [[ -d $mroot ]] || mroot=$kdir/usr/lib/modules/$kver
    declare -A done_mod=()
    local order=()
    add_mod() {
        local m=$1 f dep
        [[ -n ${done_mod[$m]:-} ]] && return 0
        done_mod[$m]=1
        # Module names treat '-' and '_' alike (virtio_rng is virtio-rng.ko).
        f=$(find "$mroot/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \
            -o -name "${m//-/_}.ko" -o -name "${m//-/_}.ko.xz" -o -name "${m//-/_}.ko.zst" \
            -o -name "${m//_/-}.ko" -o -name "${m//_/-}.ko.xz" -o -name "${m//_/-}.ko.zst" \) | head -n1)
        [[ -n $f ]] || die "module $m not found in $kpkg"
        case $f in
            *.xz) xz -dc "$f" >"$dest/$m.ko.tmp" ;;
            *.zst) zstd -qdc "$f" >"$dest/$m.ko.tmp" ;;
            *.gz) gzip -dc "$f" >"$dest/$m.ko.tmp" ;;
            *) cp "$f" "$dest/$m.ko.tmp" ;;
        esac
        mv "$dest/$m.ko.tmp" "$dest/$m.ko"
        for dep in $(grep -ao 'depends=[-_a-z0-9,]*' "$dest/$m.ko" | head -n1 | sed 's/^depends=//' | tr ',' ' '); do
            add_mod "$dep"
        done
        order+=("$m")   # after its dependencies: load order
    }
    for m in "$@"; do add_mod "$m"; done
    printf '%s\n' "${order[@]}" >"$dest/order"
}

modules=(irqbypass kvm kvm-amd ${TESTHOST_EXTRA_MODULES-tun})
mod_missing=0
for m in "${modules[@]}"; do [[ -s $out/modules/$m.ko ]] || mod_missing=1; done
if [[ $mod_missing == 1 ]]; then
    extract_modules "$out/modules" "${modules[@]}"
    rm -rf "$out/base" "$out/base.cpio"
fi

# Modules for Linux guests (L2) of the same kernel, loaded by their initramfs
# (tests/integration/linux-virtio): the virtio-mmio transport and devices, and vsock.
guest_modules=(virtio_mmio virtio_blk virtio_net virtio_rng vsock vmw_vsock_virtio_transport_common
    vmw_vsock_virtio_transport)
gmod_missing=0
for m in "${guest_modules[@]}"; do [[ -s $out/guest-modules/$m.ko ]] || gmod_missing=1; done
if [[ $gmod_missing == 1 ]]; then
    log "extracting guest modules"
    extract_modules "$out/guest-modules" "${guest_modules[@]}"
fi

# --- busybox (static, from the cache: the host's busybox is left alone) -----
if [[ ! -x $out/busybox ]]; then
    bbdir=$(fetch_deb busybox-static)
    cp "$bbdir/bin/busybox" "$out/busybox"
    rm -rf "$out/base" "$out/base.cpio"
fi

# --- base initramfs tree ----------------------------------------------------
if [[ ! -s $out/base.cpio || $here/init -nt $out/base.cpio ]]; then
    log "assembling base initramfs"
    rm -rf "$out/base"
    b=$out/base
    mkdir -p "$b"/{testhost/bin,testhost/modules,bin,proc,sys,dev,tmp,run,root,etc}
    cp "$out/busybox" "$b/testhost/busybox"
    cp "$here/init" "$b/init"
    chmod 755 "$b/init" "$b/testhost/busybox"
    cp "$out/modules/"*.ko "$out/modules/order" "$b/testhost/modules/"
    ln -s /testhost/busybox "$b/bin/sh"
    # The kernel opens /dev/console before running /init; /init also reopens
    # it after mounting devtmpfs in case this node could not be created.
    mknod -m 600 "$b/dev/console" c 5 1 2>/dev/null || true
    (cd "$b" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out/base.cpio.tmp"
    mv "$out/base.cpio.tmp" "$out/base.cpio"
fi

# --- kvmcheck ---------------------------------------------------------------
if [[ ! -x $out/kvmcheck || $here/kvmcheck.c -nt $out/kvmcheck ]]; then
    log "compiling kvmcheck"
    gcc -std=c11 -O2 -Wall -Wextra -Werror -static -o "$out/kvmcheck" "$here/kvmcheck.c"
fi

if [[ ! -x $out/tsc-khz || $here/tsc-khz.c -nt $out/tsc-khz ]]; then
    gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$out/tsc-khz" "$here/tsc-khz.c"
fi

printf '%s\n' "$kpkg" >"$out/kernel.pkg"
