using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Engine.Inference;
using FineTune.Gguf.Import;
using FineTune.Tokenizers;

namespace FineTune.Cli.Chat;

/// <summary>
/// <c>finetune chat &lt;file.gguf&gt;</c>: the GGUF by itself, as Ollama serves it — its weights
/// dequantized into the engine, its own tokenizer and chat template from its metadata. Nothing of
/// the project or the base model is needed, so what is chatted with is exactly what was shipped.
/// </summary>
public sealed record GgufChatModel(Tokenizer Tokenizer, ChatTemplate Template, ILanguageModel Model)
{
    /// <summary>True when <paramref name="path"/> is a file ending in .gguf or starting with the GGUF magic.</summary>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path)) return false;
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return true;
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
    }

    /// <summary>Opens <paramref name="path"/>; <paramref name="template"/> overrides the file's chat template (a built-in name or a file).</summary>
    public static GgufChatModel Open(string path, string? adapter, string? template)
    {
        if (adapter is not null)
            throw new FineTuneException("FT7007", $"--adapter does not apply to the GGUF file '{path}': the build merged the adapter into it. Chat with the file alone, or with the base model folder and --adapter.", path);
        var gguf = GgufModel.Load(path);
        var tokenizer = GgufTokenizer.Load(gguf.File);
        // The template code reads a model folder (tokenizer_config.json's chat_template): give it one.
        var folder = Path.Combine(Path.GetTempPath(), $"finetune-gguf-chat-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), GgufTokenizer.TokenizerConfigJson(gguf.File));
            if (template is null && gguf.ChatTemplate is null)
                throw new FineTuneException("FT7009", $"The GGUF file '{path}' has no tokenizer.chat_template; pass --chat-template (the template the model was fine-tuned with).", path);
            var chatTemplate = ChatModelLoader.ResolveTemplate(template, tokenizer, folder);
            return new GgufChatModel(tokenizer, chatTemplate, new EngineLanguageModel(new LlamaDecoder(gguf.Weights)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
