#!/usr/bin/env bash
# Rebuild the shipped model (models/cnn/1) and its reports from the public data, on CPU.
#   scripts/train_shipped.sh cnn        # data, train (~30 min on 2 busy cores), evaluate, export
#   scripts/train_shipped.sh xception   # Xception from scratch (no ImageNet weights offline)
# Reports land in reports/<model>/; the model entry in models/<model>/1 (cnn only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
TRAINING_DATA="4,229 face photos (data/combined/train, DATA.md): Yonsei 'Real and Fake Face \
Detection' (757 real, 672 hand-photoshopped fakes) + LFW (1,400 real) and classical FaceSwap \
swaps of LFW faces (1,400); no GAN or diffusion faces, not validated on them"
MODEL=${1:-cnn}

[ -d data/combined ] || $PY scripts/build_dataset.py --combined

if [ "$MODEL" = cnn ]; then
  RUN=runs/cnn_combined DATA=data/combined
  $PY -m train --model cnn --data $DATA --out $RUN --epochs 14 --patience 5 --batch-size 16 \
    --jpeg-quality 50 99 --jpeg-prob 0.5 --blur-prob 0 --rotation 0 --zoom 0.05 --shift 0.05 \
    --workers 2
elif [ "$MODEL" = xception ]; then
  RUN=runs/xception_scratch DATA=data/combined
  [ -d data/combined_small ] || $PY scripts/subset_dataset.py --src data/combined \
    --dst data/combined_small --train-per-class 1000 --val-per-class 150
  $PY -m train --model xception --weights none --fine-tune-epochs 0 --image-size 96 \
    --data data/combined_small --out $RUN --epochs 1 --patience 2 --batch-size 32 \
    --jpeg-quality 50 99 --jpeg-prob 0.5 --blur-prob 0 --rotation 0 --zoom 0.05 --shift 0.05 \
    --workers 2
else
  echo "usage: $0 cnn|xception" >&2; exit 2
fi

$PY -m train.evaluate --run $RUN --data $DATA --bootstrap 1000 --no-progress
$PY -m train.robustness --run $RUN --data $DATA --by-source --no-progress
$PY scripts/per_source_report.py --run $RUN --data $DATA
OUT=reports/$MODEL
mkdir -p $OUT
cp -r $RUN/report.json $RUN/history.csv $RUN/config.json $RUN/plots $RUN/robustness.json \
  $RUN/robustness.md $RUN/per_source.json $RUN/per_source.md $OUT/
if [ "$MODEL" = cnn ]; then
  $PY -m export --model $RUN/model.keras --name cnn --version 1 --repo models --force \
    --report $OUT/report.json --parity-images data/combined/test --fp16 --int8 \
    --training-data "$TRAINING_DATA"
fi
