#!/bin/sh
# Builds a Python connector into a WebAssembly component for the world
# `connector` of wit/connector.wit, with componentize-py.
#
#   guest-sdk/python/build.sh APP_DIR OUT.wasm
#
# APP_DIR holds the app module (app.py by default, set APP_MODULE to change)
# and any other pure-Python modules it imports. The app, the SDK
# (sandport_sdk) and the bindings generated from wit/ are staged in a
# temporary build directory, so nothing is written into the source tree;
# set SANDPORT_PY_BUILD_DIR to keep that directory (e.g. to read the
# generated bindings).
#
# Needs componentize-py on PATH (pip install componentize-py==0.25.1), or
# set COMPONENTIZE_PY to its path.
set -eu

usage() {
    echo "usage: $0 APP_DIR OUT.wasm" >&2
    exit 2
}
[ $# -eq 2 ] || usage
app_dir=$1
out=$2
app_module=${APP_MODULE:-app}
cpy=${COMPONENTIZE_PY:-componentize-py}

here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$here/../../wit" && pwd)

[ -d "$app_dir" ] || { echo "$0: $app_dir is not a directory" >&2; exit 2; }
[ -f "$app_dir/$app_module.py" ] || [ -f "$app_dir/$app_module/__init__.py" ] || {
    echo "$0: no module $app_module in $app_dir (set APP_MODULE to its name)" >&2
    exit 2
}
command -v "$cpy" >/dev/null 2>&1 || {
    echo "$0: componentize-py not found; install it with: pip install componentize-py==0.25.1" >&2
    exit 2
}

if [ -n "${SANDPORT_PY_BUILD_DIR:-}" ]; then
    build=$SANDPORT_PY_BUILD_DIR
    rm -rf "$build/src" "$build/bindings"
    mkdir -p "$build"
else
    build=$(mktemp -d "${TMPDIR:-/tmp}/sandport-py-build.XXXXXX")
    trap 'rm -rf "$build"' EXIT INT TERM
fi

# Stage the sources: componentize-py bundles what is on its Python path and
# writes __pycache__ directories next to the modules it loads.
mkdir -p "$build/src"
(cd "$app_dir" && tar cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.wasm' .) |
    (cd "$build/src" && tar xf -)
(cd "$here" && tar cf - --exclude=__pycache__ --exclude='*.pyc' sandport_sdk) |
    (cd "$build/src" && tar xf -)

# The bindings (module wit_world) for reading and for tests off the wasm
# target; componentize-py generates its own copy while building.
"$cpy" -q -d "$wit" -w connector bindings "$build/bindings"

case $out in
    /*) ;;
    *) out=$(pwd)/$out ;;
esac
mkdir -p "$(dirname "$out")"

# The build runs the app's top level once (pre-initialisation), so a module
# that fails to import fails the build, not the first check.
"$cpy" -q -d "$wit" -w connector componentize -p "$build/src" -o "$out" "$app_module"
echo "built $out ($(wc -c <"$out" | tr -d ' ') bytes)"
