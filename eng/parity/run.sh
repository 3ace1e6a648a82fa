#!/bin/bash
# Runs on the GPU machine: our engine (CPU) and PyTorch+PEFT (CUDA, fp32) on the same inputs.
# Usage: run.sh <dir with bin/finetune, tok/, data/, lora.yaml, parity.py> <out dir>
# FINETUNE overrides the CLI (e.g. "dotnet finetune.dll"); TINY_ARGS adds new-tiny-model options
# (e.g. "--architecture gemma3_text").
set -eu
E=$1; OUT=$2; W=$(mktemp -d)
FINETUNE=${FINETUNE:-$E/bin/finetune}
$FINETUNE new-tiny-model --tokenizer $E/tok --out $W/tiny ${TINY_ARGS:-}
python3 $E/parity.py init $W/tiny $W/init
$FINETUNE train --base-model $W/tiny --data $E/data --config $E/lora.yaml --out $W/ours --checkpoint-dir $W/ck --device cpu --init-adapter $W/init > $OUT/ours-train.log
python3 $E/parity.py compare $W/tiny $W/init $E/data/train.bin $W/ours > $OUT/parity.json
cat $OUT/parity.json | head -c 3000
