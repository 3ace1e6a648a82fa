#!/usr/bin/env bash
# Runs on the GPU machine from the folder this script was copied to (the published
# bench/cuda-kernels is in ./bin): PyTorch SDPA first, then the kernel checks and timings, which
# read SDPA's lines for the comparison. Everything lands in $OUT.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR="$out/kernel-cache"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv > "$out/nvidia-smi.txt" 2>&1
PYTHONUNBUFFERED=1 python3 "$here/sdpa_attention.py" > "$out/sdpa.jsonl" 2> "$out/sdpa.err"
echo "sdpa rc=$?"; cat "$out/sdpa.jsonl"
"$here/bin/cuda-kernels" --sdpa "$out/sdpa.jsonl" "$@" 2>&1 | tee "$out/cuda-kernels.jsonl"
rc=${PIPESTATUS[0]}
# Library discovery without LD_LIBRARY_PATH (the loader cache, then the toolkit and pip folders).
env -u LD_LIBRARY_PATH "$here/bin/cuda-kernels" --probe 2>&1 > "$out/discovery-without-ld-path.jsonl"
cat "$out/discovery-without-ld-path.jsonl"
rm -rf "$out/kernel-cache"
exit $rc
