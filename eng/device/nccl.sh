#!/usr/bin/env bash
# Runs on a one-GPU machine from the folder eng/device/stage-nccl.sh filled: bench/nccl (the
# DistributedChecks of the [CudaFact] NcclTests, then the CLI's rank path over real NCCL). JSON lines to $OUT/nccl.jsonl.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
nvidia-smi --query-gpu=name,driver_version --format=csv > "$out/nvidia-smi.txt" 2>&1
timeout 130 dotnet "$here/bench/nccl-checks.dll" "$here/cli/finetune.dll" 2>&1 | tee "$out/nccl.jsonl"
echo "nccl-checks rc=${PIPESTATUS[0]}"
