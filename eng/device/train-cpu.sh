#!/usr/bin/env bash
# Runs on the GPU machine's CPU from the folder eng/device/stage-train-cpu.sh filled. Steps:
#   bench    ours (bench/train-cpu) on both shapes at THREADS (default 16), then the PyTorch CPU peer
#            (torch_cpu_lora.py, same thread count) in the same call: train-cpu.jsonl; a second `bench`
#            in the same call (`bench bench profile`) writes train-cpu-2.jsonl, and so on, so that the
#            ratio's spread between runs is visible (the peer moves more than ours on this machine)
#   rounds   ROUNDS (default 3) alternating rounds in one call, each the peer (both shapes) then ours (both
#            shapes): rounds.jsonl (every line tagged with its round) and rounds-summary.json (medians,
#            the ratio of the medians and each round's ratio, by eng/device/rounds_summary.py)
#   base     the bench built from another commit (stage with BASE=<commit>), both shapes: base.jsonl
#   profile  ours again with --profile (where each step's wall time goes): profile.jsonl
#   scaling  ours at 2, 4 and 8 threads: scaling.jsonl
#   parity   PEFT parity (eng/parity/run.sh): our CPU engine vs PyTorch + PEFT fp32: parity.json
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/out}"; mkdir -p "$out"
threads="${THREADS:-16}"
mkdir -p /tmp/dotnet /tmp/tcb /tmp/cli
[[ -x /tmp/dotnet/dotnet ]] || tar -xJf "$here/dotnet-rt.tar.xz" -C /tmp/dotnet
tar -xJf "$here/bench.tar.xz" -C /tmp/tcb
export DOTNET_ROOT=/tmp/dotnet PATH="/tmp/dotnet:$PATH" DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
(lscpu; nproc; free -g; python3 -c "import torch; print(torch.__version__, torch.__config__.parallel_info())") > "$out/machine.txt" 2>&1
bench() { timeout 150 dotnet /tmp/tcb/train-cpu-bench.dll "$@"; }
runs=0
for step in "$@"; do
  case "$step" in
    bench)
      runs=$((runs + 1)); name="train-cpu$([[ $runs -gt 1 ]] && echo "-$runs")"
      for s in tiny-llama3vocab smollm2-135m; do bench $s "$threads"; done > "$out/$name.jsonl" 2> "$out/$name.err"
      python3 -c "import resource,subprocess,sys,json; subprocess.run(sys.argv[1:],check=True); print(json.dumps(dict(peer_peak_rss_bytes=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024)))" \
        python3 "$here/torch_cpu_lora.py" "$threads" >> "$out/$name.jsonl" 2>> "$out/$name.err"
      cat "$out/$name.jsonl" ;;
    rounds)
      for r in $(seq 1 "${ROUNDS:-3}"); do
        python3 "$here/torch_cpu_lora.py" "$threads" | sed "s/^{/{\"round\": $r, /"
        for s in tiny-llama3vocab smollm2-135m; do bench $s "$threads" | sed "s/^{/{\"round\": $r, /"; done
      done > "$out/rounds.jsonl" 2> "$out/rounds.err"
      python3 "$here/rounds_summary.py" "$out/rounds.jsonl" | tee "$out/rounds-summary.json" ;;
    base)
      mkdir -p /tmp/tcb-base; tar -xJf "$here/bench-base.tar.xz" -C /tmp/tcb-base
      for s in tiny-llama3vocab smollm2-135m; do timeout 150 dotnet /tmp/tcb-base/train-cpu-bench.dll $s "$threads"; done > "$out/base.jsonl" 2>&1
      cat "$out/base.jsonl" ;;
    profile)
      for s in tiny-llama3vocab smollm2-135m; do bench $s "$threads" --profile; done > "$out/profile.jsonl" 2>&1 ;;
    scaling)
      for t in 2 4 8; do bench tiny-llama3vocab $t; bench smollm2-135m $t; done > "$out/scaling.jsonl" 2>&1; cat "$out/scaling.jsonl" ;;
    parity)
      tar -xJf "$here/cli.tar.xz" -C /tmp/cli; tar -xJf "$here/tok.tar.xz" -C "$here"
      FINETUNE="/tmp/dotnet/dotnet /tmp/cli/finetune.dll" timeout 200 bash "$here/run.sh" "$here" "$out" > "$out/parity.log" 2>&1
      tail -c 1500 "$out/parity.json" ;;
  esac
done
