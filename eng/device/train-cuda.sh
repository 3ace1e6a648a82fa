#!/usr/bin/env bash
# Runs on the GPU machine from the folder this script was copied to (eng/device/stage-train-cuda.sh):
#   dotnet-rt.tar.xz  the .NET runtime (no SDK on the device), unpacked to /tmp/dotnet
#   bench/            bench/train-cuda, framework-dependent;  kernels/  bench/cuda-kernels
#   hf_peft_lora.py   the peer (bench/train-cuda/peer), sft-lengths.json the realistic-length workload
# Usage: train-cuda.sh [peer] [compile] [checks] [bench] [profile] [-- extra train-cuda arguments]
#   peer     HF + PEFT, setups autocast and bf16 (PEER_SETUPS), at every shape (SHAPES) and the SFT workload, stopped after PEER_S seconds (default 420)
#   compile  the same with torch.compile at COMPILE_SHAPES (default SHAPES), stopped after COMPILE_S seconds (default 300)
#   checks   the [CudaFact] tests' code: TrainingChecks (GPU vs CPU training, byte-identical reruns,
#            resume) and KernelChecks (each kernel against float64)
#   bench    ours at the same shapes and the SFT workload; with the peer's lines here, the ratios
#   profile  Nsight Compute's GPU time of each kernel of one step at PROFILE_SHAPE: profile.csv (raw) and
#            profile.txt (per kernel name, one optimizer cycle: bench/train-cuda/profile_summary.py)
#   e2e      `finetune train --device cuda|auto` on the example's data (stage with --e2e: cli/, example/)
# Each step appends to $OUT (at most 8 files come back); peer lines are kept in $OUT/hf-peft.jsonl.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
steps=("$@")
extra=()
for i in "${!steps[@]}"; do if [[ "${steps[$i]}" == "--" ]]; then extra=("${steps[@]:$((i+1))}"); steps=("${steps[@]:0:$i}"); break; fi; done
want() { [[ " ${steps[*]} " == *" $1 "* ]]; }
shapes="${SHAPES:-smollm2-135m:8:2048:0,llama3.2-1b:4:2048:0,llama3.2-1b:4:2048:1,llama3.1-8b:2:2048:1,llama3.1-8b:2:2048:0}"
sft="${SFT:-sft:llama3.2-1b:0:$here/sft-lengths.json,sft:llama3.2-1b:1:$here/sft-lengths.json,sft:llama3.1-8b:1:$here/sft-lengths.json}"
# SFT=none: the shapes alone (a call short of device time); $all is what the peer and ours run.
if [[ "$sft" == "none" ]]; then all="$shapes"; else all="$shapes,$sft"; fi
# The peer runs each shape once: our A/B variants (a shape ending in :nograph, graph replay off, or
# :exactplan, cuBLASLt's heuristic per exact shape) are ours only, and so are OURS_ONLY's shapes.
peer_shapes="$(tr , '\n' <<< "$all" | grep -vE ':(nograph|exactplan|unpadded|twoproducts|keepglu|mmaattn|attnonly|glufwd|nohiddens|threeqkv|qkvga)$' | paste -sd, -)"
if [[ -n "${OURS_ONLY:-}" ]]; then all="$all,$OURS_ONLY"; fi
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,memory.used --format=csv >> "$out/nvidia-smi.txt" 2>&1
rc=0
if want peer; then
  PYTHONUNBUFFERED=1 timeout "${PEER_S:-420}" python3 "$here/hf_peft_lora.py" "${PEER_SETUPS:-autocast,bf16}" "$peer_shapes" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft.err"
  echo "peer rc=$?"
fi
if want compile; then
  PYTHONUNBUFFERED=1 timeout "${COMPILE_S:-300}" python3 "$here/hf_peft_lora.py" compile "${COMPILE_SHAPES:-$shapes}" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft.err"
  echo "compile rc=$?"
fi
[[ -f "$out/hf-peft.jsonl" ]] && cat "$out/hf-peft.jsonl"
if want checks; then
  # CHECKS=name,...: those training checks only (no kernel checks), for a call short of device time.
  dotnet "$here/bench/train-cuda.dll" --checks-only ${CHECKS:+--checks "$CHECKS"} 2>&1 | tee -a "$out/checks.jsonl"; rc=$((rc | PIPESTATUS[0]))
  if [[ -z "${CHECKS:-}" ]]; then dotnet "$here/kernels/cuda-kernels.dll" --skip-timings 2>&1 | tee -a "$out/checks.jsonl"; rc=$((rc | PIPESTATUS[0])); fi
fi
if want bench; then
  dotnet "$here/bench/train-cuda.dll" --bench-only --shapes "$all" "${extra[@]}" 2>&1 | tee -a "$out/train-cuda.jsonl"; rc=$((rc | PIPESTATUS[0]))
fi
if [[ -f "$out/hf-peft.jsonl" && -f "$out/train-cuda.jsonl" ]]; then
  python3 "$here/train-cuda-ratios.py" "$out/train-cuda.jsonl" "$out/hf-peft.jsonl" | tee "$out/ratios.jsonl"
fi
if want profile; then
  # Per-kernel GPU time of one step (Nsight Compute, clocks left alone), for the time breakdown.
  ncu --clock-control none --csv --page raw --metrics gpu__time_duration.sum,launch__grid_size,launch__block_size \
    dotnet "$here/bench/train-cuda.dll" --bench-only --warm 1 --steps 1 --shapes "${PROFILE_SHAPE:-llama3.2-1b:4:2048:0}" > "$out/profile.csv" 2> "$out/profile.err"
  echo "profile rc=$? lines=$(wc -l < "$out/profile.csv")"
  python3 "$here/profile_summary.py" "$out/profile.csv" > "$out/profile.txt" && head -12 "$out/profile.txt"
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
