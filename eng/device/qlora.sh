#!/usr/bin/env bash
# QLoRA on the GPU machine, in one call (stage with eng/device/stage-train-cuda.sh .gpu/qlora, then
# copy this script there): the 4-bit checks (kernels byte-identical to the CPU reference, streamed
# weights, GPU vs CPU 4-bit training, 4-bit vs bf16, memory plans), then ours at the Llama-3.1-8B
# shape in bf16 and NF4 and the Llama-3.3-70B shape in NF4. The peer (HF + PEFT) has no 4-bit setup
# there (no bitsandbytes; the import is tried and its result kept), so 4-bit is compared with our own
# bf16 run; with PEER_SHAPES set the peer's bf16 run at those shapes follows, and the ratios.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used --format=csv > "$out/nvidia-smi.txt" 2>&1
python3 -c "import bitsandbytes" > "$out/bitsandbytes.txt" 2>&1; echo "bitsandbytes import rc=$?" >> "$out/bitsandbytes.txt"
checks="${CHECKS:-kernel_fourbit_nf4_dq,kernel_fourbit_nf4,kernel_fourbit_fp4_dq,weights_stream_4bit,train_parity_llama_4bit,train_4bit_tracks_bf16,memory_plan_4bit,train_parity_llama_checkpointing}"
timeout "${CHECKS_S:-200}" dotnet "$here/bench/train-cuda.dll" --checks-only --checks "$checks" 2>&1 | tee "$out/checks.jsonl"
shapes="${SHAPES:-llama3.1-8b:2:2048:1,llama3.1-8b:2:2048:1:nf4,llama3.3-70b:2:2048:1:nf4}"
timeout "${BENCH_S:-240}" dotnet "$here/bench/train-cuda.dll" --bench-only --warm "${WARM:-2}" --steps "${STEPS:-4}" --shapes "$shapes" 2>&1 | tee "$out/train-cuda.jsonl"
cat "$out/bitsandbytes.txt"
if [[ -n "${PEER_SHAPES:-}" ]]; then
  PYTHONUNBUFFERED=1 timeout "${PEER_S:-150}" python3 "$here/hf_peft_lora.py" bf16 "$PEER_SHAPES" > "$out/hf-peft.jsonl" 2> "$out/hf-peft.err"
  echo "peer rc=$?"; cat "$out/hf-peft.jsonl"
  python3 "$here/train-cuda-ratios.py" "$out/train-cuda.jsonl" "$out/hf-peft.jsonl" | tee "$out/ratios.jsonl"
fi
