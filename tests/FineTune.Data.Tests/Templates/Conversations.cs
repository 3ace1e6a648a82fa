namespace FineTune.Data.Tests.Templates;

/// <summary>Hand-written conversations shared by the template tests.</summary>
internal static class Conversations
{
    public static Conversation TwoTurnWithSystem { get; } = new(
    [
        new(Role.System, "You are a concise assistant. Answer in one line."),
        new(Role.User, "What is the capital of France?"),
        new(Role.Assistant, "Paris."),
        new(Role.User, "And of Italy?\nOne word, please."),
        new(Role.Assistant, "Rome 🇮🇹"),
    ]);

    public static Conversation TwoTurnNoSystem { get; } = new(TwoTurnWithSystem.Messages.Skip(1).ToList());

    /// <summary>Two user messages in a row and two system messages: Ollama merges both kinds.</summary>
    public static Conversation Merged { get; } = new(
    [
        new(Role.System, "Be brief."),
        new(Role.System, "Use {{ braces }} freely."),
        new(Role.User, "First part."),
        new(Role.User, "Second part."),
        new(Role.Assistant, "Answer with <|im_end|> inside."),
    ]);

    public static IEnumerable<Conversation> All => [TwoTurnWithSystem, TwoTurnNoSystem, Merged];
}
