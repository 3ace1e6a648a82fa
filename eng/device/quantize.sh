#!/usr/bin/env bash
# Runs on the GPU machine's host CPU (after stage-quantize.sh): the quantize bench against
# llama_model_quantize on all 16 cores with 16 threads, then pinned to two cores (taskset -c 0,1)
# with 2 threads, the quiet counterpart of the shared 2-core machine. JSON lines into $OUT.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
w=/tmp/q8w; rm -rf "$w"; mkdir -p "$w/dotnet"
tar -C "$w/dotnet" -xJf "$here/dotnet-rt.tar.xz"
tar -C "$w" -xJf "$here/quant.tar.xz"
export DOTNET_ROOT="$w/dotnet" PATH="$w/dotnet:$PATH" DOTNET_CLI_TELEMETRY_OPTOUT=1
out="${OUT:-/tmp/out}"; mkdir -p "$out"
{ lscpu; nproc; free -g; uptime; echo "commit $(cat "$here/commit.txt")"; } > "$out/machine.txt" 2>&1
cd "$w/quant"
dotnet quantize-bench.dll --threads 16 --hidden 1024 --layers 4 --repeat "${REPEAT16:-5}" | tee "$out/h200-host-16threads.jsonl"
taskset -c 0,1 dotnet quantize-bench.dll --threads 2 --hidden 1024 --layers 4 --repeat "${REPEAT2:-3}" --types Q8_0 | tee "$out/h200-host-2cores-2threads.jsonl"
taskset -c 0,1 dotnet quantize-bench.dll --threads 2 --hidden 1024 --layers 4 --repeat 1 --types Q4_K_M | tee -a "$out/h200-host-2cores-2threads.jsonl"
