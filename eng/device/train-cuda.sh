#!/usr/bin/env bash
# Runs on the GPU machine from the folder this script was copied to (see bench/train-cuda/README.md):
#   dotnet-rt.tar.xz  the .NET runtime (no SDK on the device), unpacked to /tmp/dotnet
#   bench/            bench/train-cuda, framework-dependent
#   cli/              the finetune CLI, framework-dependent
#   example/          the example project's lora.yaml, tokenized data and the tokenizer of its tiny model
#   hf_peft_lora.py   the peer (Hugging Face transformers + PEFT), optional; train-cuda-ratios.py joins the two
# Usage: train-cuda.sh [peer] [checks] [bench] [e2e] [-- extra train-cuda arguments, e.g. --shapes llama3.2-1b:4:2048:0:0]
# Writes at most 7 files to $OUT (the device tool returns 8).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
steps=("$@")
extra=()
for i in "${!steps[@]}"; do if [[ "${steps[$i]}" == "--" ]]; then extra=("${steps[@]:$((i+1))}"); steps=("${steps[@]:0:$i}"); break; fi; done
want() { [[ " ${steps[*]} " == *" $1 "* ]]; }
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.used --format=csv > "$out/nvidia-smi.txt" 2>&1
rc=0
if want peer; then
  PYTHONUNBUFFERED=1 timeout 420 python3 "$here/hf_peft_lora.py" > "$out/hf-peft.jsonl" 2> "$out/hf-peft.err"
  echo "peer rc=$?"; cat "$out/hf-peft.jsonl"
fi
if want checks; then
  dotnet "$here/bench/train-cuda.dll" --checks-only 2>&1 | tee "$out/checks.jsonl"; rc=$((rc | PIPESTATUS[0]))
fi
if want bench; then
  dotnet "$here/bench/train-cuda.dll" --bench-only "${extra[@]}" 2>&1 | tee "$out/train-cuda.jsonl"; rc=$((rc | PIPESTATUS[0]))
fi
if want peer && want bench; then
  python3 "$here/train-cuda-ratios.py" "$out/train-cuda.jsonl" "$out/hf-peft.jsonl" | tee "$out/ratios.jsonl"
fi
if want profile; then
  # Per-kernel GPU time of one 1B step (Nsight Compute, clocks left alone), for the time breakdown.
  ncu --clock-control none --csv --page raw --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size \
    dotnet "$here/bench/train-cuda.dll" --bench-only --warm 1 --steps 1 --shapes "${PROFILE_SHAPE:-llama3.2-1b:4:2048:0}" > "$out/profile.csv" 2> "$out/profile.err"
  echo "profile rc=$? lines=$(wc -l < "$out/profile.csv")"
fi
if want e2e; then
  # Acceptance 3's training step: the example's tiny model (made here from its tokenizer) on its tokenized data.
  ex="$here/example"; work=/tmp/e2e; rm -rf "$work"; mkdir -p "$work"
  dotnet "$here/cli/finetune.dll" new-tiny-model --tokenizer "$ex/tokenizer" --out "$work/base" --seed 42 > "$out/e2e.log" 2>&1
  for dev in cuda auto; do
    dotnet "$here/cli/finetune.dll" train --base-model "$work/base" --data "$ex/tokens" --config "$ex/lora.yaml" \
      --out "$work/out-$dev" --checkpoint-dir "$work/ck-$dev" --device $dev >> "$out/e2e.log" 2>&1
    echo "e2e $dev rc=$?" >> "$out/e2e.log"
  done
  cmp "$work/out-cuda/adapter_model.safetensors" "$work/out-auto/adapter_model.safetensors" >> "$out/e2e.log" 2>&1 && echo "cuda and auto adapters identical" >> "$out/e2e.log"
  cat "$work/out-cuda/train-summary.json" >> "$out/e2e.log"
  cat "$out/e2e.log"
fi
exit $rc
