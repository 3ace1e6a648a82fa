using System.CommandLine;
using FineTune.Cli.Chat;
using FineTune.Core.Diagnostics;
using FineTune.Tokenizers;

namespace FineTune.Cli.Commands;

/// <summary><c>finetune chat</c>: talk to a model (with its fine-tuned adapter) in the terminal, or answer one prompt.</summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("model") { Description = "A project folder or its model-manifest.json (chat with what the build made), a .gguf file the build wrote (chatted with as Ollama serves it), or a model folder in Hugging Face layout (config.json, *.safetensors, tokenizer.json)." };
        var adapter = new Option<string?>("--adapter") { Description = "LoRA adapter folder (adapter_config.json, adapter_model.safetensors) to apply." };
        var template = new Option<string?>("--chat-template") { Description = "Chat template: a built-in name or a file (default: detected from the tokenizer)." };
        var system = new Option<string?>("--system") { Description = "System prompt." };
        var prompt = new Option<string?>("--prompt") { Description = "Answer this one message, print the reply and exit (no interaction)." };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Most tokens per reply.", DefaultValueFactory = _ => 512 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 always takes the most likely token.", DefaultValueFactory = _ => 0.7 };
        var seed = new Option<int?>("--seed") { Description = "Seed for sampling, to repeat a conversation exactly (default: random)." };
        var command = new Command("chat", "Chat with a model in the terminal (streaming; /system, /reset, Ctrl+D quits), or answer one --prompt.")
        {
            model, adapter, template, system, prompt, maxTokens, temperature, seed,
        };
        command.SetAction((parse, cancellationToken) =>
        {
            var modelPath = parse.GetValue(model)!;
            var adapterPath = parse.GetValue(adapter);
            var templateName = parse.GetValue(template);
            var systemPrompt = parse.GetValue(system);
            // A GGUF carries its own tokenizer and template; everything else reads a model folder.
            var gguf = GgufChatModel.IsGguf(modelPath) ? GgufChatModel.Open(modelPath, adapterPath, templateName) : null;
            // A project or its manifest: the base model, adapter, template and system prompt the build
            // used, each overridable by its option.
            if (gguf is null && BuiltModel.Find(modelPath) is { } built)
            {
                Console.Error.WriteLine(built.Describe(Directory.GetCurrentDirectory()));
                modelPath = built.BaseModel;
                adapterPath ??= built.Adapter;
                templateName ??= built.ChatTemplate;
                systemPrompt ??= built.SystemPrompt;
            }
            if (gguf is null) ChatModelLoader.CheckModelPath(modelPath);
            if (parse.GetValue(maxTokens) < 1) throw new FineTuneException("FT7010", "--max-tokens must be at least 1.");
            if (parse.GetValue(temperature) is var t && (t < 0 || !double.IsFinite(t))) throw new FineTuneException("FT7010", "--temperature must be 0 or more.");

            var tokenizer = gguf?.Tokenizer ?? Tokenizer.Load(modelPath);
            var chatTemplate = gguf?.Template ?? ChatModelLoader.ResolveTemplate(templateName, tokenizer, modelPath);
            var languageModel = gguf?.Model ?? ChatModelLoader.LoadModel(modelPath, adapterPath);
            var session = new ChatSession(
                new ChatPrompt(chatTemplate, tokenizer),
                new ReplyGenerator(languageModel, tokenizer, chatTemplate.StopTokens),
                new TokenSampler(parse.GetValue(temperature), parse.GetValue(seed) ?? Random.Shared.Next()),
                parse.GetValue(maxTokens),
                systemPrompt);

            if (parse.GetValue(prompt) is { } question)
            {
                var reply = session.Ask(question, text => { Console.Out.Write(text); Console.Out.Flush(); }, cancellationToken);
                Console.Out.WriteLine();
                // On stderr, so a script reading the reply from stdout gets the reply only.
                if (reply.Reason is StopReason.MaxTokens or StopReason.ContextFull)
                    Console.Error.WriteLine(reply.Reason == StopReason.MaxTokens ? "[stopped: --max-tokens reached]" : "[stopped: the model's context is full]");
            }
            else
            {
                session.RunInteractive(Console.In, Console.Out, cancellationToken);
            }
            return Task.FromResult(0);
        });
        return command;
    }
}
