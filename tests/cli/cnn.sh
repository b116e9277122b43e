#!/usr/bin/env bash
# cnn.sh: the CNN commands end to end: models, train (LeNet-5, 1 epoch of MNIST, >= 97.5%),
# eval --json, predict, checkpoint + resume equal to an uninterrupted run, compare, and the
# one-line errors for bad input. Called by CTest as: bash cnn.sh DEEPC SHARED_DIR
# With DEEPC_TEST_QUICK=1 (the sanitizer build) training runs on a 3000-image subset and the
# accuracy bar is not checked (the Release run checks it).
set -uo pipefail
DEEPC=$1; SHARED=$2
DATA="$SHARED/data"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0; passes=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*"; }
# expect_error NAME PATTERN CMD...: non-zero exit, one line on stderr matching PATTERN
expect_error() {
  local name=$1 pat=$2; shift 2
  local err rc
  err=$("$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ $rc -ge 128 ]; then bad "$name: crashed (exit $rc): $err"; return; fi
  if [ "$(printf '%s\n' "$err" | grep -c .)" -ne 1 ]; then bad "$name: expected one line, got: $err"; return; fi
  if ! printf '%s' "$err" | grep -qiE -- "$pat"; then bad "$name: '$err' does not match '$pat'"; return; fi
  ok "$name ($err)"
}
if [ ! -d "$DATA/mnist" ]; then echo "FAIL: MNIST not found in $DATA/mnist (../shared beside the checkout)"; exit 1; fi
if [ "${DEEPC_TEST_QUICK:-0}" = 1 ]; then SUB=(--max-train 3000 --val-size 500 --max-test 500); else SUB=(); fi

# ---- models
"$DEEPC" models > "$T/models.txt" && grep -q "resnet20 *269434" "$T/models.txt" && ok "models" || bad "models: $(cat "$T/models.txt")"

# ---- train 1 epoch
if "$DEEPC" train --model lenet5 --dataset mnist --data-dir "$DATA" --epochs 1 "${SUB[@]}" --out "$T/run" 2> "$T/train.log"; then
  for f in model.safetensors metrics.json history.csv loss.png loss.svg accuracy.png confusion.png; do
    [ -s "$T/run/$f" ] && ok "train wrote $f" || bad "train did not write $f"
  done
  for k in model dataset epochs train_seconds images_per_second peak_rss_mb history train_loss val_loss val_accuracy seconds test loss accuracy precision recall f1 per_class confusion support; do
    grep -q "\"$k\"" "$T/run/metrics.json" && ok "metrics.json has $k" || bad "metrics.json lacks $k"
  done
  acc=$(tr -d ' \n\t' < "$T/run/metrics.json" | sed -n 's/.*"test":{"loss":[^,]*,"accuracy":\([0-9.eE+-]*\).*/\1/p')
  echo "test accuracy after 1 epoch: $acc"
  if [ "${DEEPC_TEST_QUICK:-0}" != 1 ]; then
    awk -v a="$acc" 'BEGIN{exit !(a >= 0.975)}' && ok "1 epoch of MNIST: accuracy $acc >= 0.975" || bad "1 epoch of MNIST: accuracy $acc < 0.975"
  fi
  # eval --json gives the same accuracy as training reported
  ev=$("$DEEPC" eval --model lenet5 --weights "$T/run/model.safetensors" --data-dir "$DATA" "${SUB[@]:4:2}" --json 2>&1)
  eacc=$(printf '%s' "$ev" | tr -d ' \n\t' | sed -n 's/^{"loss":[^,]*,"accuracy":\([0-9.eE+-]*\).*/\1/p')
  [ -n "$eacc" ] && [ "$eacc" = "$acc" ] && ok "eval --json accuracy $eacc" || bad "eval --json: '$ev' vs $acc"
  # predict a real test digit written as PGM (the first test image is a 7)
  { printf 'P5\n28 28\n255\n'; gzip -dc "$DATA/mnist/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c 784; } > "$T/seven.pgm"
  out=$("$DEEPC" predict --model lenet5 --weights "$T/run/model.safetensors" --top 3 "$T/seven.pgm" 2>&1)
  echo "$out" | grep -q "seven.pgm: 7 " && ok "predict: $out" || bad "predict: $out"
else
  bad "train failed: $(tail -3 "$T/train.log")"
fi

# ---- checkpoint + resume: interrupted at step 30 then resumed == uninterrupted
R=(--model lenet5 --dataset mnist --data-dir "$DATA" --epochs 2 --max-train 2000 --val-size 200 --max-test 200 --quiet --no-plots)
"$DEEPC" train "${R[@]}" --out "$T/full" 2>/dev/null || bad "resume: reference run failed"
DEEPC_INTERRUPT_AFTER=30 "$DEEPC" train "${R[@]}" --out "$T/part" 2>"$T/int.log"; rc=$?
[ $rc -eq 130 ] && [ -s "$T/part/checkpoint.safetensors" ] && ok "interrupt saved a checkpoint" || bad "interrupt: exit $rc, $(cat "$T/int.log")"
"$DEEPC" train "${R[@]}" --out "$T/part" --resume "$T/part" 2>/dev/null || bad "resume run failed"
cmp -s "$T/full/model.safetensors" "$T/part/model.safetensors" && ok "resumed model identical to uninterrupted" || bad "resumed model differs"

# ---- compare (two small models, a few batches)
if "$DEEPC" compare --models lenet5,resnet20 --dataset mnist --data-dir "$DATA" --epochs 1 --max-train 600 --val-size 100 --max-test 100 --quiet --out "$T/cmp" 2>"$T/cmp.log"; then
  for f in report.md report.json val_loss.png accuracy.png f1.png lenet5/metrics.json resnet20/model.safetensors; do
    [ -s "$T/cmp/$f" ] && ok "compare wrote $f" || bad "compare did not write $f"
  done
else bad "compare failed: $(tail -2 "$T/cmp.log")"; fi

# ---- bad input
expect_error "unknown model" "unknown model 'lenet6'.*lenet5" "$DEEPC" train --model lenet6 --dataset mnist
expect_error "unknown dataset" "mnist" "$DEEPC" train --model lenet5 --dataset imagenet
# from an empty folder with no $DEEPC_DATA, nothing in the search path has CIFAR-10
cd "$T"
DEEPC_DATA= expect_error "missing dataset" "download cifar10" "$DEEPC" train --model lenet5 --dataset cifar10 --data-dir "$T/nothing" --out "$T/x"
cd - >/dev/null
mkdir -p "$T/broken/mnist"
cp "$DATA/mnist/train-labels-idx1-ubyte.gz" "$DATA/mnist/t10k-"* "$T/broken/mnist/"
gzip -dc "$DATA/mnist/train-images-idx3-ubyte.gz" | head -c 100000 > "$T/broken/mnist/train-images-idx3-ubyte"
expect_error "truncated dataset" "train-images" "$DEEPC" train --model lenet5 --dataset mnist --data-dir "$T/broken" --out "$T/x"
expect_error "bad flag value" "--epochs" "$DEEPC" train --model lenet5 --dataset mnist --epochs zero
expect_error "unknown flag" "--bogus" "$DEEPC" train --model lenet5 --dataset mnist --bogus
if [ -s "$T/run/model.safetensors" ]; then
  expect_error "weights of another model" "conv|fc|features|missing|unexpected" "$DEEPC" eval --model resnet20 --weights "$T/run/model.safetensors" --data-dir "$DATA"
  expect_error "unreadable image" "nope.png" "$DEEPC" predict --model lenet5 --weights "$T/run/model.safetensors" "$T/nope.png"
  printf 'not an image' > "$T/junk.png"
  expect_error "corrupt image" "junk.png" "$DEEPC" predict --model lenet5 --weights "$T/run/model.safetensors" "$T/junk.png"
fi
expect_error "missing weights file" "nope.safetensors" "$DEEPC" eval --model lenet5 --weights "$T/nope.safetensors" --dataset mnist

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
