#!/usr/bin/env bash
# Builds a ferrokms release: the binary on its own and a Debian package
# (docs/deployment.md, "Installing").
#
#   bash scripts/release.sh [--binary FILE] [--out DIR] [--compression xz|gzip|none]
#
#   --binary FILE   package this binary instead of building one. Without it
#                   the script runs `cargo build --release --locked --bin
#                   ferrokms` (fat LTO: ~5 minutes on 2 cores).
#                   tests/e2e/test_package.py passes the debug binary the
#                   test run already built, to test the packaging without a
#                   release build.
#   --out DIR       where the results go (default: dist/ in cargo's
#                   target dir).
#   --compression   of the .deb's data (default xz, as Debian's archive;
#                   gzip and none are faster to build).
#
# Results in the out dir:
#   ferrokms-VERSION-linux-ARCH      the binary, debug info stripped
#   ferrokms_VERSION-REV_DEBARCH.deb /usr/bin/ferrokms, the systemd unit,
#                                    /etc/ferrokms/ferrokms.toml (a conffile),
#                                    maintainer scripts (packaging/debian/)
#   SHA256SUMS
#
# The binary links glibc dynamically (there is no musl target on the build
# machines, docs/deployment.md): the script reads the newest GLIBC_x.y
# symbol version it needs (objdump -T), prints it, refuses a binary that
# needs a newer glibc than GLIBC_FLOOR (the floor the docs promise: raise
# both together), and writes it into the package's libc6 dependency.
# Every shared library the binary needs must be in LIBRARIES below.
#
# Needs: objdump, strip (binutils), dpkg-deb, gzip, sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest glibc symbol version the binary may need; stated in
# docs/deployment.md ("Installing"), checked by tests/e2e/test_package.py.
GLIBC_FLOOR=2.34
# The shared libraries the binary may need, and the Debian packages that
# provide them.
declare -A LIBRARIES=(
    [libc.so.6]=libc6
    [libm.so.6]=libc6
    [libgcc_s.so.1]=libgcc-s1
    [ld-linux-x86-64.so.2]=libc6
    [ld-linux-aarch64.so.1]=libc6
)

die() {
    echo "release.sh: $*" >&2
    exit 1
}
usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

binary=""
out=""
compression=xz
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
    --binary=*) binary="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --compression) compression="${2:?--compression needs xz, gzip or none}"; shift 2 ;;
    --compression=*) compression="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "release.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$compression" in
xz | gzip | none) ;;
*) die "--compression: xz, gzip or none, not '$compression'" ;;
esac
for tool in objdump strip dpkg-deb gzip sha256sum; do
    command -v "$tool" >/dev/null || die "needs $tool (binutils, dpkg, gzip, coreutils)"
done

target_dir=$(cargo metadata --format-version 1 --no-deps --offline 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || true
[ -n "$target_dir" ] || target_dir="${CARGO_TARGET_DIR:-target}"
if [ -z "$binary" ]; then
    echo "==> cargo build --release --locked --bin ferrokms"
    cargo build --release --locked --bin ferrokms
    binary="$target_dir/release/ferrokms"
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "$binary is not an executable file"
out="${out:-$target_dir/dist}"
mkdir -p "$out"

# --- what the binary is -------------------------------------------------

version=$("$binary" --version | sed -n 's/^ferrokms \([0-9][0-9A-Za-z.+~-]*\)$/\1/p')
[ -n "$version" ] || die "$binary --version does not print 'ferrokms VERSION'"

case "$(objdump -f "$binary" | sed -n 's/^architecture: \([^,]*\),.*/\1/p')" in
i386:x86-64) arch=x86_64 debarch=amd64 ;;
aarch64) arch=aarch64 debarch=arm64 ;;
*) die "$binary: not an x86-64 or aarch64 ELF executable" ;;
esac

# The changelog's newest entry names the package version: upstream version
# (the binary's) and Debian revision.
changelog=packaging/debian/changelog
debversion=$(sed -n '1s/^ferrokms (\([^)]*\)) .*/\1/p' "$changelog")
[ "${debversion%-*}" = "$version" ] ||
    die "$changelog starts with version '$debversion', the binary is $version: add an entry for $version-1"
maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$changelog" | head -1)
[ -n "$maintainer" ] || die "$changelog: no maintainer line in its newest entry"

# glibc: the newest symbol version, against the promised floor.
glibc=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
[ -n "$glibc" ] || die "$binary: no GLIBC_ symbol versions (not a glibc binary?)"
if [ "$(printf '%s\n%s\n' "$glibc" "$GLIBC_FLOOR" | sort -V | tail -1)" != "$GLIBC_FLOOR" ]; then
    objdump -T "$binary" | grep "GLIBC_$glibc" | sed 's/^/    /' >&2
    die "$binary needs glibc $glibc, newer than GLIBC_FLOOR=$GLIBC_FLOOR (the symbols above): raise GLIBC_FLOOR here and in docs/deployment.md if that is meant"
fi
echo "glibc floor: $glibc (the newest GLIBC_ symbol version $binary needs; promised: <= $GLIBC_FLOOR)"

declare -A depends=([libc6]="libc6 (>= $glibc)")
for lib in $(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }'); do
    package="${LIBRARIES[$lib]:-}"
    [ -n "$package" ] || die "$binary needs $lib, which LIBRARIES in $0 does not map to a Debian package"
    [ -n "${depends[$package]:-}" ] || depends[$package]="$package"
done
echo "shared libraries: $(objdump -p "$binary" | awk '$1 == "NEEDED" { printf "%s ", $2 }')"

# --- the stand-alone binary ---------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/ferrokms-release.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Debug info off (it is most of the size); the symbol table stays, so
# profilers and backtraces still name functions.
strip --strip-debug -o "$work/ferrokms" "$binary"
chmod 0755 "$work/ferrokms"
plain="ferrokms-$version-linux-$arch"
cp "$work/ferrokms" "$out/$plain"

# --- the Debian package -------------------------------------------------

root="$work/root"
doc="$root/usr/share/doc/ferrokms"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
    "$root/etc/ferrokms" "$doc"
install -m 0755 "$work/ferrokms" "$root/usr/bin/ferrokms"
install -m 0644 packaging/debian/ferrokms.service "$root/lib/systemd/system/ferrokms.service"
install -m 0644 packaging/debian/ferrokms.toml "$root/etc/ferrokms/ferrokms.toml"
install -m 0644 packaging/debian/copyright "$doc/copyright"
gzip -9n <"$changelog" >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"
# The guides, compressed as Debian policy asks of documentation over 4 kB.
for page in README.md docs/deployment.md docs/operations.md docs/identity.md \
    docs/authorization.md docs/audit.md docs/keys.md; do
    gzip -9n <"$page" >"$doc/$(basename "$page").gz"
    chmod 0644 "$doc/$(basename "$page").gz"
done
for script in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/ferrokms/ferrokms.toml >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

depends_line=$(printf '%s\n' "${depends[@]}" | sort | paste -sd, - | sed 's/,/, /g')
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: ferrokms
Version: $debversion
Architecture: $debarch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: adduser, $depends_line
Section: admin
Priority: optional
Description: key management service speaking the AWS KMS API
 ferrokms is a self-hostable key management service that speaks the AWS
 KMS, IAM and STS APIs on one HTTP endpoint, so the AWS CLI and SDKs work
 against it unchanged. This package runs it as the systemd service
 ferrokms.service (user ferrokms, data in /var/lib/ferrokms, config in
 /etc/ferrokms/ferrokms.toml, listening on 127.0.0.1:7300). It is not
 started at install: see /usr/share/doc/ferrokms/deployment.md.gz.
EOF
chmod 0644 "$root/DEBIAN/control"

deb="ferrokms_${debversion}_${debarch}.deb"
# The archive's timestamps: the changelog's date, so that the same inputs
# give the same package.
SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' "$changelog" | head -1)" +%s) \
    dpkg-deb --root-owner-group -Z"$compression" --build "$root" "$out/$deb" >/dev/null

(cd "$out" && sha256sum "$plain" "$deb" >SHA256SUMS)
echo "binary:  $out/$plain"
echo "package: $out/$deb"
echo "depends: adduser, $depends_line"
