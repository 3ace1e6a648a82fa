using System.Text.RegularExpressions;
using FineTune.Gguf.Format;
using FineTune.Tokenizers;

namespace FineTune.Gguf.Export;

/// <summary>
/// Writes the <c>tokenizer.*</c> keys llama.cpp reads: model family, pre-tokenizer name, tokens,
/// token types, merges (byte-level BPE) or scores (SentencePiece BPE), special ids, add-bos/eos
/// flags and the chat template.
/// </summary>
public static partial class TokenizerMetadata
{
    // llama.cpp token types.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Byte = 6;

    [GeneratedRegex("^<0x[0-9A-F]{2}>$")]
    private static partial Regex ByteToken();

    /// <summary>Adds the tokenizer keys for a model whose embedding has <paramref name="vocabSize"/> rows.</summary>
    public static void Write(GgufWriter w, Tokenizer tok, int vocabSize, string? chatTemplate)
    {
        var spm = tok.ModelKind == TokenizerModelKind.SentencePieceBpe;
        w.Set("tokenizer.ggml.model", GgufValue.Of(spm ? "llama" : "gpt2"));
        w.Set("tokenizer.ggml.pre", GgufValue.Of(spm ? "default" : PreTokenizerName(tok)));

        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        var added = tok.AddedTokens.ToDictionary(a => a.Id);
        for (var id = 0; id < vocabSize; id++)
        {
            var text = tok.IdToToken(id);
            if (text is null)
            {
                // The embedding can be larger than the vocabulary (padded for speed); llama.cpp needs a
                // distinct string per row, as convert_hf_to_gguf writes them.
                tokens[id] = $"[PAD{id}]";
                types[id] = UserDefined;
                continue;
            }
            types[id] = added.TryGetValue(id, out var a) ? (a.Special ? Control : UserDefined)
                : id == tok.UnkTokenId ? Unknown
                : spm && ByteToken().IsMatch(text) ? Byte
                : Normal;
            // llama.cpp matches user-defined pieces against the raw text, before spaces become '▁', and
            // prints them as stored: Gemma's whitespace runs ("▁▁", "▁▁▁", ...) must be stored as spaces,
            // or indented replies show "▁▁" in every llama.cpp runner (as convert_hf_to_gguf does).
            tokens[id] = spm && types[id] == UserDefined ? text.Replace('\u2581', ' ') : text;
        }
        w.Set("tokenizer.ggml.tokens", GgufValue.Of(tokens));
        if (spm)
        {
            // SentencePiece BPE merges the highest-scoring pair first; its vocabulary is ordered by
            // merge rank, so the negated id reproduces the merge order.
            w.Set("tokenizer.ggml.scores", GgufValue.Of(Enumerable.Range(0, vocabSize).Select(i => types[i] == Normal ? -(float)i : 0f).ToArray()));
        }
        w.Set("tokenizer.ggml.token_type", GgufValue.Of(types));
        if (!spm) w.Set("tokenizer.ggml.merges", GgufValue.Of(tok.Merges.Select(m => m.Left + " " + m.Right).ToArray()));

        void Id(string key, int? id)
        {
            if (id is { } v && v >= 0 && v < vocabSize) w.Set(key, GgufValue.Of((uint)v));
        }
        Id("tokenizer.ggml.bos_token_id", tok.BosTokenId);
        Id("tokenizer.ggml.eos_token_id", tok.EosTokenId);
        Id("tokenizer.ggml.unknown_token_id", tok.UnkTokenId);
        Id("tokenizer.ggml.padding_token_id", tok.PadTokenId);
        Id("tokenizer.ggml.eot_token_id", tok.EndOfTurnTokenIds.Cast<int?>().FirstOrDefault(t => t != tok.EosTokenId));
        // llama.cpp's SentencePiece path prepends a space unless told not to; Gemma's tokenizer does not.
        if (spm && !AddsSpacePrefix(tok)) w.Set("tokenizer.ggml.add_space_prefix", GgufValue.Of(false));
        w.Set("tokenizer.ggml.add_bos_token", GgufValue.Of(tok.AddBosToken));
        w.Set("tokenizer.ggml.add_eos_token", GgufValue.Of(tok.AddEosToken));
        if (chatTemplate is not null) w.Set("tokenizer.chat_template", GgufValue.Of(chatTemplate));
    }

    /// <summary>Whether a SentencePiece-style tokenizer turns "a" into "▁a" (Llama 2, Mistral) or keeps it "a" (Gemma).</summary>
    private static bool AddsSpacePrefix(Tokenizer tok) =>
        tok.Encode("a").Ids.FirstOrDefault() is var id && tok.IdToToken(id) is { } first && first.StartsWith('\u2581');

    /// <summary>
    /// The pre-tokenizer llama.cpp must emulate, found by behaviour rather than by hashing: how the
    /// tokenizer splits a run of digits tells the regex families apart — Llama 3 groups digits in
    /// threes (<c>\p{N}{1,3}</c>), Qwen splits every digit (<c>\p{N}</c>), GPT-2 keeps the run whole.
    /// </summary>
    public static string PreTokenizerName(Tokenizer tok)
    {
        const string probe = "x 1234567";
        var pieces = tok.Encode(probe).Ids.Select(id => tok.IdToToken(id) ?? "").ToList();
        var digitRuns = pieces.Select(p => p.Count(char.IsAsciiDigit)).Where(n => n > 0).ToList();
        if (digitRuns.Count == 0) return "default";
        if (digitRuns.All(n => n == 1)) return "qwen2";
        if (digitRuns.Max() <= 3 && digitRuns.Sum() == 7 && digitRuns[0] == 3) return "llama-bpe";
        return "gpt2";
    }
}
