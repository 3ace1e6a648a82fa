#!/usr/bin/env bash
# Stages what eng/device/qlora.sh needs into one folder to carry to the GPU machine (default
# .gpu/qlora; .gpu/ is ignored): the e2e build's trimmed SDK, tasks, CLI and example restore output
# (eng/device/build-example/pack.sh, from a clean clone of HEAD; its SDK's runtime also runs the
# benchmarks) and bench/train-cuda, framework-dependent. About 57 MB of the 64 MiB a call carries.
set -euo pipefail
dest="$(mkdir -p "${1:-.gpu/qlora}" && cd "${1:-.gpu/qlora}" && pwd)"
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
bash "$repo/eng/device/build-example/pack.sh" "$dest"
rm -rf "$dest/bench" "$dest/bench.tar.xz"
dotnet publish "$repo/bench/train-cuda" -c Release -r linux-x64 --self-contained false -p:DebugType=none -p:GenerateDocumentationFile=false -o "$dest/bench" | grep -E " error " || true
# Compressed: with the SDK the call's 64 MiB is nearly used up.
tar cJf "$dest/bench.tar.xz" -C "$dest" bench && rm -rf "$dest/bench"
cp "$repo/eng/device/qlora.sh" "$dest/"
du -sh "$dest"
