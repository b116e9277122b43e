#!/usr/bin/env bash
# summarize.sh: smoke test of `deepc summarize`: extractive (the default without --model) from a
# file and from standard input, --json; abstractive with the small full-vocabulary BART and T5
# fixtures (their folders plus ../shared tokenizers) giving exactly transformers' pipeline
# output; flag overrides, truncation warning, --chunk; and the bad inputs (one-line error,
# non-zero exit). Usage: bash tests/cli/summarize.sh /path/to/deepc /path/to/shared
set -u
DEEPC=${1:?usage: summarize.sh /path/to/deepc /path/to/shared}
SHARED=${2:?usage: summarize.sh /path/to/deepc /path/to/shared}
FIX=$(cd "$(dirname "$0")/../fixtures/summarize" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export DEEPC_PROGRESS=quiet DEEPC_NUM_THREADS=${DEEPC_NUM_THREADS:-2}
fails=0

ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

expect_fail() {
    local name=$1 pat=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
    if [ "$(wc -l <"$TMP/err")" -ne 1 ]; then bad "$name: expected one line of error, got: $(cat "$TMP/err")"; return; fi
    if ! grep -q -- "$pat" "$TMP/err"; then bad "$name: error '$(cat "$TMP/err")' lacks '$pat'"; return; fi
    ok "$name (rc $rc): $(cat "$TMP/err")"
}

cat >"$TMP/article.txt" <<'EOF'
The Eiffel Tower is a wrought-iron lattice tower in Paris. It is named after the engineer Gustave
Eiffel, whose company designed and built the tower. The tower was built for the 1889 World's Fair.
The tower is 330 metres tall, about the same height as an 81-storey building. The weather was mild.
It was the tallest man-made structure in the world until 1930, when the Chrysler Building was finished.
EOF

# ---- extractive ----
out=$("$DEEPC" summarize --sentences 2 "$TMP/article.txt" 2>&1)
if [ $? -eq 0 ] && echo "$out" | grep -q "tower" && ! echo "$out" | grep -q "weather"; then ok "extractive: $out"; else bad "extractive: $out"; fi
out2=$("$DEEPC" summarize --method extractive --sentences 2 - <"$TMP/article.txt" 2>&1)
[ "$out" = "$out2" ] && ok "extractive from stdin" || bad "extractive stdin: $out2"
out=$("$DEEPC" summarize --json "$TMP/article.txt" 2>&1)
echo "$out" | grep -Eq '^\{"summary":".+","tokens":[0-9]+,"seconds":[0-9.]+' && ok "extractive --json" || bad "extractive --json: $out"

# ---- abstractive: identical to transformers' pipeline("summarization") ----
mkdir -p "$TMP/bart" "$TMP/t5"
ln -s "$FIX"/bart_cli/* "$SHARED"/models/bart-tokenizer/vocab.json "$SHARED"/models/bart-tokenizer/merges.txt "$TMP/bart/"
ln -s "$FIX"/t5_cli/* "$SHARED"/models/t5-tokenizer/tokenizer.json "$SHARED"/models/t5-tokenizer/tokenizer_config.json "$TMP/t5/"
printf '%s' "$(cat "$FIX/cli_text.txt")" >"$TMP/text.txt" # the text without its newline, as the pipeline got it
for m in bart t5; do
    out=$("$DEEPC" summarize --model "$TMP/$m" "$TMP/text.txt" 2>"$TMP/err")
    exp=$(cat "$FIX/${m}_cli_expected.txt")
    [ "$out" = "$exp" ] && ok "$m = transformers: '$out'" || bad "$m: '$out' != '$exp' ($(cat "$TMP/err"))"
done
out=$("$DEEPC" summarize --model "$TMP/t5" --json --num-beams 3 --min-length 2 --max-length 6 --length-penalty 1 \
    --no-repeat-ngram-size 2 - <"$TMP/text.txt" 2>&1)
echo "$out" | grep -Eq '"tokens":[1-5],' && echo "$out" | grep -q '"method":"abstractive"' && ok "flags + --json: $out" || bad "flags: $out"
for i in $(seq 30); do cat "$TMP/text.txt"; printf ' '; done >"$TMP/long.txt"
"$DEEPC" summarize --model "$TMP/bart" "$TMP/long.txt" >"$TMP/out" 2>"$TMP/err"
[ $? -eq 0 ] && grep -q "truncated" "$TMP/err" && ok "long input: truncation warning" || bad "long input: $(cat "$TMP/err")"
out=$("$DEEPC" summarize --model "$TMP/bart" --chunk --json "$TMP/long.txt" 2>&1)
echo "$out" | grep -Eq '"chunks":([2-9]|[1-9][0-9])' && ok "--chunk" || bad "--chunk: $out"

# ---- bad input ----
: >"$TMP/empty.txt"
expect_fail "empty text" "empty" "$DEEPC" summarize "$TMP/empty.txt"
expect_fail "empty text (model)" "empty" "$DEEPC" summarize --model "$TMP/t5" "$TMP/empty.txt"
head -c 3000 /dev/urandom >"$TMP/bin.dat"
printf 'abc\0def' >>"$TMP/bin.dat"
expect_fail "binary input" "binary" "$DEEPC" summarize "$TMP/bin.dat"
mkdir -p "$TMP/nodec"
cp "$FIX/t5/config.json" "$TMP/nodec/"
expect_fail "folder without weights" "model.safetensors" "$DEEPC" summarize --model "$TMP/nodec" "$TMP/article.txt"
expect_fail "not a model" "neither a model folder" "$DEEPC" summarize --model "$TMP/none" "$TMP/article.txt"
expect_fail "missing file" "cannot open" "$DEEPC" summarize "$TMP/missing.txt"
expect_fail "abstractive without model" "needs --model" "$DEEPC" summarize --method abstractive "$TMP/article.txt"
expect_fail "bad flag value" "num-beams" "$DEEPC" summarize --num-beams 0 "$TMP/article.txt"
expect_fail "min > max" "greater than" "$DEEPC" summarize --min-length 9 --max-length 3 "$TMP/article.txt"
expect_fail "unknown flag" "unknown" "$DEEPC" summarize --frobnicate "$TMP/article.txt"

if [ $fails -eq 0 ]; then echo "summarize CLI: all passed"; else echo "summarize CLI: $fails failed"; fi
exit $((fails > 0))
