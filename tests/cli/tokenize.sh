#!/usr/bin/env bash
# tokenize.sh: `deepc tokenize` end to end: encode, --no-special, --json, decode, errors.
# Usage: bash tests/cli/tokenize.sh /path/to/deepc /path/to/shared
set -u
DEEPC=$1
M=$2/models
fail=0
check() { # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=$((fail + 1)); else echo "ok   $1"; fi
}
[ -f "$M/README.md" ] || { echo "FAIL: shared model files missing at $M"; exit 1; }
check gpt2 "15496 995" "$("$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer" "Hello world")"
check bart "0 31414 232 2" "$("$DEEPC" tokenize --tokenizer "$M/bart-tokenizer" "Hello world")"
check bart-no-special "31414 232" "$("$DEEPC" tokenize --tokenizer "$M/bart-tokenizer" --no-special "Hello world")"
check clip "49406 3306 1002 49407" "$("$DEEPC" tokenize --tokenizer "$M/clip-tokenizer/bpe_simple_vocab_16e6.txt.gz" "Hello world")"
check t5 "8774 296 1" "$("$DEEPC" tokenize --tokenizer "$M/t5-tokenizer" "Hello world")"
check two-texts "$(printf '15496\n995')" "$("$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer" Hello " world")"
check json '{"ids":[15496,995],"tokens":["Hello","Ġworld"]}' "$("$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer" --json "Hello world")"
check decode "Hello world" "$("$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer" --decode 15496 995)"
check decode-skip "Hello world" "$("$DEEPC" tokenize --tokenizer "$M/bart-tokenizer" --decode --skip-special 0 31414 232 2)"
check stdin "$(printf '15496\n995')" "$(printf 'Hello\n world\n' | "$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer")"
check llama "1 346 306" "$("$DEEPC" tokenize --tokenizer "$M/stories260K/tok512.model" "Hello world" | cut -d' ' -f1-3)"
"$DEEPC" tokenize --tokenizer "$M/gpt2-tokenizer" --decode 99999999 >/dev/null 2>/tmp/dc_tok_err.$$
check bad-id-rc 1 $?
grep -q "99999999" /tmp/dc_tok_err.$$; check bad-id-message 0 $?
"$DEEPC" tokenize --tokenizer /nonexistent/tok.json hi >/dev/null 2>/tmp/dc_tok_err.$$
check missing-rc 1 $?
grep -q "/nonexistent/tok.json" /tmp/dc_tok_err.$$; check missing-message 0 $?
"$DEEPC" tokenize hi >/dev/null 2>&1
check usage-rc 2 $?
rm -f /tmp/dc_tok_err.$$
echo "$(( 16 - fail )) passed, $fail failed"
[ "$fail" -eq 0 ]
