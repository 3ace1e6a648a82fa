#!/usr/bin/env bash
# Stages what eng/device/train-cuda.sh needs into one folder (default .gpu/gpu, which
# .git/info/exclude should ignore) to carry to the GPU machine: the .NET runtime, bench/train-cuda
# and bench/cuda-kernels (framework-dependent), the peer script and the SFT workload's lengths.
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
cp eng/device/train-cuda.sh eng/device/train-cuda-ratios.py bench/train-cuda/peer/hf_peft_lora.py bench/train-cuda/sft-lengths.json "$dest/"
du -sh "$dest"
