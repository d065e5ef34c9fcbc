#!/usr/bin/env bash
# A profile-guided release build of `sandport` and `sandport-bench`
# (docs/performance.md, "Profile-guided optimisation"):
#   1. both built instrumented;
#   2. trained: the in-process check path at scale (bench part 3 over
#      `http` and `prometheus` connectors, without part 2's loop) and the
#      service as an operator runs it (`sandport serve` under gRPC load
#      with its scheduler busy, bench part 6, and its start with and
#      without the compiled-component cache, part 5), stopped with SIGTERM
#      so that it writes its profile;
#   3. rebuilt with the merged profile.
# Output: target/<host>/release/{sandport,sandport-bench}. The first run
# builds every crate twice (about 15 minutes each on 2 cores). Later runs
# rebuild the instrumented binaries incrementally, but every training
# gives a new profile, and a new profile rebuilds every crate.
#
# Needs the `llvm-tools` rustup component (installed here) and, for
# training, nothing beyond what the bench needs (no blackbox_exporter;
# about 2,600 open files, for 1,000 connectors).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add llvm-tools
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
# RUSTFLAGS for the target only, so that build scripts and proc macros
# (built for the host without --target) are neither instrumented nor
# rebuilt with every profile.
flags_var="CARGO_TARGET_$(echo "$host" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
work="$PWD/target/pgo"
packages=(-p sandport -p sandport-bench)

echo "== 1/3 instrumented build (target/pgo/gen)"
rm -rf "$work/raw"
env "$flags_var=-Cprofile-generate=$work/raw" \
    cargo build --locked --release "${packages[@]}" --target "$host" --target-dir "$work/gen"

echo "== 2/3 training"
# 1,000 connectors hold about 2,600 files open; the bench names the limit
# it needs if this cannot raise it.
ulimit -n 4096 2>/dev/null || true
gen="$work/gen/$host/release"
"$gen/sandport-bench" check-all --connectors 1000 --no-blackbox
"$gen/sandport-bench" check-all --connectors 1000 --no-blackbox --warm-rounds 20
"$gen/sandport-bench" check-all --connectors 1000 --no-blackbox --component prometheus
"$gen/sandport-bench" grpc --sandport "$gen/sandport" --seconds 3 --busy 2000
"$gen/sandport-bench" cold-start --sandport "$gen/sandport" --first-runs 1 --second-runs 2
# One raw profile per binary (named by the binary's signature): sandport
# writes its own only when it exits cleanly.
raw_count=$(find "$work/raw" -name '*.profraw' | wc -l)
if [ "$raw_count" -lt 2 ]; then
    echo "expected a raw profile from each of sandport and sandport-bench in $work/raw, found $raw_count" >&2
    exit 1
fi
"$profdata" merge -o "$work/merged.profdata" "$work/raw"

# cargo does not watch the profile's file, only the flags: a profile named
# by its content makes a new profile a new build, and the same one none.
sum=$(sha256sum "$work/merged.profdata" | cut -c1-16)
profile="$work/profile-$sum.profdata"
# Only the newest profile is kept (each is tens of MB).
find "$work" -maxdepth 1 -name 'profile-*.profdata' ! -name "profile-$sum.profdata" -delete
mv "$work/merged.profdata" "$profile"

echo "== 3/3 build with the profile ($profile)"
env "$flags_var=-Cprofile-use=$profile" \
    cargo build --locked --release "${packages[@]}" --target "$host"
echo "built: target/$host/release/sandport and target/$host/release/sandport-bench"
