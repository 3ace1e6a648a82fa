#!/usr/bin/env bash
# The A/B of a product-layout change against main's build, on the GPU machine. Stage with
#   eng/device/stage-train-cuda.sh .gpu/NAME        (this branch: bench/, kernels/, the runtime, the peer)
#   dotnet publish bench/train-cuda -c Release -r linux-x64 --self-contained false -o .gpu/NAME/base   (from main's tree)
# and copy this script there. Steps, each on unless set to 0: PEER (HF + PEFT eager with bf16 adapters at PEER_SHAPES,
# stopped after PEER_S seconds), CHECKS (train-cuda --checks-only, cuda-kernels --skip-timings), AB (main's build and
# this one alternating at AB_ONE and AB_EIGHT, with this one's :unpadded / :twoproducts variants), PROFILE (off by
# default: Nsight Compute's per-kernel time of one AB_ONE step). Lines land in $OUT (the builds named in "build").
# gpukern's two calls (results/h200-2026-12-02-gpukern*.jsonl) ran the two scripts this one merges: the same steps
# (PEER_S=120; then PEER=0 PROFILE=1), with 1B checkpointing, SmolLM2-135M and main's :unfused in the first call's A/B.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.used --format=csv >> "$out/nvidia-smi.txt" 2>&1
one="${AB_ONE:-llama3.2-1b:4:2048:0}"; eight="${AB_EIGHT:-llama3.1-8b:2:2048:1}"
if [[ "${PEER:-1}" == 1 ]]; then
  PYTHONUNBUFFERED=1 timeout "${PEER_S:-150}" python3 "$here/hf_peft_lora.py" bf16 "${PEER_SHAPES:-$one,$eight}" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft.err"
  el "peer rc=$?"; cat "$out/hf-peft.jsonl"
fi
rc=0
if [[ "${CHECKS:-1}" == 1 ]]; then
  dotnet "$here/bench/train-cuda.dll" --checks-only > "$out/checks.jsonl" 2>&1; rc=$((rc | $?))
  dotnet "$here/kernels/cuda-kernels.dll" --skip-timings >> "$out/checks.jsonl" 2>&1; rc=$((rc | $?))
  el "checks rc=$rc"; grep '"kind":"check"' "$out/checks.jsonl" | grep -v '"passed":true' | cut -c1-400
  echo "passed: $(grep -c '"passed":true' "$out/checks.jsonl")"
fi
ab() { dotnet "$here/$1/train-cuda.dll" --bench-only --steps 12 --shapes "$2" 2>&1 | sed "s/^{/{\"build\":\"$1\",/" | tee -a "$out/ab.jsonl" | cut -c1-330; }
if [[ "${AB:-1}" == 1 ]]; then
  ab base "$one"; ab bench "$one,$one:unpadded,$one:twoproducts,$one"; ab base "$one"
  ab base "$eight"; ab bench "$eight,$eight:unpadded"
  el "ab done"
fi
if [[ "${PROFILE:-0}" == 1 ]]; then
  timeout "${PROFILE_S:-120}" ncu --clock-control none --csv --page raw --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size \
    dotnet "$here/bench/train-cuda.dll" --bench-only --warm 1 --steps 1 --shapes "$one" > "$out/profile.csv" 2> "$out/profile.err"
  el "profile rc=$? lines=$(wc -l < "$out/profile.csv")"
fi
exit $rc
