#!/usr/bin/env bash
# make_sample_grid.sh: the README's picture of deepc's own diffusion model: a grid of N samples
# of every class (one row per class, label order), enlarged SCALE times, drawn by
#   deepc imagine --model MODEL_DIR --all-classes --num-images N --scale SCALE --seed SEED
# and, when Python's PIL is there, with the class names in a column on the left.
#
# Usage: tools/make_sample_grid.sh DEEPC [MODEL_DIR=models/fashion-ddpm] [OUT=docs/images/fashion_samples.png]
# Environment: N (10 per class), SCALE (3), SEED (0), STEPS (the model's default), THREADS,
#   PYTHON (a Python with PIL for the labels).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
DEEPC=$1
MODEL=${2:-models/fashion-ddpm}
OUT=${3:-docs/images/fashion_samples.png}
N=${N:-10}
SCALE=${SCALE:-3}
SEED=${SEED:-0}
[ -x "$DEEPC" ] || { echo "make_sample_grid: $DEEPC is not an executable deepc" >&2; exit 2; }
[ -d "$MODEL" ] || { echo "make_sample_grid: $MODEL: no such model folder" >&2; exit 2; }
extra=()
[ -n "${STEPS:-}" ] && extra+=(--steps "$STEPS")
[ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$(dirname "$OUT")"
"$DEEPC" imagine --model "$MODEL" --all-classes --num-images "$N" --scale "$SCALE" --seed "$SEED" "${extra[@]}" \
    -o "$T/grid.png" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; exit 1; }

# labels: one row per class in the order of deepc.json's class_names (a Python with PIL:
# $PYTHON, python3, or Debian's, which has it)
PY=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if "$p" -c 'import PIL' 2>/dev/null; then PY=$p; break; fi
done
if [ -n "$PY" ] && [ -f "$MODEL/deepc.json" ]; then
    "$PY" - "$T/grid.png" "$MODEL/deepc.json" "$OUT" "$N" "$SCALE" <<'EOF'
import json, os, sys
from PIL import Image, ImageDraw, ImageFont
grid_path, meta_path, out, n, scale = sys.argv[1:]
names = json.load(open(meta_path))["class_names"]
src = Image.open(grid_path).convert("L")
n, gap = int(n), int(scale)
row, col = src.height // len(names), src.width // n
# a thin gap between the samples: Fashion-MNIST's black backgrounds would run together
grid = Image.new("L", (n * col + (n - 1) * gap, len(names) * row + (len(names) - 1) * gap), 80)
for r in range(len(names)):
    for c in range(n):
        grid.paste(src.crop((c * col, r * row, (c + 1) * col, (r + 1) * row)), (c * (col + gap), r * (row + gap)))
font = None
for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf"):
    try:
        font = ImageFont.truetype(path, max(10, row // 4))
        break
    except OSError:
        pass
font = font or ImageFont.load_default()
draw = ImageDraw.Draw(grid)
width = max(draw.textlength(n, font=font) for n in names) + 2 * max(6, row // 8)
img = Image.new("L", (grid.width + int(width), grid.height), 0)
img.paste(grid, (int(width), 0))
d = ImageDraw.Draw(img)
for i, name in enumerate(names):
    d.text((max(6, row // 8), i * (row + gap) + row // 2), name, fill=255, font=font, anchor="lm")
# tell what the picture is, as deepc's own PNGs do
from PIL.PngImagePlugin import PngInfo
info = PngInfo()
text = src.info.get("parameters")
if text:
    info.add_text("parameters", text)
tmp = out + ".tmp.png"
img.save(tmp, pnginfo=info, optimize=True)
os.replace(tmp, out)
print(f"wrote {out} ({img.width}x{img.height}, {len(names)} classes labelled)")
EOF
else
    cp "$T/grid.png" "$OUT"
    echo "wrote $OUT (no labels: Python's PIL or $MODEL/deepc.json is missing)"
fi
