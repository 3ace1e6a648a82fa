namespace FineTune.Data.Templates;

/// <summary>
/// The built-in chat formats. Each entry is the format's one definition; the special-token spellings
/// follow the models' own tokenizer_config.json chat templates (llama-3, Qwen, Gemma, Phi-3) or the
/// formats' published descriptions (Alpaca, Vicuna v1.1, Zephyr).
/// </summary>
internal static class BuiltInTemplates
{
    private const string NoSeparator = "";

    /// <summary>
    /// The end marker of the generic formats (alpaca, vicuna, custom files), which are used with any
    /// base model: bound to a tokenizer it becomes that model's own EOS token (as the tutorial's
    /// <c>EOS_TOKEN = tokenizer.eos_token</c>); unbound it reads as Llama-2's <c>&lt;/s&gt;</c>.
    /// </summary>
    public const string GenericEos = "</s>";

    public static readonly IReadOnlyDictionary<string, TemplateLayout> All = new Dictionary<string, TemplateLayout>(StringComparer.OrdinalIgnoreCase)
    {
        ["llama-3"] = new(
            BosText: "<|begin_of_text|>",
            SystemPrefix: "<|start_header_id|>system<|end_header_id|>\n\n", SystemSuffix: "<|eot_id|>",
            UserPrefix: "<|start_header_id|>user<|end_header_id|>\n\n", UserSuffix: "<|eot_id|>",
            AssistantPrefix: "<|start_header_id|>assistant<|end_header_id|>\n\n", AssistantEnd: "<|eot_id|>", AssistantSuffix: "",
            DefaultSystem: null, SystemSeparator: NoSeparator, EosText: "<|end_of_text|>",
            StopTokens: ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>"],
            RequiredTokens: ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
        ["chatml"] = ChatMl(defaultSystem: null),
        // Qwen2.5's own template inserts this system prompt when the conversation has none.
        ["qwen-2.5"] = ChatMl(defaultSystem: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
        // Mistral has no system turn: the system prompt goes in front of the first user message.
        ["mistral"] = new(
            BosText: "<s>",
            SystemPrefix: null, SystemSuffix: "",
            UserPrefix: "[INST] ", UserSuffix: " [/INST]",
            AssistantPrefix: "", AssistantEnd: "</s>", AssistantSuffix: "",
            DefaultSystem: null, SystemSeparator: "\n\n", EosText: "</s>",
            StopTokens: ["</s>", "[INST]", "[/INST]"],
            // [INST] is plain text in Mistral v0.1/v0.2 tokenizers and a control token in v0.3: either works.
            RequiredTokens: ["<s>", "</s>"]),
        // Gemma has no system role either; its template calls the assistant "model".
        ["gemma"] = new(
            BosText: "<bos>",
            SystemPrefix: null, SystemSuffix: "",
            UserPrefix: "<start_of_turn>user\n", UserSuffix: "<end_of_turn>\n",
            AssistantPrefix: "<start_of_turn>model\n", AssistantEnd: "<end_of_turn>", AssistantSuffix: "\n",
            DefaultSystem: null, SystemSeparator: "\n\n", EosText: "<eos>",
            StopTokens: ["<end_of_turn>", "<start_of_turn>", "<eos>"],
            RequiredTokens: ["<bos>", "<start_of_turn>", "<end_of_turn>"]),
        ["phi-3"] = new(
            BosText: "<s>",
            SystemPrefix: "<|system|>\n", SystemSuffix: "<|end|>\n",
            UserPrefix: "<|user|>\n", UserSuffix: "<|end|>\n",
            AssistantPrefix: "<|assistant|>\n", AssistantEnd: "<|end|>", AssistantSuffix: "\n",
            DefaultSystem: null, SystemSeparator: NoSeparator, EosText: "<|endoftext|>",
            StopTokens: ["<|end|>", "<|user|>", "<|assistant|>", "<|endoftext|>"],
            RequiredTokens: ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]),
        ["alpaca"] = new(
            BosText: null,
            SystemPrefix: "", SystemSuffix: "\n\n",
            UserPrefix: "### Instruction:\n", UserSuffix: "\n\n",
            AssistantPrefix: "### Response:\n", AssistantEnd: GenericEos, AssistantSuffix: "\n\n",
            DefaultSystem: "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
            SystemSeparator: NoSeparator, EosText: GenericEos,
            StopTokens: [GenericEos, "### Instruction:"],
            RequiredTokens: [GenericEos], UsesModelEos: true),
        ["vicuna"] = new(
            BosText: null,
            SystemPrefix: "", SystemSuffix: " ",
            UserPrefix: "USER: ", UserSuffix: " ",
            AssistantPrefix: "ASSISTANT: ", AssistantEnd: GenericEos, AssistantSuffix: "",
            DefaultSystem: "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
            SystemSeparator: NoSeparator, EosText: GenericEos,
            StopTokens: [GenericEos, "USER:"],
            RequiredTokens: [GenericEos], UsesModelEos: true),
        ["zephyr"] = new(
            BosText: null,
            SystemPrefix: "<|system|>\n", SystemSuffix: "</s>\n",
            UserPrefix: "<|user|>\n", UserSuffix: "</s>\n",
            AssistantPrefix: "<|assistant|>\n", AssistantEnd: "</s>", AssistantSuffix: "\n",
            DefaultSystem: null, SystemSeparator: NoSeparator, EosText: "</s>",
            StopTokens: ["</s>", "<|user|>", "<|assistant|>", "<|system|>"],
            // Zephyr's role markers are plain text in its (Mistral) tokenizer; only </s> is a token.
            RequiredTokens: ["</s>"]),
    };

    private static TemplateLayout ChatMl(string? defaultSystem) => new(
        BosText: null,
        SystemPrefix: "<|im_start|>system\n", SystemSuffix: "<|im_end|>\n",
        UserPrefix: "<|im_start|>user\n", UserSuffix: "<|im_end|>\n",
        AssistantPrefix: "<|im_start|>assistant\n", AssistantEnd: "<|im_end|>", AssistantSuffix: "\n",
        DefaultSystem: defaultSystem, SystemSeparator: NoSeparator, EosText: "<|endoftext|>",
        StopTokens: ["<|im_end|>", "<|im_start|>", "<|endoftext|>"],
        RequiredTokens: ["<|im_start|>", "<|im_end|>"]);
}
