#!/usr/bin/env bash
# The Godot extension's checks that need no engine (no Godot 4 binary can be installed
# here): format and lints, the engine-free tests (conversions, the transport router and
# event translation on real contexts over the simulator), the release build for api-4-3,
# and the artifact checks (check_artifact.py). The demo and its GDScript tests need an
# engine: `godot --headless --path bindings/godot/demo -s res://tests/run.gd` (not run here).
set -euo pipefail
cd "$(dirname "$0")"
if cargo fmt --version >/dev/null 2>&1; then cargo fmt -- --check; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy --release --all-targets --quiet -- -D warnings; fi
out=$(cargo test --release 2>&1) || { echo "$out" >&2; exit 1; }
grep -E "^test |test result: ok. [1-9]" <<<"$out"
cargo build --release --quiet
python3 check_artifact.py target/release/libzen_crdt_godot.so
echo "bindings/godot: engine-free tests, release build and artifact checks passed (the GDScript tests need a Godot 4 engine: not run)"
