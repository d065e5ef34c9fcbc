#!/usr/bin/env bash
# The test command: installs the real servers the catalogue tests start
# (Debian packages and a pinned moto; a quick check when they are there),
# then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
exec cargo test --locked "$@"
