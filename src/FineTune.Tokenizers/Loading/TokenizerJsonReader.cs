using System.Text;
using Decoder = FineTune.Tokenizers.Decoding.Decoder;
using System.Text.Json;
using System.Text.RegularExpressions;
using FineTune.Core.Diagnostics;
using FineTune.Tokenizers.Decoding;
using FineTune.Tokenizers.Models;
using FineTune.Tokenizers.Normalization;
using FineTune.Tokenizers.PostProcessing;
using FineTune.Tokenizers.PreTokenization;

namespace FineTune.Tokenizers.Loading;

/// <summary>
/// Reads Hugging Face's tokenizer.json. Every construct it does not implement is an FT2003 error
/// naming the construct and its JSON path, so a tokenizer never silently encodes differently.
/// </summary>
internal sealed class TokenizerJsonReader
{
    private readonly string _file;

    private TokenizerJsonReader(string file) => _file = file;

    public static TokenizerParts Read(string json, string file, string? configJson, string? configFile)
    {
        var reader = new TokenizerJsonReader(file);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new FineTuneException("FT2002", $"tokenizer.json is not valid JSON: {e.Message}", file, (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1);
        }
        using (doc)
        {
            var config = configJson is null ? null : TokenizerConfigReader.Read(configJson, configFile!);
            return reader.ReadRoot(doc.RootElement, config);
        }
    }

    private FineTuneException Malformed(string path, string what) =>
        new("FT2002", $"tokenizer.json is malformed at {path}: {what}.", _file);

    private FineTuneException Unsupported(string path, string what) =>
        new("FT2003", $"tokenizer.json uses {what} at {path}, which FineTune.Tokenizers does not support.", _file);

    private TokenizerParts ReadRoot(JsonElement root, TokenizerConfig? config)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Malformed("$", "the document is not an object");
        if (!root.TryGetProperty("model", out var modelJson) || modelJson.ValueKind != JsonValueKind.Object)
            throw Malformed("$.model", "the model is missing");

        var vocab = ReadVocab(modelJson);
        var addedTokens = ReadAddedTokens(root);
        foreach (var t in addedTokens) vocab.TryAdd(t.Content, t.Id);

        var normalizer = Optional(root, "normalizer") is { } n ? ReadNormalizer(n, "$.normalizer") : null;
        var preTokenizer = Optional(root, "pre_tokenizer") is { } p ? ReadPreTokenizer(p, "$.pre_tokenizer") : null;
        var byteLevel = UsesByteLevel(preTokenizer);
        var model = ReadModel(modelJson, vocab, byteLevel);
        var postProcessor = Optional(root, "post_processor") is { } pp ? ReadPostProcessor(pp, "$.post_processor", vocab) : null;
        var decoder = Optional(root, "decoder") is { } d ? ReadDecoder(d, "$.decoder") : null;

        var unk = String(modelJson, "unk_token", "$.model");
        return new TokenizerParts
        {
            Model = model,
            Vocab = vocab,
            AddedTokens = addedTokens,
            Normalizer = normalizer,
            PreTokenizer = preTokenizer,
            PostProcessor = postProcessor,
            Decoder = decoder,
            Kind = byteLevel ? TokenizerModelKind.ByteLevelBpe : TokenizerModelKind.SentencePieceBpe,
            BosToken = config?.BosToken,
            EosToken = config?.EosToken,
            PadToken = config?.PadToken,
            UnkToken = config?.UnkToken ?? unk,
            AddBosToken = config?.AddBosToken,
            AddEosToken = config?.AddEosToken,
        };
    }

    private static JsonElement? Optional(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private string? String(JsonElement obj, string name, string path)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw Malformed($"{path}.{name}", "expected a string");
        return v.GetString();
    }

    private bool Bool(JsonElement obj, string name, string path, bool fallback)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind is not (JsonValueKind.True or JsonValueKind.False)) throw Malformed($"{path}.{name}", "expected true or false");
        return v.GetBoolean();
    }

    private int Int(JsonElement obj, string name, string path, int fallback)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i)) throw Malformed($"{path}.{name}", "expected an integer");
        return i;
    }

    private string Type(JsonElement obj, string path)
    {
        if (obj.ValueKind != JsonValueKind.Object) throw Malformed(path, "expected an object");
        return String(obj, "type", path) ?? throw Malformed(path, "\"type\" is missing");
    }

    private Dictionary<string, int> ReadVocab(JsonElement model)
    {
        if (!model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
            throw Malformed("$.model.vocab", "expected an object of token -> id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in v.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                throw Malformed($"$.model.vocab[\"{entry.Name}\"]", "expected a non-negative integer id");
            vocab[entry.Name] = id;
        }
        return vocab;
    }

    private List<AddedToken> ReadAddedTokens(JsonElement root)
    {
        var result = new List<AddedToken>();
        if (Optional(root, "added_tokens") is not { } arr) return result;
        if (arr.ValueKind != JsonValueKind.Array) throw Malformed("$.added_tokens", "expected an array");
        var i = 0;
        foreach (var t in arr.EnumerateArray())
        {
            var path = $"$.added_tokens[{i++}]";
            if (t.ValueKind != JsonValueKind.Object) throw Malformed(path, "expected an object");
            var id = Int(t, "id", path, -1);
            var content = String(t, "content", path);
            if (id < 0 || content is null) throw Malformed(path, "\"id\" and \"content\" are required");
            var special = Bool(t, "special", path, false);
            result.Add(new AddedToken(id, content, special,
                LStrip: Bool(t, "lstrip", path, false),
                RStrip: Bool(t, "rstrip", path, false),
                // Hugging Face's default: special tokens are matched in raw text, others in normalized text.
                Normalized: Bool(t, "normalized", path, !special),
                SingleWord: Bool(t, "single_word", path, false)));
        }
        return result;
    }

    private BpeModel ReadModel(JsonElement model, Dictionary<string, int> vocab, bool byteLevel)
    {
        var type = String(model, "type", "$.model") ?? "BPE";
        if (type != "BPE")
            throw Unsupported("$.model.type", $"the \"{type}\" model (supported: \"BPE\", byte-level as in Llama 3, Qwen and GPT-2, or SentencePiece-style with byte fallback as in Llama 2, Mistral and Gemma)");
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() > 0)
            throw Unsupported("$.model.dropout", "BPE dropout (random segmentation)");

        var merges = ReadMerges(model);
        var unkToken = String(model, "unk_token", "$.model");
        int? unkId = null;
        if (unkToken is not null)
        {
            if (!vocab.TryGetValue(unkToken, out var id)) throw Malformed("$.model.unk_token", $"\"{unkToken}\" is not in the vocabulary");
            unkId = id;
        }
        var options = new BpeOptions(
            ByteLevel: byteLevel,
            ByteFallback: Bool(model, "byte_fallback", "$.model", false),
            UnkId: unkId,
            FuseUnk: Bool(model, "fuse_unk", "$.model", false),
            IgnoreMerges: Bool(model, "ignore_merges", "$.model", false),
            ContinuingSubwordPrefix: String(model, "continuing_subword_prefix", "$.model") ?? "",
            EndOfWordSuffix: String(model, "end_of_word_suffix", "$.model") ?? "");
        return new BpeModel(vocab, merges, options, what => Malformed("$.model.merges", what));
    }

    private List<(string, string)> ReadMerges(JsonElement model)
    {
        var result = new List<(string, string)>();
        if (Optional(model, "merges") is not { } merges) return result;
        if (merges.ValueKind != JsonValueKind.Array) throw Malformed("$.model.merges", "expected an array");
        var i = 0;
        foreach (var m in merges.EnumerateArray())
        {
            // Two encodings exist: "a b" (tokenizers < 0.20) and ["a", "b"] (which allows spaces in tokens).
            if (m.ValueKind == JsonValueKind.String)
            {
                var s = m.GetString()!;
                var space = s.IndexOf(' ');
                if (space < 0 || s.IndexOf(' ', space + 1) >= 0)
                    throw Malformed($"$.model.merges[{i}]", $"\"{s}\" is not two tokens separated by one space");
                result.Add((s[..space], s[(space + 1)..]));
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                result.Add((m[0].GetString()!, m[1].GetString()!));
            }
            else throw Malformed($"$.model.merges[{i}]", "expected \"a b\" or [\"a\", \"b\"]");
            i++;
        }
        return result;
    }

    private (string? Literal, Regex? Regex) ReadPattern(JsonElement obj, string path)
    {
        if (!obj.TryGetProperty("pattern", out var p) || p.ValueKind != JsonValueKind.Object)
            throw Malformed($"{path}.pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
        if (p.TryGetProperty("String", out var s) && s.ValueKind == JsonValueKind.String) return (s.GetString()!, null);
        if (p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String) return (null, CompileRegex(r.GetString()!, $"{path}.pattern.Regex"));
        throw Malformed($"{path}.pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
    }

    private Regex CompileRegex(string pattern, string path)
    {
        try
        {
            return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
        }
        catch (ArgumentException e)
        {
            throw new FineTuneException("FT2004", $"tokenizer.json regex at {path} cannot be used with .NET regular expressions ({e.Message}): {pattern}", _file);
        }
    }

    private Normalizer ReadNormalizer(JsonElement n, string path)
    {
        var type = Type(n, path);
        switch (type)
        {
            case "Sequence":
                return new SequenceNormalizer(Items(n, "normalizers", path).Select((x, i) => ReadNormalizer(x, $"{path}.normalizers[{i}]")).ToList());
            case "NFC": return new UnicodeNormalizer(NormalizationForm.FormC);
            case "NFD": return new UnicodeNormalizer(NormalizationForm.FormD);
            case "NFKC": return new UnicodeNormalizer(NormalizationForm.FormKC);
            case "NFKD": return new UnicodeNormalizer(NormalizationForm.FormKD);
            case "Lowercase": return new LowercaseNormalizer();
            case "StripAccents": return new StripAccentsNormalizer();
            case "Prepend": return new PrependNormalizer(String(n, "prepend", path) ?? throw Malformed(path, "\"prepend\" is missing"));
            case "Strip": return new StripNormalizer(Bool(n, "strip_left", path, true), Bool(n, "strip_right", path, true));
            case "Replace":
            {
                var (literal, regex) = ReadPattern(n, path);
                return new ReplaceNormalizer(literal, regex, String(n, "content", path) ?? throw Malformed(path, "\"content\" is missing"));
            }
            default:
                throw Unsupported($"{path}.type", $"the \"{type}\" normalizer");
        }
    }

    private List<JsonElement> Items(JsonElement obj, string name, string path)
    {
        if (!obj.TryGetProperty(name, out var arr) || arr.ValueKind != JsonValueKind.Array)
            throw Malformed($"{path}.{name}", "expected an array");
        return arr.EnumerateArray().ToList();
    }

    private SplitBehavior Behavior(JsonElement obj, string path, SplitBehavior fallback)
    {
        var b = String(obj, "behavior", path);
        if (b is null) return fallback;
        return b switch
        {
            "Removed" => SplitBehavior.Removed,
            "Isolated" => SplitBehavior.Isolated,
            "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
            "MergedWithNext" => SplitBehavior.MergedWithNext,
            "Contiguous" => SplitBehavior.Contiguous,
            _ => throw Unsupported($"{path}.behavior", $"the split behavior \"{b}\""),
        };
    }

    private PreTokenizer ReadPreTokenizer(JsonElement p, string path)
    {
        var type = Type(p, path);
        switch (type)
        {
            case "Sequence":
            {
                var steps = Items(p, "pretokenizers", path).Select((x, i) => ReadPreTokenizer(x, $"{path}.pretokenizers[{i}]")).ToList();
                for (var i = 0; i < steps.Count - 1; i++)
                    if (UsesByteLevel(steps[i]))
                        throw Unsupported($"{path}.pretokenizers[{i + 1}]", "a pre-tokenizer after ByteLevel (it would see byte characters)");
                return new SequencePreTokenizer(steps);
            }
            case "Split":
            {
                if (!p.TryGetProperty("pattern", out var pattern) || pattern.ValueKind != JsonValueKind.Object)
                    throw Malformed($"{path}.pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
                IPatternMatcher matcher;
                if (pattern.TryGetProperty("String", out var lit) && lit.ValueKind == JsonValueKind.String)
                    matcher = new LiteralMatcher(lit.GetString()!);
                else if (pattern.TryGetProperty("Regex", out var rx) && rx.ValueKind == JsonValueKind.String)
                    matcher = rx.GetString() switch
                    {
                        Gpt4StyleMatcher.Llama3Pattern => new Gpt4StyleMatcher(3),
                        Gpt4StyleMatcher.QwenPattern => new Gpt4StyleMatcher(1),
                        Gpt2StyleMatcher.Pattern => new Gpt2StyleMatcher(),
                        var other => new RegexMatcher(CompileRegex(other!, $"{path}.pattern.Regex")),
                    };
                else throw Malformed($"{path}.pattern", "expected {\"String\": ...} or {\"Regex\": ...}");
                return new SplitPreTokenizer(matcher, Behavior(p, path, SplitBehavior.Isolated), Bool(p, "invert", path, false));
            }
            case "ByteLevel":
                return new ByteLevelPreTokenizer(Bool(p, "add_prefix_space", path, true), Bool(p, "use_regex", path, true));
            case "Metaspace":
            {
                var replacement = String(p, "replacement", path) ?? "\u2581";
                if (replacement.Length != 1) throw Unsupported($"{path}.replacement", $"a Metaspace replacement of {replacement.Length} characters");
                return new MetaspacePreTokenizer(replacement[0], Scheme(p, path), Bool(p, "split", path, true));
            }
            case "Digits": return new DigitsPreTokenizer(Bool(p, "individual_digits", path, false));
            case "Punctuation": return new PunctuationPreTokenizer(Behavior(p, path, SplitBehavior.Isolated));
            case "Whitespace": return new WhitespacePreTokenizer();
            case "WhitespaceSplit": return new WhitespaceSplitPreTokenizer();
            default:
                throw Unsupported($"{path}.type", $"the \"{type}\" pre-tokenizer");
        }
    }

    private PrependScheme Scheme(JsonElement obj, string path)
    {
        var scheme = String(obj, "prepend_scheme", path);
        if (scheme is null) return Bool(obj, "add_prefix_space", path, true) ? PrependScheme.Always : PrependScheme.Never;
        return scheme switch
        {
            "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            _ => throw Unsupported($"{path}.prepend_scheme", $"the prepend scheme \"{scheme}\""),
        };
    }

    private static bool UsesByteLevel(PreTokenizer? p) => p switch
    {
        ByteLevelPreTokenizer => true,
        SequencePreTokenizer s => s.Steps.Any(UsesByteLevel),
        _ => false,
    };

    private Decoder ReadDecoder(JsonElement d, string path)
    {
        var type = Type(d, path);
        switch (type)
        {
            case "Sequence":
                return new SequenceDecoder(Items(d, "decoders", path).Select((x, i) => ReadDecoder(x, $"{path}.decoders[{i}]")).ToList());
            case "ByteLevel": return new ByteLevelDecoder();
            case "ByteFallback": return new ByteFallbackDecoder();
            case "Fuse": return new FuseDecoder();
            case "Strip":
            {
                var content = String(d, "content", path) ?? " ";
                if (content.Length != 1) throw Unsupported($"{path}.content", $"a Strip decoder content of {content.Length} characters");
                return new StripDecoder(content[0], Int(d, "start", path, 0), Int(d, "stop", path, 0));
            }
            case "Replace":
            {
                var (literal, regex) = ReadPattern(d, path);
                return new ReplaceDecoder(literal, regex, String(d, "content", path) ?? throw Malformed(path, "\"content\" is missing"));
            }
            case "Metaspace":
            {
                var replacement = String(d, "replacement", path) ?? "\u2581";
                if (replacement.Length != 1) throw Unsupported($"{path}.replacement", $"a Metaspace replacement of {replacement.Length} characters");
                return new MetaspaceDecoder(replacement[0], Scheme(d, path) != PrependScheme.Never);
            }
            default:
                throw Unsupported($"{path}.type", $"the \"{type}\" decoder");
        }
    }

    private PostProcessor ReadPostProcessor(JsonElement p, string path, Dictionary<string, int> vocab)
    {
        var type = Type(p, path);
        switch (type)
        {
            case "Sequence":
                return new SequencePostProcessor(Items(p, "processors", path).Select((x, i) => ReadPostProcessor(x, $"{path}.processors[{i}]", vocab)).ToList());
            case "ByteLevel":
                return new ByteLevelPostProcessor(Bool(p, "trim_offsets", path, true));
            case "TemplateProcessing":
                return ReadTemplate(p, path);
            default:
                throw Unsupported($"{path}.type", $"the \"{type}\" post-processor");
        }
    }

    private TemplatePostProcessor ReadTemplate(JsonElement p, string path)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (Optional(p, "special_tokens") is { } st)
        {
            if (st.ValueKind != JsonValueKind.Object) throw Malformed($"{path}.special_tokens", "expected an object");
            foreach (var entry in st.EnumerateObject())
            {
                if (!entry.Value.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                    throw Malformed($"{path}.special_tokens[\"{entry.Name}\"]", "\"ids\" is missing");
                specials[entry.Name] = ids.EnumerateArray().Select(x => x.GetInt32()).ToArray();
            }
        }
        var single = new List<int[]?>();
        var items = Items(p, "single", path);
        for (var i = 0; i < items.Count; i++)
        {
            var itemPath = $"{path}.single[{i}]";
            var item = items[i];
            if (item.TryGetProperty("SpecialToken", out var special))
            {
                var id = String(special, "id", itemPath) ?? throw Malformed(itemPath, "the special token has no id");
                single.Add(specials.TryGetValue(id, out var ids) ? ids : throw Malformed(itemPath, $"\"{id}\" is not in special_tokens"));
            }
            else if (item.TryGetProperty("Sequence", out var seq))
            {
                var id = String(seq, "id", itemPath);
                if (id != "A") throw Unsupported(itemPath, $"sequence \"{id}\" in the single-sequence template");
                single.Add(null);
            }
            else throw Malformed(itemPath, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
        }
        return new TemplatePostProcessor(single);
    }
}
