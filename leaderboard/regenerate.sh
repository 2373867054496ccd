#!/usr/bin/env bash
# Re-creates the committed demo leaderboard from nothing: the demo's synthetic dataset (`dvtr demo`), every
# shipped method under the demo overlay with the protocol's seeds, then the tables and the gallery.
#
#   bash leaderboard/regenerate.sh [WORK_DIR]        (default WORK_DIR: demo-output)
#
# METHODS and SEEDS override what is run. A re-run resumes: finished seeds in WORK_DIR/results are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-demo-output}
methods=${METHODS:-meanP seqLSTM seqTransf tightTransf xpool msam amfmn mcsan dmae}
seeds=${SEEDS:-0,1,2}
dvtr=${DVTR:-dvtr}
group=leaderboard/results/demo-synth-seed0

# The dataset exactly as `make demo` builds it (and meanP's seed 0, reused below).
$dvtr demo --out "$work" --methods meanP
for m in $methods; do
    $dvtr run-baseline "$m" --dataset "$work/dataset" --config demo --seeds "$seeds" --out "$work/results"
done

# Records, run files and score matrices only: checkpoints are not committed.
rm -rf "$group"
mkdir -p "$group"
for run in "$work"/results/*/; do
    name=$(basename "$run")
    [ -f "$run/record.json" ] || continue
    mkdir -p "$group/$name"
    cp "$run/record.json" "$run/run.json" "$run"/scores_seed*.npz "$group/$name/"
done
$dvtr leaderboard leaderboard/results --out leaderboard/tables --verify
$dvtr gallery leaderboard/results --dataset "$work/dataset" --out leaderboard/gallery --verify
