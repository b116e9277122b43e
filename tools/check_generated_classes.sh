#!/usr/bin/env bash
# check_generated_classes.sh: does deepc's class-conditional diffusion model draw the class it is
# asked for? Generates N images of every class with `deepc imagine` (one 28x28 PNG each,
# --separate), classifies them with a LeNet-5 trained on the real data set (`deepc predict`,
# up to 250 images per process), and prints the per-class and overall agreement:
#
#   generated images classified as the requested class: X of 1000 = Y%
#
# plus a JSON summary (per class: agreement, what the rest were taken for; the classifier's
# own recall on the real test set, from metrics.json beside its weights, when there).
#
# Usage: tools/check_generated_classes.sh DEEPC MODEL_DIR LENET_WEIGHTS [N_PER_CLASS=100]
#   e.g. tools/check_generated_classes.sh build/deepc models/fashion-ddpm \
#            runs/lenet5-fashion/model.safetensors 100
# Environment: SEED (0; class c is drawn with seed SEED+c), STEPS (the model's default, 50),
#   GUIDANCE (the model's default), DATASET (fashion-mnist), JSON_OUT (generated_classes.json),
#   KEEP_DIR (keep the generated PNGs there instead of a temporary folder), THREADS.
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
DEEPC=$1
MODEL=$2
LENET=$3
N=${4:-100}
SEED=${SEED:-0}
DATASET=${DATASET:-fashion-mnist}
JSON_OUT=${JSON_OUT:-generated_classes.json}
[ -x "$DEEPC" ] || { echo "check_generated_classes: $DEEPC is not an executable deepc" >&2; exit 2; }
[ -f "$MODEL/config.json" ] || { echo "check_generated_classes: $MODEL has no config.json (not a deepc diffusion model)" >&2; exit 2; }
[ -f "$LENET" ] || { echo "check_generated_classes: $LENET: no such weights file" >&2; exit 2; }
case $N in '' | *[!0-9]*) echo "check_generated_classes: N_PER_CLASS must be a number (got '$N')" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 1000 ] || { echo "check_generated_classes: N_PER_CLASS must be 1..1000" >&2; exit 2; }

# the classes the model knows, in label order (deepc.json, written by deepc diffusion train)
NCLASSES=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["class_names"]))' "$MODEL/deepc.json")

if [ -n "${KEEP_DIR:-}" ]; then
    T=$KEEP_DIR
    mkdir -p "$T"
else
    T=$(mktemp -d)
    trap 'rm -rf "$T"' EXIT
fi
extra=()
[ -n "${STEPS:-}" ] && extra+=(--steps "$STEPS")
[ -n "${GUIDANCE:-}" ] && extra+=(--guidance "$GUIDANCE")
[ -n "${THREADS:-}" ] && extra+=(--threads "$THREADS")

start=$(date +%s)
for ((c = 0; c < NCLASSES; c++)); do
    # the class by its index (names have spaces and slashes); one sampling batch per class
    t0=$(date +%s)
    if ! "$DEEPC" imagine --model "$MODEL" --num-images "$N" --seed $((SEED + c)) --separate "${extra[@]}" \
        -o "$T/class$c.png" "$c" >"$T/imagine.log" 2>&1; then
        echo "check_generated_classes: deepc imagine failed for class $c:" >&2
        tail -5 "$T/imagine.log" >&2
        exit 1
    fi
    echo "  class $c: $N images ($(($(date +%s) - t0)) s)"
done
gen_s=$(($(date +%s) - start))

start=$(date +%s)
: >"$T/predictions.jsonl"
for ((c = 0; c < NCLASSES; c++)); do
    # several images per process (deepc predict takes up to 256); one JSON array per call
    find "$T" -maxdepth 1 -name "class$c-*.png" | sort | xargs -n 250 \
        "$DEEPC" predict --model lenet5 --weights "$LENET" --dataset "$DATASET" --top 1 --json >>"$T/predictions.jsonl"
done
cls_s=$(($(date +%s) - start))

python3 - "$T/predictions.jsonl" "$MODEL" "$LENET" "$N" "$SEED" "$JSON_OUT" "$gen_s" "$cls_s" "${STEPS:-}" <<'EOF'
import json, os, re, sys
pred_file, model, lenet, n, seed, out, gen_s, cls_s, steps = sys.argv[1:]
names = json.load(open(os.path.join(model, "deepc.json")))["class_names"]
K = len(names)
got = [[0] * K for _ in range(K)]  # got[requested][predicted]
for line in open(pred_file):
    line = line.strip()
    if not line:
        continue
    for p in json.loads(line):
        want = int(re.search(r"class(\d+)-\d+\.png$", p["image"]).group(1))
        got[want][p["top"][0]["class"]] += 1
# the classifier's own recall per class on the real test set, for context
recall = None
metrics = os.path.join(os.path.dirname(os.path.abspath(lenet)), "metrics.json")
if os.path.isfile(metrics):
    try:
        m = json.load(open(metrics))
        recall = {"accuracy": m["test"]["accuracy"], "per_class": [c["recall"] for c in m["test"]["per_class"]]}
    except (KeyError, ValueError, TypeError):
        recall = None
total = sum(map(sum, got))
right = sum(got[c][c] for c in range(K))
print(f"{'class':<14} {'agree':>9}  taken for (most often)" + ("   LeNet recall on real test images" if recall else ""))
per_class = []
for c in range(K):
    row = got[c]
    cnt = sum(row)
    others = sorted(((v, k) for k, v in enumerate(row) if k != c and v), reverse=True)[:2]
    other_txt = ", ".join(f"{names[k]} {v}" for v, k in others) or "-"
    rec = f"   {100 * recall['per_class'][c]:.1f}%" if recall else ""
    print(f"{names[c]:<14} {row[c]:>4}/{cnt:<4}  {other_txt}{rec}")
    per_class.append({"class": c, "name": names[c], "images": cnt, "agree": row[c],
                      "agreement": row[c] / cnt if cnt else None, "predicted": row})
pct = 100.0 * right / total if total else 0.0
print(f"generated images classified as the requested class: {right} of {total} = {pct:.1f}%")
if recall:
    print(f"(the classifier itself gets {100 * recall['accuracy']:.1f}% of the real test images right)")
summary = {"model": model, "classifier": lenet, "images_per_class": int(n), "seed": int(seed),
           "steps": int(steps) if steps else "model default", "images": total, "agree": right,
           "agreement": right / total if total else None, "per_class": per_class,
           "classifier_test_recall": recall, "generate_seconds": int(gen_s), "classify_seconds": int(cls_s)}
with open(out, "w") as f:
    json.dump(summary, f, indent=1)
print(f"wrote {out} (generation {gen_s} s, classification {cls_s} s)")
if total != K * int(n):
    sys.exit(f"check_generated_classes: expected {K * int(n)} classified images, got {total}")
EOF
