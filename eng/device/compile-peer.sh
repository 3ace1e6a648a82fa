#!/usr/bin/env bash
# torch.compile as a third HF + PEFT setup, in a call of its own (stage with eng/device/stage-train-cuda.sh
# <dir>, cp eng/device/compile-peer.sh <dir>; carry <dir>; run `bash <dir>/compile-peer.sh`): ours at
# SHAPES, the peer's eager bf16 setup there, then each compile setup at each shape in a process of its
# own (torch._dynamo's recompile counts are per process), each stopped after COMPILE_S seconds; STEPS timed steps each.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
shapes="${SHAPES:-llama3.2-1b:4:2048:0,smollm2-135m:8:2048:0}"
# STEPS: timed steps on both sides (40 by default: over 8 the compiled peer with checkpointing was still settling, 40,121
# against 51,524 tok/s over 40 at Llama-3.2-1B, session 16; at 135M the peer moved 20% between 8-step runs, 12% between 40-step ones).
export PEER_STEPS="${STEPS:-40}"
start=$SECONDS
# OURS: our shapes when they differ from the peer's (variants such as :limitG, which the peer's four-field specs do not take).
dotnet "$here/bench/train-cuda.dll" --bench-only --steps "$PEER_STEPS" --shapes "${OURS:-$shapes}" > "$out/train-cuda.jsonl" 2>&1
echo "ours rc=$? at $((SECONDS - start)) s" >> "$out/steps.txt"
PYTHONUNBUFFERED=1 python3 "$here/hf_peft_lora.py" bf16 "$shapes" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft.err"
echo "bf16 rc=$? at $((SECONDS - start)) s" >> "$out/steps.txt"
for setup in ${COMPILE_SETUPS:-compile-layers compile}; do
  for spec in ${shapes//,/ }; do
    PYTHONUNBUFFERED=1 timeout "${COMPILE_S:-150}" python3 "$here/hf_peft_lora.py" "$setup" "$spec" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft-compile.err"
    echo "$setup $spec rc=$? at $((SECONDS - start)) s" >> "$out/steps.txt"
  done
done
python3 "$here/train-cuda-ratios.py" "$out/train-cuda.jsonl" "$out/hf-peft.jsonl" > "$out/ratios.jsonl"
cat "$out/steps.txt" "$out/ratios.jsonl" "$out/hf-peft.jsonl"; grep -h "progress\|recompile_limit" "$out/hf-peft-compile.err" | cut -c1-200 | tail -20
