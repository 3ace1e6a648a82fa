using System.Text;

namespace FineTune.Gguf.Tests.LlamaCpp;

/// <summary>What llama.cpp makes of a GGUF file: its logits for a prompt and its tokenization of a text.</summary>
internal static unsafe class LlamaCppOracle
{
    /// <summary>Logits at every position of <paramref name="ids"/>, row-major [position, vocabulary].</summary>
    public static float[] Logits(string path, int[] ids, out int vocabSize)
    {
        var model = Load(path);
        try
        {
            vocabSize = LlamaNative.llama_vocab_n_tokens(LlamaNative.llama_model_get_vocab(model));
            // Full precision: the CPU flash-attention path (on by default) and the F16 KV cache round
            // attention to half precision, ~3e-4 of the largest logit — enough to hide a subtle export
            // bug. Without them llama.cpp agrees with the engine to ~1e-6 of it.
            var cp = LlamaNative.llama_context_default_params();
            cp.FlashAttnType = 0;
            cp.TypeK = cp.TypeV = 0;
            var ctx = LlamaNative.llama_init_from_model(model, cp);
            Assert.NotEqual(IntPtr.Zero, ctx);
            try
            {
                var batch = LlamaNative.llama_batch_init(ids.Length, 0, 1);
                try
                {
                    batch.NTokens = ids.Length;
                    for (var i = 0; i < ids.Length; i++)
                    {
                        batch.Token[i] = ids[i];
                        batch.Pos[i] = i;
                        batch.NSeqId[i] = 1;
                        batch.SeqId[i][0] = 0;
                        batch.Logits[i] = 1;
                    }
                    Assert.Equal(0, LlamaNative.llama_decode(ctx, batch));
                    var result = new float[ids.Length * vocabSize];
                    for (var i = 0; i < ids.Length; i++)
                        new ReadOnlySpan<float>(LlamaNative.llama_get_logits_ith(ctx, i), vocabSize).CopyTo(result.AsSpan(i * vocabSize));
                    return result;
                }
                finally
                {
                    LlamaNative.llama_batch_free(batch);
                }
            }
            finally
            {
                LlamaNative.llama_free(ctx);
            }
        }
        finally
        {
            LlamaNative.llama_model_free(model);
        }
    }

    /// <summary>llama.cpp's token ids for <paramref name="text"/>, without BOS/EOS.</summary>
    public static int[] Tokenize(string path, string text, bool parseSpecial)
    {
        using var vocab = new Vocab(path);
        return vocab.Tokenize(text, parseSpecial);
    }

    /// <summary>llama.cpp's tokenizer of a GGUF file, loaded once for many calls.</summary>
    public sealed class Vocab : IDisposable
    {
        private readonly IntPtr _model;
        private readonly IntPtr _vocab;

        public Vocab(string path)
        {
            _model = Load(path);
            _vocab = LlamaNative.llama_model_get_vocab(_model);
        }

        public int Count => LlamaNative.llama_vocab_n_tokens(_vocab);

        /// <summary>llama_tokenize without BOS/EOS.</summary>
        public int[] Tokenize(string text, bool parseSpecial)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            var buf = new int[bytes.Length + 8];
            int n;
            fixed (byte* t = bytes)
            fixed (int* b = buf)
                n = LlamaNative.llama_tokenize(_vocab, t, bytes.Length, b, buf.Length, addSpecial: false, parseSpecial);
            Assert.True(n >= 0, $"llama_tokenize failed ({n})");
            return buf.AsSpan(0, n).ToArray();
        }

        /// <summary>llama_detokenize's bytes (pieces of llama_token_to_piece), as UTF-8 text.</summary>
        public string Detokenize(int[] ids, bool removeSpecial, bool unparseSpecial)
        {
            var buf = new byte[ids.Length * 64 + 64];
            int n;
            fixed (int* t = ids)
            fixed (byte* b = buf)
                n = LlamaNative.llama_detokenize(_vocab, t, ids.Length, b, buf.Length, removeSpecial, unparseSpecial);
            Assert.True(n >= 0, $"llama_detokenize failed ({n})");
            return Encoding.UTF8.GetString(buf, 0, n);
        }

        public void Dispose() => LlamaNative.llama_model_free(_model);
    }

    /// <summary>llama.cpp's own quantization of the GGUF at <paramref name="input"/> (llama_model_quantize).</summary>
    public static void Quantize(string input, string output, FineTune.Gguf.Quantization.FileType type)
    {
        var p = LlamaNative.llama_model_quantize_default_params();
        p.NThread = 2;
        p.FType = (int)type;
        Assert.Equal(0u, LlamaNative.llama_model_quantize(input, output, &p));
    }

    private static IntPtr Load(string path)
    {
        var model = LlamaNative.llama_model_load_from_file(path, LlamaNative.llama_model_default_params());
        Assert.True(model != IntPtr.Zero, $"llama.cpp could not load {path}");
        return model;
    }
}
