#!/usr/bin/env bash
# QLoRA on the GPU machine, in one call, from the repository root (stage with eng/device/stage-qlora.sh
# <dir>, carry <dir>, run `bash <dir>/qlora.sh`): the 4-bit checks (kernels against the CPU reference
# and float64, streamed weights, GPU vs CPU 4-bit training incl. checkpoints offloaded to host memory,
# memory plans), ours at the Llama-3.1-8B shape in bf16 and NF4, the fused 4-bit product against
# dequantize + cuBLASLt, `dotnet build example-project -p:FineTuneDevice=cuda` of the example with
# load_in_4bit twice (the second must be all up to date), and last the Llama-3.3-70B shape in NF4.
# The peer (HF + PEFT) has no 4-bit setup there (no bitsandbytes), so 4-bit is compared with our own
# bf16 run in the same call. At most 8 files come back: env.txt, checks.jsonl, train-cuda.jsonl,
# fourbit-gemm.jsonl, e2e.tar.gz.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
# The trimmed SDK of the e2e build carries the runtime the benchmarks run on.
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
[[ -f "$here/bench/train-cuda.dll" ]] || tar -xJf "$here/bench.tar.xz" -C "$here"
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used --format=csv; python3 -c "import bitsandbytes" 2>&1; echo "bitsandbytes import rc=$?"; } > "$out/env.txt" 2>&1
checks="${CHECKS:-kernel_fourbit_gemm_skinny_nf4_dq,kernel_fourbit_gemm_skinny_fp4,weights_stream_4bit,train_parity_llama_4bit,train_parity_llama_4bit_offload,train_parity_gemma3_4bit,memory_plan_4bit,memory_plan_4bit_offload,train_parity_llama_checkpointing}"
timeout "${CHECKS_S:-90}" dotnet "$here/bench/train-cuda.dll" --checks-only --checks "$checks" 2>&1 | tee "$out/checks.jsonl"
shapes="${SHAPES:-llama3.1-8b:2:2048:1,llama3.1-8b:2:2048:1:nf4}"
timeout "${BENCH_S:-90}" dotnet "$here/bench/train-cuda.dll" --bench-only --warm "${WARM:-2}" --steps "${STEPS:-4}" --shapes "$shapes" 2>&1 | tee "$out/train-cuda.jsonl"
timeout "${GEMM_S:-40}" dotnet "$here/bench/train-cuda.dll" --fourbit-gemm llama3.1-8b "${GEMM_ROWS:-8,16,32,64,128,4096}" 2>&1 | tee "$out/fourbit-gemm.jsonl"
if [[ -f "$here/outputs.tar.xz" ]]; then
  mkdir -p /tmp/e2e
  OUT=/tmp/e2e BUILD_EXAMPLE_DIR="$here" LORA_APPEND="load_in_4bit: true" timeout "${E2E_S:-120}" bash "$here/run.sh" > /tmp/e2e/run.log 2>&1
  echo "e2e rc=$?" | tee -a /tmp/e2e/run.log
  cp example-project/lora.yaml /tmp/e2e/ 2>/dev/null
  tail -5 /tmp/e2e/build2.log; grep -E "memory plan|Trained|e2e rc|up to date" /tmp/e2e/*.log | head -20
  tar czf "$out/e2e.tar.gz" -C /tmp e2e
fi
if [[ -n "${LARGE_SHAPES-llama3.3-70b:2:2048:1:nf4}" ]]; then
  timeout "${LARGE_S:-60}" dotnet "$here/bench/train-cuda.dll" --bench-only --warm 1 --steps 2 --shapes "${LARGE_SHAPES-llama3.3-70b:2:2048:1:nf4}" 2>&1 | tee -a "$out/train-cuda.jsonl"
fi
