#!/usr/bin/env bash
# Install what `make deploy-check` needs: a Python virtualenv in .tools/venv with the
# pinned packages of scripts/deploy-tools.txt (kubernetes-validate, dockerfile-parse, …),
# and systemd-analyze (Debian package `systemd`) when it is missing.
#
# Idempotent: the venv is rebuilt only when deploy-tools.txt changed.
# Env: NATS_TOOLS_DIR  install prefix (default <repo>/.tools); PYTHON (default python3)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${NATS_TOOLS_DIR:-$REPO_ROOT/.tools}"
VENV="$TOOLS_DIR/venv"
REQUIREMENTS="$REPO_ROOT/scripts/deploy-tools.txt"
STAMP="$VENV/.deploy-tools.sha256"
PYTHON="${PYTHON:-python3}"

die() {
    echo "install-deploy-tools: ERROR: $*" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else return 1; fi
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "install-deploy-tools: systemd-analyze missing; installing Debian package systemd"
    command -v apt-get >/dev/null 2>&1 || die "systemd-analyze is missing and apt-get is not available: install systemd"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
        || die "apt-get update failed (needed to install systemd for systemd-analyze)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd \
        || die "apt-get install systemd failed"
    command -v systemd-analyze >/dev/null 2>&1 || die "systemd installed but systemd-analyze is still missing"
fi

want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    echo "install-deploy-tools: $VENV up to date"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; it is needed for the deploy checks"
rm -rf "$VENV"
if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 ships venv separately.
    if command -v apt-get >/dev/null 2>&1; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv \
            || die "could not install python3-venv"
        rm -rf "$VENV"
        "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV failed"
    else
        die "$PYTHON -m venv failed; install the venv module"
    fi
fi
echo "install-deploy-tools: installing $(grep -c '==' "$REQUIREMENTS") pinned packages into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    --require-virtualenv -r "$REQUIREMENTS" \
    || die "pip install -r $REQUIREMENTS failed (no network to PyPI?)"
"$VENV/bin/python" -c "import kubernetes_validate, dockerfile_parse, jsonschema, yaml" \
    || die "the installed packages do not import"
echo "$want" >"$STAMP"
echo "install-deploy-tools: done ($("$VENV/bin/python" -m pip show kubernetes-validate | sed -n 's/^Version: /kubernetes-validate /p'))"
