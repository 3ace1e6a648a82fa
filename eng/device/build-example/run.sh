#!/usr/bin/env bash
# Runs on the GPU machine from the repository root (after pack.sh, with .gpu/build-example
# carried): unpacks the trimmed SDK and the prebuilt tasks/CLI, then runs the user's command,
# `dotnet build example-project -p:FineTuneDevice=cuda`, twice (the second must be a no-op).
# --no-restore and BuildProjectReferences=false only because the machine has no network and no
# compilers; the pipeline that runs is exactly the one a user gets.
set -uo pipefail
# BUILD_EXAMPLE_DIR: where pack.sh put its files; LORA_APPEND: lines added to the example's lora.yaml
# first (e.g. "load_in_4bit: true": the QLoRA build, eng/device/qlora.sh).
here="${BUILD_EXAMPLE_DIR:-.gpu/build-example}"
out="${OUT:-/tmp/out}"
mkdir -p "$out" /tmp/dotnet /tmp/nuget /tmp/home
[ -x /tmp/dotnet/dotnet ] && [ -d /tmp/dotnet/sdk ] || tar xJf "$here/dotnet.tar.xz" -C /tmp/dotnet
tar xJf "$here/nuget.tar.xz" -C /tmp/nuget
tar xJf "$here/outputs.tar.xz" -C .
export HOME=/tmp/home DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH" NUGET_PACKAGES=/tmp/nuget
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 MSBUILDDISABLENODEREUSE=1
[ -n "${LORA_APPEND:-}" ] && printf '\n%s\n' "$LORA_APPEND" >> example-project/lora.yaml
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
echo "commit $(cat $here/commit.txt)" | tee -a "$out/gpu.txt"
build() {
  dotnet build example-project -p:FineTuneDevice="${FINETUNE_DEVICE:-cuda}" --no-restore -p:BuildProjectReferences=false -tl:off -v:m "$@"
}
set -o pipefail
time build 2>&1 | tee "$out/build1.log"; rc1=${PIPESTATUS[0]}
time build 2>&1 | tee "$out/build2.log"; rc2=${PIPESTATUS[0]}
ls -la example-project/bin/Debug | tee "$out/artifacts.txt"
cp example-project/bin/Debug/model-manifest.json example-project/bin/Debug/Modelfile "$out/" 2>/dev/null
echo "build1 rc=$rc1 build2 rc=$rc2"
[ "$rc1" = 0 ] && [ "$rc2" = 0 ]
