#!/bin/bash
# Runs on the GPU machine: our engine (CPU) and PyTorch+PEFT (CUDA, fp32) on the same inputs.
# Usage: run.sh <dir with bin/finetune, tok/, data/, lora.yaml, parity.py> <out dir>
set -eu
E=$1; OUT=$2; W=$(mktemp -d)
$E/bin/finetune new-tiny-model --tokenizer $E/tok --out $W/tiny
python3 $E/parity.py init $W/tiny $W/init
$E/bin/finetune train --base-model $W/tiny --data $E/data --config $E/lora.yaml --out $W/ours --checkpoint-dir $W/ck --device cpu --init-adapter $W/init > $OUT/ours-train.log
python3 $E/parity.py compare $W/tiny $W/init $E/data/train.bin $W/ours > $OUT/parity.json
cat $OUT/parity.json | head -c 3000
