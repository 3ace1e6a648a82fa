using FineTune.Cli.Templates;
using FineTune.Core.Diagnostics;
using FineTune.Data.Templates;
using FineTune.Engine.Inference;
using FineTune.Tokenizers;

namespace FineTune.Cli.Chat;

/// <summary>Opens what <c>finetune chat</c> is pointed at: a Hugging Face model folder, plus an optional adapter.</summary>
public static class ChatModelLoader
{
    /// <summary>Fails clearly for a GGUF file or a missing path where a model folder is needed.</summary>
    public static void CheckModelPath(string path)
    {
        if (File.Exists(path))
        {
            if (IsGguf(path))
                throw new FineTuneException("FT7007",
                    $"'{path}' is a GGUF file; this command needs the Hugging Face model folder (the project's BaseModel), with --adapter <the adapter folder> where it takes one. " +
                    "'finetune chat <file.gguf>' chats with a GGUF file itself.", path);
            throw new FineTuneException("FT7008", $"'{path}' is a file; pass a model folder (config.json, *.safetensors, tokenizer.json).", path);
        }
        if (!Directory.Exists(path))
            throw new FineTuneException("FT7008", $"Model folder '{path}' does not exist.", path);
    }

    /// <summary>
    /// The template to chat with: the one given, else the model's own chat template, else the
    /// built-in the tokenizer's special tokens identify (a model answers well only in the format it
    /// was trained with).
    /// </summary>
    public static ChatTemplate ResolveTemplate(string? nameOrPath, Tokenizer tokenizer, string modelPath)
    {
        if (!string.IsNullOrWhiteSpace(nameOrPath))
            return ModelChatTemplate.Resolve(nameOrPath, tokenizer, modelPath);
        if (ModelTemplateSource.Find(ModelChatTemplate.ModelDirectory(modelPath)) is not null)
            return ModelChatTemplate.Resolve(ChatTemplates.ModelTemplateName, tokenizer, modelPath);
        string? detected =
            tokenizer.TokenToId("<|start_header_id|>") is not null ? "llama-3" :
            tokenizer.TokenToId("<|im_start|>") is not null ? "chatml" :
            tokenizer.TokenToId("<start_of_turn>") is not null ? "gemma" :
            tokenizer.TokenToId("[INST]") is not null ? "mistral" : null;
        return detected is null
            ? throw new FineTuneException("FT7009",
                $"Cannot tell the chat template of '{modelPath}' from its tokenizer; pass --chat-template (one of {string.Join(", ", ChatTemplates.BuiltInNames)}, or a file) — the one the model was fine-tuned with.", modelPath)
            : ModelChatTemplate.Resolve(detected, tokenizer, modelPath);
    }

    /// <summary>Loads the weights, with the adapter applied beside them, for chat.</summary>
    public static ILanguageModel LoadModel(string modelPath, string? adapterPath)
    {
        if (adapterPath is not null && !Directory.Exists(adapterPath))
            throw new FineTuneException("FT7008", $"Adapter folder '{adapterPath}' does not exist.", adapterPath);
        return new EngineLanguageModel(LlamaDecoder.Load(modelPath, adapterPath));
    }

    private static bool IsGguf(string path)
    {
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return true;
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.Read(magic) == 4 && magic.SequenceEqual("GGUF"u8);
    }
}
