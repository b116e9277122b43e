#!/usr/bin/env bash
# seq2seq.sh: smoke test of `deepc seq2seq`: a tiny reverse run and a tiny dates run (train,
# eval --json, predict with its attention map) and the bad-input cases (one-line error,
# non-zero exit). Usage: bash tests/cli/seq2seq.sh /path/to/deepc /path/to/shared
set -u
DEEPC=${1:?usage: seq2seq.sh /path/to/deepc /path/to/shared}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export DEEPC_PROGRESS=quiet DEEPC_NUM_THREADS=${DEEPC_NUM_THREADS:-2}
fails=0

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# expect_fail NAME PATTERN CMD...: exits non-zero with a one-line error matching PATTERN
expect_fail() {
    local name=$1 pat=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
    if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then bad "$name: expected one line of error, got: $(cat "$TMP/err")"; return; fi
    if ! grep -q -- "$pat" "$TMP/err"; then bad "$name: error '$(cat "$TMP/err")' lacks '$pat'"; return; fi
    ok "$name (rc $rc): $(cat "$TMP/err")"
}

# ---- reverse: train, eval, predict ----
if "$DEEPC" seq2seq train --epochs 2 --train-size 256 --val-size 64 --hidden 16 --min-len 3 --max-len 6 \
    --seed 1 --out "$TMP/rev" >"$TMP/train.out" 2>"$TMP/train.err"; then
    ok "train reverse"
else
    bad "train reverse: $(tail -3 "$TMP/train.err")"
fi
for f in model.safetensors metrics.json loss.png loss.svg; do
    [ -s "$TMP/rev/$f" ] && ok "wrote $f" || bad "missing $f"
done
grep -q '"val_mse"' "$TMP/rev/metrics.json" && grep -q '"train_loss"' "$TMP/rev/metrics.json" &&
    grep -q '"seconds"' "$TMP/rev/metrics.json" && ok "metrics.json fields" || bad "metrics.json fields"
out=$("$DEEPC" seq2seq eval --weights "$TMP/rev/model.safetensors" --json 2>&1)
echo "$out" | grep -Eq '^\{"mse": [0-9.e-]+' && ok "eval --json: $out" || bad "eval --json: $out"
out=$("$DEEPC" seq2seq predict --weights "$TMP/rev/model.safetensors" 0.1 0.5 0.9 0.3 2>&1)
echo "$out" | grep -q "expected:   *0.3000 0.9000 0.5000 0.1000" && ok "predict prints expected" || bad "predict: $out"
[ -s "$TMP/rev/attention.png" ] && ok "attention.png" || bad "no attention.png"

# ---- dates: train, eval, predict ----
if "$DEEPC" seq2seq train --task dates --cell gru --attention additive --epochs 1 --train-size 128 \
    --val-size 16 --hidden 16 --beam 2 --teacher-forcing 1 --out "$TMP/dates" >"$TMP/dtrain.out" 2>"$TMP/dtrain.err"; then
    ok "train dates"
else
    bad "train dates: $(tail -3 "$TMP/dtrain.err")"
fi
grep -q '"val_exact_match"' "$TMP/dates/metrics.json" && ok "dates metrics" || bad "dates metrics"
out=$("$DEEPC" seq2seq eval --weights "$TMP/dates/model.safetensors" --json --beam 2 2>&1)
echo "$out" | grep -q '"exact_match"' && ok "dates eval --json: $out" || bad "dates eval: $out"
out=$("$DEEPC" seq2seq predict --weights "$TMP/dates/model.safetensors" --attention-out "$TMP/d.png" \
    the Twenty first of march nineteen ninety nine 2>&1)
echo "$out" | grep -q "expected:   1999-03-21" && [ -s "$TMP/d.png" ] && ok "dates predict" || bad "dates predict: $out"

# ---- bad input ----
W="$TMP/rev/model.safetensors"
expect_fail "unknown subcommand" "unknown subcommand" "$DEEPC" seq2seq bogus
expect_fail "empty sequence" "no input sequence" "$DEEPC" seq2seq predict --weights "$W"
expect_fail "non-numeric" "'abc' is not a number" "$DEEPC" seq2seq predict --weights "$W" 0.1 abc
expect_fail "nan value" "is not a number" "$DEEPC" seq2seq predict --weights "$W" 0.1 nan
expect_fail "over-long sequence" "at most 6" "$DEEPC" seq2seq predict --weights "$W" 1 2 3 4 5 6 7
expect_fail "unknown word" "not a word of the dates task" "$DEEPC" seq2seq predict \
    --weights "$TMP/dates/model.safetensors" march fifth nineteen eighty fourr
expect_fail "missing weights" "No such file\|cannot open\|not found\|open" "$DEEPC" seq2seq eval --weights "$TMP/none.safetensors"
printf 'not a safetensors file' >"$TMP/junk.safetensors"
expect_fail "junk weights" "junk.safetensors" "$DEEPC" seq2seq eval --weights "$TMP/junk.safetensors"
# a safetensors file of another model (no seq2seq metadata)
python3 - "$TMP/other.safetensors" <<'EOF' 2>/dev/null || printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' >"$TMP/other.safetensors"
import json, struct, sys
h = json.dumps({"fc.weight": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\0\0\0\0")
EOF
expect_fail "another model" "not a deepc seq2seq checkpoint" "$DEEPC" seq2seq eval --weights "$TMP/other.safetensors"
expect_fail "dates words to a reverse model" "not a number" "$DEEPC" seq2seq predict --weights "$W" march fifth
expect_fail "hidden out of range" "--hidden" "$DEEPC" seq2seq train --hidden 0 --out "$TMP/x"
expect_fail "teacher forcing out of range" "--teacher-forcing" "$DEEPC" seq2seq train --teacher-forcing 1.5 --out "$TMP/x"
expect_fail "min-len > max-len" "--min-len" "$DEEPC" seq2seq train --min-len 9 --max-len 3 --out "$TMP/x"
expect_fail "unknown cell" "--cell" "$DEEPC" seq2seq train --cell transformer --out "$TMP/x"
expect_fail "unknown attention" "--attention" "$DEEPC" seq2seq train --attention bahdanau --out "$TMP/x"
expect_fail "unknown task" "--task" "$DEEPC" seq2seq train --task translate --out "$TMP/x"
expect_fail "zero lr" "--lr" "$DEEPC" seq2seq train --lr 0 --out "$TMP/x"

if [ $fails -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all seq2seq CLI checks passed"
