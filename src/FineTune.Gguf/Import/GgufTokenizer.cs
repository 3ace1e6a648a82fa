using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Gguf.Format;
using FineTune.Tokenizers;

namespace FineTune.Gguf.Import;

/// <summary>
/// The tokenizer a GGUF file carries (<c>tokenizer.ggml.*</c>), turned back into the Hugging Face
/// <c>tokenizer.json</c> / <c>tokenizer_config.json</c> it was written from, so the file alone is
/// enough to chat with — as it is for Ollama. Byte-level BPE files (<c>tokenizer.ggml.model</c>
/// <c>gpt2</c>) with the pre-tokenizers the exporter names (<c>llama-bpe</c>, <c>qwen2</c>,
/// <c>gpt2</c>) are read; SentencePiece files (<c>llama</c>) store scores instead of merges and are
/// refused (FT4046).
/// </summary>
public static class GgufTokenizer
{
    // Control and user-defined tokens are Hugging Face's added tokens (special or not).
    private const int Control = 3, UserDefined = 4;

    // The split each pre-tokenizer name stands for: the regex of the tokenizer.json files they come from.
    private static readonly Dictionary<string, (string Regex, bool IgnoreMerges, bool Nfc)> PreTokenizers = new(StringComparer.Ordinal)
    {
        ["llama-bpe"] = (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", true, false),
        ["qwen2"] = (@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", false, true),
        ["gpt2"] = (@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", false, false),
    };

    /// <summary>The <c>tokenizer.json</c> and <c>tokenizer_config.json</c> texts of <paramref name="file"/>.</summary>
    public static (string TokenizerJson, string TokenizerConfigJson) ToHuggingFace(GgufFile file)
    {
        var path = file.Path;
        var model = file.Get("tokenizer.ggml.model")?.Value as string;
        if (model != "gpt2")
            throw new FineTuneException("FT4046",
                $"The GGUF's tokenizer is '{model ?? "(none)"}'; chatting with a GGUF file reads byte-level BPE tokenizers (Llama 3, Qwen) only. Chat with the project or its base model folder and adapter instead.", path);
        var pre = file.Get("tokenizer.ggml.pre")?.Value as string ?? "default";
        if (!PreTokenizers.TryGetValue(pre, out var split))
            throw new FineTuneException("FT4046", $"The GGUF's pre-tokenizer '{pre}' is not one this reader knows ({string.Join(", ", PreTokenizers.Keys)}).", path);
        var tokens = file.Get("tokenizer.ggml.tokens")?.Value as string[]
            ?? throw new FineTuneException("FT4046", "The GGUF has no tokenizer.ggml.tokens.", path);
        var types = file.Get("tokenizer.ggml.token_type")?.Value as int[] ?? new int[tokens.Length];
        var merges = file.Get("tokenizer.ggml.merges")?.Value as string[] ?? [];

        var vocab = new JsonObject();
        var added = new JsonArray();
        for (var id = 0; id < tokens.Length; id++)
        {
            // The exporter's filler for embedding rows past the vocabulary.
            if (types[id] == UserDefined && tokens[id] == $"[PAD{id}]") continue;
            if (types[id] is Control or UserDefined)
                added.Add(new JsonObject
                {
                    ["id"] = id, ["content"] = tokens[id], ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                    ["normalized"] = false, ["special"] = types[id] == Control,
                });
            else vocab[tokens[id]] = id;
        }
        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false };
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = split.Nfc ? new JsonObject { ["type"] = "NFC" } : null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = split.Regex }, ["behavior"] = "Isolated", ["invert"] = false },
                    byteLevel.DeepClone()),
            },
            ["post_processor"] = null,
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = split.IgnoreMerges,
                ["vocab"] = vocab,
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode)m).ToArray()),
            },
        };

        string? Token(string key) => file.Get($"tokenizer.ggml.{key}")?.AsUInt64() is { } id && id < (ulong)tokens.Length ? tokens[id] : null;
        bool Flag(string key) => file.Get($"tokenizer.ggml.{key}")?.Value is true;
        var config = new JsonObject
        {
            ["bos_token"] = Token("bos_token_id"),
            ["eos_token"] = Token("eos_token_id"),
            ["pad_token"] = Token("padding_token_id"),
            ["unk_token"] = Token("unknown_token_id"),
            ["add_bos_token"] = Flag("add_bos_token"),
            ["add_eos_token"] = Flag("add_eos_token"),
        };
        if (file.Get("tokenizer.chat_template")?.Value is string template) config["chat_template"] = template;
        return (json.ToJsonString(), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The tokenizer of <paramref name="file"/>.</summary>
    public static Tokenizer Load(GgufFile file)
    {
        var (tokenizer, config) = ToHuggingFace(file);
        return Tokenizer.FromJson(tokenizer, config, file.Path, file.Path);
    }
}
