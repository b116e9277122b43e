#!/usr/bin/env bash
# generate.sh: `deepc generate` and `deepc complete` end to end on the real stories260K model
# (the offline default model, ../shared/models/stories260K/hf, when --model is omitted) and the
# tiny GPT-2 fixture: greedy text, sampling reproducibility, stop strings, --json, streaming of
# non-ASCII text, and one-line errors for bad input.
# Usage: bash tests/cli/generate.sh /path/to/deepc /path/to/shared
set -u
DEEPC=$1
SHARED=$2
GPT2=tests/fixtures/llm/gpt2_tiny
ERR=/tmp/dc_gen_err.$$
fail=0
n=0
check() { # name expected actual
    n=$((n + 1))
    if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=$((fail + 1)); else echo "ok   $1"; fi
}
contains() { # name needle haystack
    n=$((n + 1))
    case "$3" in *"$2"*) echo "ok   $1" ;; *) echo "FAIL $1: [$2] not in [$3]"; fail=$((fail + 1)) ;; esac
}
[ -d "$SHARED/models/stories260K/hf" ] || { echo "FAIL: $SHARED/models/stories260K/hf is missing"; exit 1; }
# the default model is found relative to the repo root (CTest runs from there)
out=$("$DEEPC" generate --max-new-tokens 30 "Once upon a time")
contains greedy-default "Once upon a time, there was a little girl named Lily." "$out"
out2=$("$DEEPC" generate --model "$SHARED/models/stories260K/hf" --temperature 0 --max-new-tokens 30 "Once upon a time")
check temperature-0-is-greedy "$out" "$out2"
a=$("$DEEPC" generate --temperature 0.8 --top-k 40 --top-p 0.9 --seed 7 --max-new-tokens 40 "Once upon a time")
b=$("$DEEPC" generate --temperature 0.8 --top-k 40 --top-p 0.9 --seed 7 --max-new-tokens 40 "Once upon a time")
c=$("$DEEPC" generate --temperature 0.8 --top-k 40 --top-p 0.9 --seed 8 --max-new-tokens 40 "Once upon a time")
check seed-reproducible "$a" "$b"
n=$((n + 1)); if [ "$a" != "$c" ]; then echo "ok   seeds-differ"; else echo "FAIL seeds-differ"; fail=$((fail + 1)); fi
out=$("$DEEPC" generate --max-new-tokens 100 --stop "Lily" "Once upon a time")
check stop-string "Once upon a time, there was a little girl named Lily" "$out"
json=$("$DEEPC" generate --json --max-new-tokens 5 "Once upon a time")
contains json-text '"text":", there was a little"' "$json"
contains json-stop '"stop":"length"' "$json"
out=$("$DEEPC" generate --max-new-tokens 3 --repetition-penalty 1.3 --no-cache "Once upon a time")
contains no-cache "Once upon a time, there" "$out"
out=$(echo "Once upon a time" | "$DEEPC" generate --max-new-tokens 3 -)
contains stdin "Once upon a time, there" "$out"
out=$("$DEEPC" generate --max-new-tokens 12 "Émile a dit: «bonjour» — 你好")
contains non-ascii-prompt "Émile a dit: «bonjour» — 你好" "$out"
# stats
"$DEEPC" generate --stats --max-new-tokens 5 "Once" >/dev/null 2>$ERR
contains stats "tokens/s" "$(cat $ERR)"
# complete
out=$("$DEEPC" complete "Once upon a")
contains complete-word '"time"' "$out"
json=$("$DEEPC" complete --json --top-k 3 "Once upon a")
contains complete-json '{"tokens":[{"id":' "$json"
contains complete-json-word '"words":[{"text":"time","prob":' "$json"
# GPT-2 architecture (tiny random model): runs, an empty prompt starts from BOS
out=$("$DEEPC" generate --model $GPT2 --max-new-tokens 5 --greedy "Hello world")
contains gpt2 "Hello world" "$out"
"$DEEPC" generate --model $GPT2 --max-new-tokens 3 "" >/dev/null 2>$ERR
check gpt2-empty-prompt-rc 0 $?
# bad input: one-line errors, no crash
"$DEEPC" generate --model /nonexistent "hi" >/dev/null 2>$ERR
check missing-model-rc 1 $?
check missing-model-lines 1 "$(wc -l < $ERR)"
contains missing-model-msg "neither a model folder" "$(cat $ERR)"
"$DEEPC" generate "$(printf 'bad \xff utf8')" >/dev/null 2>$ERR
check bad-utf8-rc 1 $?
contains bad-utf8-msg "UTF-8" "$(cat $ERR)"
"$DEEPC" generate --model tests/fixtures/llm >/dev/null 2>$ERR hi
check not-a-model-rc 1 $?
long=$(python3 -c 'print("Hello world " * 60)')
"$DEEPC" generate --model $GPT2 --max-new-tokens 4 "$long" >/dev/null 2>$ERR
check long-prompt-rc 0 $?
contains long-prompt-warning "warning: the prompt" "$(cat $ERR)"
"$DEEPC" generate --top-p 2 hi >/dev/null 2>&1
check bad-flag-rc 2 $?
"$DEEPC" generate >/dev/null 2>&1
check no-text-rc 2 $?
rm -f $ERR
echo "$((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
