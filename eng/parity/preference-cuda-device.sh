#!/usr/bin/env bash
# Runs on the GPU machine from the folder eng/parity/stage-preference-cuda.sh staged; results under $OUT
# (at most 8 files come back, so the logs share one): the DPO/ORPO GPU-vs-CPU checks (all checks:
# train-cuda.sh checks), PyTorch + PEFT against our CPU hinge run, and against the CUDA engine trained
# through `finetune train --device cuda` for each preference run.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
log="$out/log.txt"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
if [[ ! -x /tmp/dotnet/dotnet ]]; then mkdir -p /tmp/dotnet && tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet; fi
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$log" 2>&1
dotnet "$here/bench/train-cuda.dll" --checks-only \
  --checks train_parity_dpo_sigmoid,train_parity_dpo_ipo_start_adapter,train_parity_dpo_hinge_4bit,train_parity_orpo > "$out/checks.jsonl" 2>> "$log"
echo "checks rc=$?" | tee -a "$log"
python3 - "$out/checks.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    if l.startswith("{") and '"check"' in l:
        r = json.loads(l); print(r["name"], "passed" if r["passed"] else "FAILED", r["max_rel_error"])
PY
python3 "$here/dpo_parity.py" "$here/tiny" "$here/sft" "$here/pref" "$here/ours-dpo-hinge" dpo hinge 0.1 > "$out/parity-dpo-hinge.json" 2>> "$log"
echo "parity hinge (cpu) rc=$?" | tee -a "$log"
for c in dpo-sigmoid dpo-ipo dpo-hinge orpo-sigmoid; do
  t=${c%-*}; l=${c#*-}
  dotnet "$here/cli/finetune.dll" train --base-model "$here/tiny" --data "$here/pref" --config "$here/$c.yaml" --out "/tmp/cuda-$c" \
    --checkpoint-dir "/tmp/ck-$c" --device cuda --init-adapter "$here/sft" >> "$log" 2>&1
  echo "cuda $c rc=$?" | tee -a "$log"
  python3 "$here/dpo_parity.py" "$here/tiny" "$here/sft" "$here/pref" "/tmp/cuda-$c" "$t" "$l" 0.1 > "$out/parity-cuda-$c.json" 2>> "$log"
  echo "parity cuda $c rc=$?" | tee -a "$log"
done
for f in "$out"/parity-*.json; do
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-1], {k: r[k] for k in r if k.startswith('max_')})" "$f"
done
