#!/usr/bin/env bash
# Stages what eng/device/nccl.sh needs into one folder (default .gpu/nccl, ignored) to carry to a GPU
# machine: the .NET runtime, bench/nccl and the CLI (both framework-dependent).
set -euo pipefail
dest="${1:-.gpu/nccl}"
mkdir -p "$dest"
rm -rf "$dest/bench" "$dest/cli"
dotnet publish bench/nccl -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/bench" | grep -E " error " || true
dotnet publish src/FineTune.Cli -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/cli" | grep -E " error " || true
dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
runtime="$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)"
[[ -f "$dest/dotnet-rt.tar.xz" ]] || tar -C "$dotnet_root" -cJf "$dest/dotnet-rt.tar.xz" dotnet host/fxr "shared/Microsoft.NETCore.App/$(basename "$runtime")"
cp eng/device/nccl.sh "$dest/"
du -sh "$dest"
