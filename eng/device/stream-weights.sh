#!/usr/bin/env bash
# Runs on the GPU machine from the folder this script was copied to (/work/main/.gpu/stream):
#   dotnet-rt.tar.xz  the .NET runtime (no SDK on the device), unpacked to /tmp/dotnet
#   bench/            bench/train-cuda, framework-dependent
# 1. The training checks (TrainingChecks, as the [CudaFact] tests): kernels, 20-step GPU/CPU parity,
#    determinism, resume, memory plan, and the weights streamed from F32/F16/BF16 safetensors
#    byte-identical to the float32 upload.
# 2. Host peak memory (VmHWM) of putting SmolLM2-135M- and Llama-3.2-1B-shaped BF16 models on the
#    GPU, float32 path vs streamed, each loader in its own process.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
bench="$here/bench/train-cuda.dll"
rc=0
dotnet "$bench" --checks-only 2>&1 | tee "$out/checks.jsonl"; rc=$((rc | PIPESTATUS[0]))
for shape in smollm2-135m llama3.2-1b; do
  dotnet "$bench" --write-model "$shape" "/tmp/model-$shape" || rc=1
  for loader in float32 stream; do
    dotnet "$bench" --load-memory "/tmp/model-$shape" "$loader" 2>&1 | tee -a "$out/load-memory.jsonl"; rc=$((rc | PIPESTATUS[0]))
  done
done
exit $rc
