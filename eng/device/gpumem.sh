#!/usr/bin/env bash
# #17's memory, torch.compile and single-attention-launch measurements in one call on the GPU machine
# (stage with eng/device/stage-train-cuda.sh <dir>, then cp eng/device/gpumem.sh <dir>; carry <dir>;
# run `bash <dir>/gpumem.sh`):
#   1. the torch.compile peer (COMPILE_SETUPS at COMPILE_SHAPES) starts in the background: inductor
#      compiles on the CPU while our checks run; its timed steps wait until the checks are done
#      (FT_TIMED_AFTER), and the whole of it is stopped after COMPILE_S seconds;
#   2. train-cuda.sh checks (every training and kernel check);
#   3. ours (SHAPES, SFT): gradient_checkpointing true vs offload at 1B and 8B, the realistic-length SFT
#      workload with one attention launch per batch and per run (:runs), and the compile shapes;
#   4. the peer's bf16 setup at PEER_SHAPES, then the ratios against every peer line of the call.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
ready=/tmp/gpumem-checks-done
rm -f "$ready"
PYTHONUNBUFFERED=1 FT_TIMED_AFTER="$ready" timeout "${COMPILE_S:-240}" python3 "$here/hf_peft_lora.py" "${COMPILE_SETUPS:-compile-layers}" \
  "${COMPILE_SHAPES:-llama3.2-1b:4:2048:0,smollm2-135m:8:2048:0}" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft-compile.err" &
compile=$!
start=$SECONDS
OUT="$out" bash "$here/train-cuda.sh" checks > "$out/checks.log" 2>&1
echo "checks rc=$? in $((SECONDS - start)) s" | tee -a "$out/steps.txt"
touch "$ready"
wait $compile
echo "compile rc=$? at $((SECONDS - start)) s" | tee -a "$out/steps.txt"
d="$here"
OUT="$out" SHAPES="${SHAPES:-llama3.2-1b:4:2048:0,smollm2-135m:8:2048:0,llama3.2-1b:4:2048:1,llama3.2-1b:4:2048:offload,llama3.1-8b:2:2048:1,llama3.1-8b:2:2048:offload}" \
  SFT="${SFT:-sft:llama3.2-1b:0:$d/sft-lengths.json,sft:llama3.2-1b:0:$d/sft-lengths.json:runs,sft:llama3.2-1b:1:$d/sft-lengths.json,sft:llama3.2-1b:1:$d/sft-lengths.json:runs}" \
  bash "$here/train-cuda.sh" bench > "$out/bench.log" 2>&1
echo "bench rc=$? at $((SECONDS - start)) s" | tee -a "$out/steps.txt"
PYTHONUNBUFFERED=1 timeout "${PEER_S:-120}" python3 "$here/hf_peft_lora.py" bf16 \
  "${PEER_SHAPES:-sft:llama3.2-1b:0:$d/sft-lengths.json,sft:llama3.2-1b:1:$d/sft-lengths.json,llama3.2-1b:4:2048:0,llama3.1-8b:2:2048:1,llama3.2-1b:4:2048:1}" >> "$out/hf-peft.jsonl" 2>> "$out/hf-peft.err"
echo "peer rc=$? at $((SECONDS - start)) s" | tee -a "$out/steps.txt"
python3 "$here/train-cuda-ratios.py" "$out/train-cuda.jsonl" "$out/hf-peft.jsonl" > "$out/ratios.jsonl"
grep -h '"passed": false\|"passed":false\|FAILED' "$out/checks.jsonl" | head -20
grep -c '"passed":true' "$out/checks.jsonl"
cat "$out/steps.txt" "$out/ratios.jsonl"; grep -h tokens_per_s "$out/train-cuda.jsonl" | cut -c1-400; cat "$out/hf-peft.jsonl" | cut -c1-300; tail -3 "$out/hf-peft-compile.err"
