#!/usr/bin/env bash
# Stages the quantize bench (bench/quantize, Release, framework-dependent), llama.cpp's libraries from
# npm @node-llama-cpp/linux-x64 and a .NET runtime into DEST (default <main>/.gpu/q8build) for one
# device call: carry [".gpu/q8build"], command `bash .gpu/q8build/quantize.sh`.
# Usage: stage-quantize.sh [DEST] [RUNTIME_TARBALL]
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="${1:-/work/main/.gpu/q8build}"
runtime="${2:-/work/main/.gpu/gpu/dotnet-rt.tar.xz}"
mkdir -p "$dest"
dotnet build -c Release "$repo/bench/quantize" -v q -nologo
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$work/quant/node_modules/@node-llama-cpp/linux-x64/bins"
cp -r "$repo/bench/quantize/bin/Release/net10.0/." "$work/quant/"
cp "$repo/node_modules/@node-llama-cpp/linux-x64/package.json" "$work/quant/node_modules/@node-llama-cpp/linux-x64/"
cp -r "$repo/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64" "$work/quant/node_modules/@node-llama-cpp/linux-x64/bins/"
tar cf - -C "$work" quant | xz -T0 -6 > "$dest/quant.tar.xz"
cp "$runtime" "$dest/dotnet-rt.tar.xz"
cp "$(dirname "$0")/quantize.sh" "$dest/quantize.sh"
git -C "$repo" rev-parse HEAD > "$dest/commit.txt"
du -ch "$dest"/* | tail -1
