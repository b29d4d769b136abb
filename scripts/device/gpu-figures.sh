#!/usr/bin/env bash
# scripts/device/gpu-figures.sh PEERTRAIN_DIR OUTDIR [SET]: the figures that need a GPU server (issue 12)
# and a core per tab (issues 10 and 13), run from the self-contained bundle (`npm run bundle:gpu`,
# README "Train on a GPU server") unpacked at PEERTRAIN_DIR. Every run writes OUTDIR/NAME.json (the
# report) and OUTDIR/NAME.log; a failed run is noted and the next one starts. SET: all (default), gpu,
# scaling, pipeline, or smoke (a first look: the probe's choice and one CNN step time per backend). Each run is capped by RUN_TIMEOUT seconds (default 150).
set -uo pipefail
PT="${1:?usage: gpu-figures.sh PEERTRAIN_DIR OUTDIR [SET]}"
OUT="${2:?usage: gpu-figures.sh PEERTRAIN_DIR OUTDIR [SET]}"
SET="${3:-all}"
mkdir -p "$OUT"
run() {
  local name="$1"
  shift
  local t0=$SECONDS
  timeout "${RUN_TIMEOUT:-150}" "$PT/run.sh" train --report "$OUT/$name.json" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  printf '== %s (rc %s, %ss): %s\n' "$name" "$rc" "$((SECONDS - t0))" "$*"
  grep -E 'done in|test accuracy|target  |throughput|bubble|compute share|worker [0-9]|Error' "$OUT/$name.log" | cut -c1-150 | head -12
}
common=(--eval-every 0 --seed 42)
if [ "$SET" = smoke ]; then
  run probe-auto-1 --workers 3 --backend auto --steps 20 "${common[@]}"
  run cnn-webgpu-b96 --model cnn --workers 1 --batch 96 --backend webgpu --steps 40 "${common[@]}"
  run cnn-wasm-b96 --model cnn --workers 1 --batch 96 --backend wasm --steps 40 "${common[@]}"
fi
if [ "$SET" = all ] || [ "$SET" = gpu ]; then
  run probe-auto-1 --workers 3 --backend auto --steps 20 "${common[@]}"
  run probe-auto-2 --workers 3 --backend auto --steps 20 "${common[@]}"
  run cnn-webgpu-b96 --model cnn --workers 1 --batch 96 --backend webgpu --steps 60 "${common[@]}"
  run cnn-webgpu-4x24 --model cnn --workers 4 --batch 24 --backend webgpu --steps 60 "${common[@]}"
  run wide-webgpu-b512 --model wideMlp --workers 1 --batch 512 --backend webgpu --steps 30 "${common[@]}"
fi
if [ "$SET" = all ] || [ "$SET" = scaling ]; then
  tgt=(--eval-every 10 --steps 600 --backend wasm --seed 42)
  run mlp-1x96-target --workers 1 --batch 96 --target-accuracy 0.92 "${tgt[@]}"
  run mlp-3x32-diloco20-target --workers 3 --batch 32 --sync diloco --inner-steps 20 --target-accuracy 0.92 "${tgt[@]}"
  run mlp-3x32-sync-target --workers 3 --batch 32 --target-accuracy 0.92 "${tgt[@]}"
  run cnn-1x96-target --model cnn --workers 1 --batch 96 --target-accuracy 0.96 "${tgt[@]}"
  run cnn-4x24-local10-target --model cnn --workers 4 --batch 24 --sync diloco --inner-steps 10 --outer-lr 1 \
    --outer-momentum 0 --target-accuracy 0.96 "${tgt[@]}"
  run cnn-wasm-4x24 --model cnn --workers 4 --batch 24 --backend wasm --steps 60 --eval-every 0
fi
if [ "$SET" = all ] || [ "$SET" = pipeline ]; then
  # Issue 13 with a core per stage: the bench's headline case (apps/bench/src/pipeline-cases.ts: wideMlp,
  # synthetic, batch 128, its partitions), every schedule at P = 4, M = 8, over WebRTC and between the
  # tabs of one profile (tab links). The summary's "bubble" line is the measured one beside theory.
  wide=(--strategy pipeline --model wideMlp --dataset synthetic --batch 128 --workers 4 --micro-batches 8
    --steps 20 --backend wasm "${common[@]}")
  for links in webrtc one-profile; do
    extra=()
    [ "$links" = one-profile ] && extra=(--one-profile)
    for s in gpipe 1f1b zb-h1; do
      run "pipe-wide-$s-p4m8-$links" "${wide[@]}" --schedule "$s" --partition 0-1,2-3,4-5,6-8 "${extra[@]}"
    done
    run "pipe-wide-interleaved2-p4m8-$links" "${wide[@]}" --schedule interleaved --virtual-stages 2 \
      --partition 0-0,1-1,2-3,4-4,5-5,6-6,7-7,8-8 "${extra[@]}"
  done
fi
