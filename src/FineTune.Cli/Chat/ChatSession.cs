using FineTune.Data;

namespace FineTune.Cli.Chat;

/// <summary>
/// A multi-turn conversation with a model: each question is answered with the whole history in the
/// prompt. The interactive loop reads lines until end of input (Ctrl+D); <c>/system</c> and
/// <c>/reset</c> change the conversation.
/// </summary>
public sealed class ChatSession(ChatPrompt prompt, ReplyGenerator generator, TokenSampler sampler, int maxTokens, string? system)
{
    private readonly List<Message> _turns = [];

    /// <summary>The system prompt for the next turns, or null.</summary>
    public string? System { get; set; } = system;

    /// <summary>The conversation so far (user and assistant messages).</summary>
    public IReadOnlyList<Message> Turns => _turns;

    /// <summary>Answers <paramref name="question"/>, streaming the reply to <paramref name="onText"/>, and adds both to the history.</summary>
    public Reply Ask(string question, Action<string> onText, CancellationToken cancellationToken = default)
    {
        var turns = new List<Message>(_turns) { new(Role.User, question) };
        var reply = generator.Generate(prompt.Ids(System, turns), sampler, maxTokens, onText, cancellationToken);
        _turns.Add(turns[^1]);
        _turns.Add(new Message(Role.Assistant, reply.Text));
        return reply;
    }

    /// <summary>Forgets the conversation; the system prompt stays.</summary>
    public void Reset() => _turns.Clear();

    /// <summary>The interactive loop: a <c>&gt;&gt;&gt; </c> prompt per question until end of input.</summary>
    public void RunInteractive(TextReader input, TextWriter output, CancellationToken cancellationToken)
    {
        output.WriteLine("Type a message; /system <text> sets the system prompt, /reset starts over, /help lists commands, Ctrl+D quits.");
        while (!cancellationToken.IsCancellationRequested)
        {
            output.Write(">>> ");
            output.Flush();
            var line = input.ReadLine();
            if (line is null) { output.WriteLine(); return; }
            line = line.Trim();
            if (line.Length == 0) continue;
            if (line.StartsWith('/'))
            {
                Command(line, output);
                continue;
            }
            var reply = Ask(line, text => { output.Write(text); output.Flush(); }, cancellationToken);
            output.WriteLine();
            if (reply.Reason is StopReason.MaxTokens or StopReason.ContextFull)
                output.WriteLine(reply.Reason == StopReason.MaxTokens ? "[stopped: --max-tokens reached]" : "[stopped: the model's context is full; /reset to start over]");
        }
    }

    private void Command(string line, TextWriter output)
    {
        var space = line.IndexOf(' ');
        var name = space < 0 ? line : line[..space];
        var argument = space < 0 ? "" : line[(space + 1)..].Trim();
        switch (name)
        {
            case "/system":
                System = argument.Length == 0 ? null : argument;
                output.WriteLine(System is null ? "System prompt cleared." : "System prompt set.");
                break;
            case "/reset":
                Reset();
                output.WriteLine("Conversation cleared.");
                break;
            case "/help":
                output.WriteLine("/system <text>  set the system prompt (empty clears it)\n/reset          forget the conversation\nCtrl+D          quit");
                break;
            default:
                output.WriteLine($"Unknown command {name}; /help lists the commands.");
                break;
        }
    }
}
