#!/usr/bin/env bash
# Runs on the GPU machine from the folder eng/parity/stage-preference-cuda.sh staged; results under $OUT.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
OUT="$out" bash "$here/train-cuda.sh" checks > "$out/checks.log" 2>&1; echo "checks rc=$?"
python3 - "$out/checks.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("checks passed", sum(1 for r in rows if r.get("passed")), "of", len(rows))
for r in rows:
    if not r.get("passed") or "parity_dpo" in str(r.get("name")) or "orpo" in str(r.get("name")):
        print(r.get("name"), r.get("passed"), str(r.get("detail"))[:700])
PY
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH"
site=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH="$site/cu13/lib:$site/cudnn/lib:$site/nccl/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}"
export FINETUNE_CUDA_CACHE_DIR=/tmp/finetune-kernel-cache
# PyTorch against our CPU engine: the hinge loss (the other three are committed).
python3 "$here/dpo_parity.py" "$here/tiny" "$here/sft" "$here/pref" "$here/ours-dpo-hinge" dpo hinge 0.1 > "$out/parity-dpo-hinge.json" 2> "$out/parity.err"
echo "hinge cpu rc=$?"
# PyTorch against the CUDA engine (bf16 activations), through the CLI as a build runs it.
for c in dpo-sigmoid dpo-ipo dpo-hinge orpo-sigmoid; do
  t=${c%-*}; l=${c#*-}
  dotnet "$here/cli/finetune.dll" train --base-model "$here/tiny" --data "$here/pref" --config "$here/$c.yaml" --out "/tmp/cuda-$c" \
    --checkpoint-dir "/tmp/ck-$c" --device cuda --init-adapter "$here/sft" > "$out/cuda-$c.log" 2>&1
  echo "cuda $c rc=$?"
  python3 "$here/dpo_parity.py" "$here/tiny" "$here/sft" "$here/pref" "/tmp/cuda-$c" "$t" "$l" 0.1 > "$out/parity-cuda-$c.json" 2>> "$out/parity.err"
  echo "parity cuda $c rc=$?"
done
for f in "$out"/parity-*.json; do
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1].split('/')[-1], {k: r[k] for k in r if k.startswith('max_')})" "$f"
done
tail -5 "$out/parity.err"
