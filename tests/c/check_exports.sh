#!/bin/sh
# The shared library exports exactly the functions the public headers declare, nothing
# else; and every declared function that returns a zen_status_t is ZEN_NODISCARD.
# Usage: check_exports.sh libzen_crdt.so include/zen_crdt.h include/zen_crdt_sim.h
set -eu
lib=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/exported"
# Declarations without comments, one per line.
grep -hvE '^[[:space:]]*(//|/\*|\*|#)' "$@" | tr '\n' ' ' | tr ';' '\n' | grep 'ZEN_API' >"$tmp/decls"
sed -E 's/^[^(]*[^[:alnum:]_]([[:alnum:]_]+)[[:space:]]*\(.*/\1/' "$tmp/decls" | sort -u >"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
  echo "exported symbols (+) differ from the headers' functions (-):" >&2
  grep -E '^[-+][a-z_]' "$tmp/diff" >&2
  exit 1
fi
missing=$(grep -E 'zen_status_t[[:space:]]+zen_' "$tmp/decls" | grep -v 'ZEN_NODISCARD' || true)
if [ -n "$missing" ]; then
  echo "functions returning zen_status_t without ZEN_NODISCARD:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "$(wc -l <"$tmp/exported") exported functions, all declared; every status is ZEN_NODISCARD"
