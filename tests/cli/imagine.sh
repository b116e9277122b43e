#!/usr/bin/env bash
# imagine.sh: `deepc imagine` and `deepc diffusion train` end to end on the small random-weight
# pipeline of tests/fixtures/sd (txt2img, several images as a grid, img2img, the PNG text chunk),
# deepc's own committed model (models/fashion-ddpm) when present, and one-line errors.
# Usage (from the repo root): bash tests/cli/imagine.sh /path/to/deepc /path/to/shared
set -u
DEEPC=$1
P=tests/fixtures/sd/tiny_pipe
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail=0
check() { # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1: expected [$2] got [$3]"; fail=$((fail + 1)); else echo "ok   $1"; fi
}
png_size() { python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(24); print(*struct.unpack('>II', d[16:24]))" "$1"; }
"$DEEPC" imagine --model $P --steps 2 --width 32 --height 32 --seed 1 -o "$T/a.png" "a red shoe" >/dev/null 2>&1
check txt2img-rc 0 $?
check txt2img-size "32 32" "$(png_size "$T/a.png")"
grep -q "a red shoe" "$T/a.png"; check text-chunk 0 $?
"$DEEPC" imagine --model $P --steps 2 --width 32 --height 32 --num-images 4 --scheduler dpmpp-2m --karras \
    --negative blurry -o "$T/b.png" "a red shoe" >/dev/null 2>&1
check grid-rc 0 $?
check grid-size "64 64" "$(png_size "$T/b.png")"
"$DEEPC" imagine --model $P --steps 4 --init-image tests/fixtures/sd/init.png --strength 0.5 --scheduler euler-a \
    -o "$T/c.png" "a red shoe" >/dev/null 2>&1
check img2img-rc 0 $?
"$DEEPC" imagine --model $P --width 30 "x" >/dev/null 2>"$T/err"
check bad-size-rc 2 $?
grep -q "multiples of 8" "$T/err"; check bad-size-message 0 $?
"$DEEPC" imagine --model /nonexistent "x" >/dev/null 2>"$T/err"
check missing-model-rc 1 $?
grep -q "/nonexistent" "$T/err"; check missing-model-message 0 $?
"$DEEPC" imagine --model $P --scheduler lms "x" >/dev/null 2>&1
check bad-scheduler-rc 2 $?
"$DEEPC" diffusion train --dataset cifar10 --out "$T/m" >/dev/null 2>"$T/err"
check train-cifar-rc 1 $?
"$DEEPC" diffusion train --ema-decay 1 --out "$T/m" >/dev/null 2>"$T/err"
check train-bad-ema-rc 2 $?
grep -q "ema-decay" "$T/err"; check train-bad-ema-message 0 $?
if [ -f models/fashion-ddpm/config.json ]; then
    "$DEEPC" imagine --steps 5 --num-images 2 -o "$T/own.png" sneaker >/dev/null 2>&1
    check own-model-rc 0 $?
    check own-model-size "56 28" "$(png_size "$T/own.png")"
    "$DEEPC" imagine --steps 2 -o "$T/own.png" spaceship >/dev/null 2>"$T/err"
    check own-model-bad-class-rc 1 $?
    grep -q "Sneaker" "$T/err"; check own-model-classes-listed 0 $?
fi
[ $fail -eq 0 ] && echo "imagine: all checks passed" || echo "imagine: $fail failed"
exit $((fail > 0))
