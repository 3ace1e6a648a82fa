namespace FineTune.Data;

/// <summary>Who wrote a message of a conversation.</summary>
public enum Role
{
    /// <summary>Instructions that frame the whole conversation.</summary>
    System,
    /// <summary>The human side: prompts and questions.</summary>
    User,
    /// <summary>The model's replies: what training teaches it to produce.</summary>
    Assistant,
}

/// <summary>One message of a conversation.</summary>
public sealed record Message(Role Role, string Content);

/// <summary>
/// The one model every dataset format is standardised to: either a list of messages (alpaca,
/// sharegpt, messages, columns) or raw text for continued pretraining (<c>text</c> format), plus
/// where it came from so diagnostics can point at the row.
/// </summary>
public sealed class Conversation
{
    /// <summary>A chat conversation.</summary>
    public Conversation(IReadOnlyList<Message> messages, string? sourceFile = null, int sourceLine = 0)
    {
        Messages = messages;
        SourceFile = sourceFile;
        SourceLine = sourceLine;
    }

    private Conversation(string text, string? sourceFile, int sourceLine)
    {
        Messages = [];
        RawText = text;
        SourceFile = sourceFile;
        SourceLine = sourceLine;
    }

    /// <summary>Raw text for continued pretraining; every token of it is a training target.</summary>
    public static Conversation FromRawText(string text, string? sourceFile = null, int sourceLine = 0) => new(text, sourceFile, sourceLine);

    /// <summary>The messages in order; empty for raw text.</summary>
    public IReadOnlyList<Message> Messages { get; }

    /// <summary>The text of a raw-text example, null for a chat conversation.</summary>
    public string? RawText { get; }

    /// <summary>True for a raw-text (continued pretraining) example.</summary>
    public bool IsRawText => RawText is not null;

    /// <summary>The dataset file this row came from, when known.</summary>
    public string? SourceFile { get; }

    /// <summary>1-based line (JSONL/CSV) or row (xlsx) of the source, 0 when unknown.</summary>
    public int SourceLine { get; }

    /// <summary>Returns a copy whose first message is <paramref name="system"/> unless it already has a system message.</summary>
    public Conversation WithDefaultSystem(string system)
    {
        if (IsRawText || Messages.Any(m => m.Role == Role.System)) return this;
        return new Conversation([new Message(Role.System, system), .. Messages], SourceFile, SourceLine);
    }
}
