#!/usr/bin/env bash
# Fetch a Debian kernel image and the few modules the nested KVM guest needs into a cache dir.
#
# Usage: tests/nested/fetch-kernel.sh [CACHE_DIR]
#   CACHE_DIR defaults to ${VCPUD_CACHE_DIR:-/var/cache/vcpud}/nested.
#
# Result (read by run-in-nested.sh):
#   CACHE_DIR/current              -> name of the kernel release in use, e.g. 6.1.0-57-amd64
#   CACHE_DIR/<release>/vmlinuz
#   CACHE_DIR/<release>/modules/*.ko   (uncompressed)
#   CACHE_DIR/<release>/modules.load   (module names, in an order that satisfies dependencies)
#
# Installing linux-image-amd64 would pull ~400 MB of modules and rebuild an initramfs; we only
# need vmlinuz and ~14 modules, so the package is downloaded and unpacked, never installed.
# Silent (exit 0) when a complete kernel is already cached; it does not look for updates then,
# so CI does not depend on the package index once the cache is filled.
set -euo pipefail

cache=${1:-${VCPUD_CACHE_DIR:-/var/cache/vcpud}/nested}

# The roots of what the guest needs: kvm-amd (TCG's `-cpu max` exposes SVM, never VMX),
# virtio-pci transport, and 9p over virtio. Their dependencies are read from the modules.
roots=(kvm-amd virtio_pci 9pnet_virtio 9p)

die() { echo "fetch-kernel: $*" >&2; exit 1; }

complete() {
    local rel=$1 dir=$cache/$1 m
    [[ -s $dir/vmlinuz && -s $dir/modules.load ]] || return 1
    while read -r m; do
        [[ -s $dir/modules/$m.ko ]] || return 1
    done <"$dir/modules.load"
    [[ -n $rel ]]
}

if [[ -s $cache/current ]] && complete "$(<"$cache/current")"; then
    exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    die "needs apt-get and dpkg-deb (a Debian host) to obtain the kernel"
fi

# The metapackage names the versioned image package (linux-image-<abi>-amd64) it pulls in.
lookup() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
pkg=$(lookup)
if [[ -z $pkg ]]; then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null || die "apt-get update failed"
    pkg=$(lookup)
fi
[[ -n $pkg ]] || die "cannot find which linux-image package linux-image-amd64 depends on"

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetch-kernel: downloading $pkg into $cache" >&2
# Sandbox::User=root: the _apt user cannot write into a root-owned temp dir, which only
# produces a warning, but the warning would look like a failure in CI logs.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
    die "apt-get download $pkg failed"
deb=$(echo "$work"/*.deb)
[[ -f $deb ]] || die "apt-get download $pkg produced no .deb"

mkdir "$work/x"
dpkg-deb -x "$deb" "$work/x"
rm -f "$deb"

vmlinuz=$(echo "$work"/x/boot/vmlinuz-*)
[[ -f $vmlinuz ]] || die "$pkg has no /boot/vmlinuz-*"
rel=${vmlinuz##*/vmlinuz-}
moddir=$work/x/lib/modules/$rel
[[ -d $moddir ]] || die "$pkg has no /lib/modules/$rel"

# Module file by name; kbuild treats '-' and '_' in module names as the same.
declare -A file_of=()
while IFS= read -r -d '' f; do
    n=${f##*/}; n=${n%%.ko*}
    file_of[${n//-/_}]=$f
done < <(find "$moddir" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) -print0)

out=$work/out
mkdir -p "$out/modules"

# Busybox insmod takes plain .ko only, and the dependency list lives in the uncompressed
# .modinfo section, so every module is stored decompressed.
unpack() {
    local src=$1 dst=$2
    case $src in
        *.ko) cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" 2>/dev/null || busybox unxz -c "$src" >"$dst" ;;
        *.ko.zst) zstd -qdc "$src" >"$dst" ;;
        *.ko.gz) gzip -dc "$src" >"$dst" ;;
    esac
}

# Depth-first walk over `depends=` (what `modinfo -F depends` prints; kmod may not be
# installed, and busybox modinfo insists on the running kernel's modules.dep), emitting
# each module after its dependencies so the list is a valid insmod order.
declare -A state=()
order=()
visit() {
    local key=${1//-/_} deps d
    case ${state[$key]:-} in
        visited) return ;;
        busy) die "module dependency cycle at $1" ;;
    esac
    state[$key]=busy
    [[ -n ${file_of[$key]:-} ]] || die "module $1 not found in $pkg"
    unpack "${file_of[$key]}" "$out/modules/$1.ko"
    deps=$(tr '\0' '\n' <"$out/modules/$1.ko" | sed -n 's/^depends=//p' | head -n1)
    IFS=, read -r -a deps <<<"$deps"
    for d in "${deps[@]}"; do
        [[ -n $d ]] && visit "$d"
    done
    state[$key]=visited
    order+=("$1")
}
for r in "${roots[@]}"; do visit "$r"; done

cp "$vmlinuz" "$out/vmlinuz"
printf '%s\n' "${order[@]}" >"$out/modules.load"

# Move into place whole so a reader never sees a half-filled release dir; if a concurrent
# fetch got there first (mv -T refuses a non-empty target), use its copy.
rm -rf "${cache:?}/$rel"
if ! mv -T "$out" "$cache/$rel" 2>/dev/null; then
    complete "$rel" || die "cannot install $cache/$rel"
fi
echo "$rel" >"$work/current"
mv "$work/current" "$cache/current"
echo "fetch-kernel: cached $rel (${#order[@]} modules: ${order[*]})" >&2
