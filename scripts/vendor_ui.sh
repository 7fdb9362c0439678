#!/usr/bin/env bash
# Re-fetch the dashboard's chart library from the npm registry at its pinned version, check
# the package's SHA-256 against the recorded one, and copy its browser files into
# health/web/static/vendor/uplot-<version>/ (then SHA256SUMS there lists every vendored file).
#
#   scripts/vendor_ui.sh          fetch, check, write the vendored files
#   scripts/vendor_ui.sh --check  fetch, check, and fail if the committed files differ
#
# Needs npm (it only downloads: `npm pack`, no install, no scripts run). The browser never
# fetches anything at run time: the node serves these files itself.
set -euo pipefail

NAME=uplot
VERSION=1.6.32
TARBALL_SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
FILES=(dist/uPlot.esm.js dist/uPlot.min.css LICENSE)

cd "$(dirname "$0")/.."
DEST="health/web/static/vendor/${NAME}-${VERSION}"
MODE="${1:-write}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent --ignore-scripts "${NAME}@${VERSION}" >/dev/null)
TARBALL="$WORK/${NAME}-${VERSION}.tgz"
GOT="$(sha256sum "$TARBALL" | cut -d' ' -f1)"
if [[ "$GOT" != "$TARBALL_SHA256" ]]; then
    echo "vendor_ui: ${NAME}@${VERSION} has SHA-256 $GOT, expected $TARBALL_SHA256" >&2
    exit 1
fi
tar -xzf "$TARBALL" -C "$WORK"

STAGE="$WORK/stage"
mkdir -p "$STAGE"
for file in "${FILES[@]}"; do
    cp "$WORK/package/$file" "$STAGE/$(basename "$file")"
done
(cd "$STAGE" && sha256sum -- * > SHA256SUMS)

case "$MODE" in
    --check)
        if ! diff -r "$STAGE" "$DEST" >/dev/null; then
            echo "vendor_ui: $DEST differs from ${NAME}@${VERSION} (run scripts/vendor_ui.sh)" >&2
            exit 1
        fi
        echo "vendor_ui: $DEST matches ${NAME}@${VERSION}"
        ;;
    write)
        rm -rf "$DEST"
        mkdir -p "$DEST"
        cp "$STAGE"/* "$DEST"/
        echo "vendor_ui: ${NAME}@${VERSION} written to $DEST"
        ;;
    *)
        echo "usage: scripts/vendor_ui.sh [--check]" >&2
        exit 2
        ;;
esac
