namespace FineTune.Tokenizers;

/// <summary>Which family of BPE a tokenizer is, as GGUF's <c>tokenizer.ggml.model</c> distinguishes them.</summary>
public enum TokenizerModelKind
{
    /// <summary>GPT-2 style byte-level BPE (Llama 3, Qwen): tokens are strings of byte characters (<c>gpt2</c> in GGUF).</summary>
    ByteLevelBpe,

    /// <summary>SentencePiece-style BPE over characters with <c>▁</c> for spaces and <c>&lt;0xNN&gt;</c> byte fallback (Llama 2, Mistral; <c>llama</c> in GGUF).</summary>
    SentencePieceBpe,
}
