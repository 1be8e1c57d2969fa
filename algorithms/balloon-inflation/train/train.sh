#!/usr/bin/env bash
# `npm run train`: renders the training runs (train/py's generator and @arteria/synth's), the
# validation runs of both, trains the detector, keeps the weights that score best on the
# validation runs and writes the model and its SHA-256 into manifest.json. Needs Debian's
# python3 with numpy, scipy, torch and onnx (apt: python3-scipy python3-torch python3-onnx).
# Long (72 minutes of training on one core): it runs at low priority.
#
# The defaults are 3.2.0's recipe, which continued from 3.1.0's weights in a network 1.5 times
# as wide (BALLOON_WIDTH: the channels it gained start from random weights that 3.1.0's ignore):
#   git show 08a681e:algorithms/balloon-inflation/model/balloon-inflation.onnx > /tmp/3.1.0.onnx
#   BALLOON_INIT_ONNX=/tmp/3.1.0.onnx npm run train
# Without BALLOON_INIT_ONNX it continues from the model now in model/ (already as wide).
# The best weights so far are exported whenever they improve, so training can be stopped at any time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${BALLOON_TRAIN_DATA:-/tmp/arteria-balloon-train}"
first="${BALLOON_TRAIN_FIRST:-14000}"       # train/py seeds from 1000000 + first
runs="${BALLOON_TRAIN_RUNS:-960}"
synth="${BALLOON_SYNTH_RUNS:-300}"
synth_first="${BALLOON_SYNTH_FIRST:-2000}"  # @arteria/synth seeds from 100000 + synth_first
seconds="${BALLOON_TRAIN_SECONDS:-4300}"
export BALLOON_WIDTH="${BALLOON_WIDTH:-1.5}" BALLOON_SEED="${BALLOON_SEED:-2}"
model="$here/../model/balloon-inflation.onnx"
init="${BALLOON_INIT_ONNX:-$model}"
mkdir -p "$data"
cp "$init" "$data/init.onnx"
(cd "$here/../../.." && npx tsc -b algorithms/balloon-inflation/train)
cd "$here/py"
nice -n 15 /usr/bin/python3 gen.py train "$data/shards" "$first" "$runs"
nice -n 15 node "$here/dist/synth-set.js" train "$data/synth-train" "$synth_first" "$synth" > /dev/null
nice -n 15 /usr/bin/python3 synthshards.py "$data/synth-train" "$data/shards"
# Weights are chosen on both generators' validation runs, never on the held-out set, with the
# shipped event rule (valscore.py).
nice -n 15 /usr/bin/python3 gen.py validation "$data/validation" 0 180
nice -n 15 node "$here/dist/synth-set.js" check "$data/synth-check" 0 96 > /dev/null
BALLOON_INIT_ONNX="$data/init.onnx" BALLOON_LR=1e-3 BALLOON_HARD=3 \
  BALLOON_VALIDATION="$data/validation:$data/synth-check" BALLOON_CHECKPOINT="$data/detector.pt" \
  nice -n 15 /usr/bin/python3 train.py "$data/shards" "$data/last.onnx" "$seconds"
# The shipped model averages each frame over its mirror images (export.py --flips).
/usr/bin/python3 export.py "$data/detector.pt.best" "$model" --flips
sha="$(sha256sum "$model" | cut -d' ' -f1)"
node -e '
const fs = require("node:fs");
const [file, sha] = process.argv.slice(1);
const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
manifest.model.sha256 = sha;
fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
' "$here/../manifest.json" "$sha"
echo "model $sha written; run npm run eval and arteria algorithm test algorithms/balloon-inflation --update"
