using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Core.Diagnostics;
using FineTune.Gguf.Format;
using FineTune.Tokenizers;
using FineTune.Tokenizers.SentencePiece;

namespace FineTune.Gguf.Import;

/// <summary>
/// The tokenizer a GGUF file carries (<c>tokenizer.ggml.*</c>), rebuilt from the file alone so it is
/// enough to chat with — as it is for Ollama. Byte-level BPE files (<c>tokenizer.ggml.model</c>
/// <c>gpt2</c>) with the pre-tokenizers the exporter names (<c>llama-bpe</c>, <c>qwen2</c>,
/// <c>gpt2</c>) become the Hugging Face <c>tokenizer.json</c> they were written from; SentencePiece
/// files (<c>llama</c>: Llama 2, Mistral, Gemma) become a tokenizer built from their pieces, scores
/// and token types that gives llama.cpp's ids and text. Other tokenizer models are refused (FT4046).
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

    /// <summary>The tokenizer of <paramref name="file"/>.</summary>
    /// <exception cref="FineTuneException">FT4046 for a tokenizer model other than <c>gpt2</c> and <c>llama</c>, FT4050 for an unknown byte-level pre-tokenizer, FT4051 for missing or inconsistent tokenizer metadata.</exception>
    public static Tokenizer Load(GgufFile file)
    {
        if (Model(file) == "llama") return Tokenizer.FromSentencePiece(SentencePiece(file), file.Path);
        var (tokenizer, config) = ByteLevelToHuggingFace(file);
        return Tokenizer.FromJson(tokenizer, config, file.Path, file.Path);
    }

    private static string Model(GgufFile file)
    {
        var model = file.Get("tokenizer.ggml.model")?.Value as string;
        return model is "gpt2" or "llama" ? model
            : throw new FineTuneException("FT4046",
                $"The GGUF's tokenizer model is '{model ?? "(none)"}'; chatting with a GGUF file reads byte-level BPE ('gpt2': Llama 3, Qwen) and SentencePiece ('llama': Llama 2, Mistral, Gemma) tokenizers. Chat with the project or its base model folder and adapter instead.", file.Path);
    }

    private static string[] Tokens(GgufFile file) =>
        file.Get("tokenizer.ggml.tokens")?.Value as string[]
            ?? throw new FineTuneException("FT4051", "The GGUF has no tokenizer.ggml.tokens, so it carries no tokenizer to chat with.", file.Path);

    /// <summary>
    /// The SentencePiece vocabulary of a <c>llama</c>-model file, with llama.cpp's defaults for what
    /// is absent: score 0, normal tokens, BOS 1, EOS 2, unknown 0, a BOS added, no EOS, a space prefix.
    /// </summary>
    public static SentencePieceVocabulary SentencePiece(GgufFile file)
    {
        var tokens = Tokens(file);
        var scores = file.Get("tokenizer.ggml.scores")?.Value as float[] ?? new float[tokens.Length];
        var types = file.Get("tokenizer.ggml.token_type")?.Value as int[] ?? Enumerable.Repeat((int)SentencePieceTokenType.Normal, tokens.Length).ToArray();
        if (scores.Length != tokens.Length || types.Length != tokens.Length)
            throw new FineTuneException("FT4051",
                $"The GGUF has {tokens.Length} tokenizer.ggml.tokens but {scores.Length} scores and {types.Length} token types; the tokenizer metadata is damaged.", file.Path);
        int? Id(string key, int? fallback) =>
            file.Get($"tokenizer.ggml.{key}")?.AsUInt64() is { } id && id < (ulong)tokens.Length ? (int)id : fallback;
        bool Flag(string key, bool fallback) => file.Get($"tokenizer.ggml.{key}")?.Value is bool b ? b : fallback;
        return new SentencePieceVocabulary(tokens, scores,
            [.. types.Select(t => Enum.IsDefined((SentencePieceTokenType)t) ? (SentencePieceTokenType)t : SentencePieceTokenType.Undefined)],
            BosTokenId: Id("bos_token_id", 1), EosTokenId: Id("eos_token_id", 2), UnkTokenId: Id("unknown_token_id", 0), PadTokenId: Id("padding_token_id", null),
            AddBosToken: Flag("add_bos_token", true), AddEosToken: Flag("add_eos_token", false), AddSpacePrefix: Flag("add_space_prefix", true));
    }

    /// <summary>
    /// The <c>tokenizer_config.json</c> text of <paramref name="file"/>: its special tokens, whether BOS
    /// and EOS are added, and its chat template.
    /// </summary>
    public static string TokenizerConfigJson(GgufFile file)
    {
        var tokens = Tokens(file);
        var spm = Model(file) == "llama";
        string? Token(string key, int? fallback) =>
            file.Get($"tokenizer.ggml.{key}")?.AsUInt64() is { } id && id < (ulong)tokens.Length ? tokens[id]
            : fallback is { } f && f < tokens.Length ? tokens[f] : null;
        bool Flag(string key, bool fallback) => file.Get($"tokenizer.ggml.{key}")?.Value is bool b ? b : fallback;
        var config = new JsonObject
        {
            ["bos_token"] = Token("bos_token_id", spm ? 1 : null),
            ["eos_token"] = Token("eos_token_id", spm ? 2 : null),
            ["pad_token"] = Token("padding_token_id", null),
            ["unk_token"] = Token("unknown_token_id", spm ? 0 : null),
            ["add_bos_token"] = Flag("add_bos_token", spm),
            ["add_eos_token"] = Flag("add_eos_token", false),
        };
        if (file.Get("tokenizer.chat_template")?.Value is string template) config["chat_template"] = template;
        return config.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The <c>tokenizer.json</c> and <c>tokenizer_config.json</c> texts of a byte-level BPE (<c>gpt2</c>) <paramref name="file"/>.</summary>
    private static (string TokenizerJson, string TokenizerConfigJson) ByteLevelToHuggingFace(GgufFile file)
    {
        var path = file.Path;
        var pre = file.Get("tokenizer.ggml.pre")?.Value as string ?? "default";
        if (!PreTokenizers.TryGetValue(pre, out var split))
            throw new FineTuneException("FT4050",
                $"The GGUF's byte-level pre-tokenizer '{pre}' is not one this reader knows ({string.Join(", ", PreTokenizers.Keys)}); chat with the project or its base model folder and adapter instead.", path);
        var tokens = Tokens(file);
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

        return (json.ToJsonString(), TokenizerConfigJson(file));
    }
}
