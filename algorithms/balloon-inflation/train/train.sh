#!/usr/bin/env bash
# `npm run train`: renders the training runs, trains the detector and writes the model and
# its SHA-256 into manifest.json. Needs Debian's python3 with numpy, scipy, torch and onnx
# (apt: python3-scipy python3-torch python3-onnx). Long: it runs at low priority.
# BALLOON_INIT_ONNX=earlier.onnx starts from an exported model's convolutions (3.0.0 started
# from 2.2.0's: `git show <2.2.0 commit>:algorithms/balloon-inflation/model/balloon-inflation.onnx`).
# The model is exported every five minutes, so training can be stopped at any time.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${BALLOON_TRAIN_DATA:-/tmp/arteria-balloon-train}"
runs="${BALLOON_TRAIN_RUNS:-900}"
seconds="${BALLOON_TRAIN_SECONDS:-3300}"
model="$here/../model/balloon-inflation.onnx"
cd "$here/py"
nice -n 15 /usr/bin/python3 gen.py train "$data" 0 "$runs"
BALLOON_CHECKPOINT="$data/detector.pt" nice -n 15 /usr/bin/python3 train.py "$data" "$model" "$seconds"
# The shipped model averages each frame over its mirror images (export.py --flips).
/usr/bin/python3 export.py "$data/detector.pt" "$model" --flips
sha="$(sha256sum "$model" | cut -d' ' -f1)"
node -e '
const fs = require("node:fs");
const [file, sha] = process.argv.slice(1);
const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
manifest.model.sha256 = sha;
fs.writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
' "$here/../manifest.json" "$sha"
echo "model $sha written; run npm run eval and arteria algorithm test algorithms/balloon-inflation --update"
