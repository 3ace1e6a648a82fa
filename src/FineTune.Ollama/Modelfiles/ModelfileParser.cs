using System.Text;
using FineTune.Core.Diagnostics;

namespace FineTune.Ollama.Modelfiles;

/// <summary>
/// Reads a Modelfile the way Ollama's own parser does (github.com/ollama/ollama, parser/parser.go):
/// same commands, same quoting, same treatment of blanks, comments and non-printable characters, so
/// that what <c>finetune publish</c> sends is what <c>ollama create -f Modelfile</c> would send.
/// </summary>
public static class ModelfileParser
{
    private static readonly string[] Commands =
        ["FROM", "LICENSE", "TEMPLATE", "SYSTEM", "ADAPTER", "DRAFT", "RENDERER", "PARSER", "PARAMETER", "MESSAGE", "REQUIRES"];

    private enum State { Between, Comment, Command, Key, Value }

    /// <summary>Reads a Modelfile from disk (UTF-8, or UTF-16 with a byte order mark, as Ollama accepts).</summary>
    public static Modelfile ParseFile(string path)
    {
        if (!File.Exists(path))
            throw new FineTuneException(OllamaErrorCodes.FileNotFound, $"Modelfile not found: {path}", path);
        using var reader = new StreamReader(path, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: true);
        return Parse(reader.ReadToEnd(), path);
    }

    /// <summary>Parses Modelfile text; <paramref name="file"/> is only used to locate errors.</summary>
    /// <exception cref="FineTuneException">FT5001 for a syntax error, FT5012 when there is no FROM.</exception>
    public static Modelfile Parse(string text, string? file = null)
    {
        var instructions = new List<ModelfileInstruction>();
        var state = State.Between;
        var buffer = new StringBuilder();
        string command = "", key = "";
        int line = 1, column = 0, startLine = 1, valueLine = 1;
        var afterCarriageReturn = false;

        FineTuneException Error(string message, int atLine, int atColumn = 0) =>
            new(OllamaErrorCodes.ModelfileSyntax, message, file, atLine, atColumn);

        var start = text.StartsWith('\uFEFF') ? 1 : 0;
        for (var i = start; i < text.Length;)
        {
            var status = Rune.DecodeFromUtf16(text.AsSpan(i), out var rune, out var used);
            if (status != System.Buffers.OperationStatus.Done) rune = Rune.ReplacementChar;
            i += used;
            var c = rune.IsBmp ? (char)rune.Value : '\0';

            // Lines and columns for messages; a CR LF pair is one line break for people.
            if (c == '\n' && afterCarriageReturn) { afterCarriageReturn = false; }
            else if (ModelfileText.IsLineBreak(c)) { line++; column = 0; afterCarriageReturn = c == '\r'; }
            else { column++; afterCarriageReturn = false; }

            switch (state)
            {
                case State.Between:
                    if (c == '#') state = State.Comment;
                    else if (!ModelfileText.IsBlank(c) && !ModelfileText.IsLineBreak(c))
                    {
                        state = State.Command;
                        startLine = line;
                        buffer.Clear();
                        if (ModelfileText.IsPrint(rune)) buffer.Append(rune.ToString());
                    }
                    break;

                case State.Comment:
                    if (ModelfileText.IsLineBreak(c)) state = State.Between;
                    break;

                case State.Command:
                    if (IsAsciiLetter(c)) buffer.Append(c);
                    else if (ModelfileText.IsBlank(c))
                    {
                        command = buffer.ToString().ToUpperInvariant();
                        if (!Commands.Contains(command))
                            throw Error($"unknown command '{buffer}'; a Modelfile line starts with one of {string.Join(", ", Commands)}", line, column);
                        buffer.Clear();
                        key = "";
                        state = command is "PARAMETER" or "MESSAGE" ? State.Key : State.Value;
                        valueLine = line;
                    }
                    else if (ModelfileText.IsLineBreak(c))
                        throw Error($"'{buffer}' needs a value on the same line", startLine);
                    else
                        throw Error($"unexpected character '{rune}' in command '{buffer}'", line, column);
                    break;

                case State.Key:
                    var keyChar = command == "PARAMETER" ? IsAsciiLetter(c) || char.IsAsciiDigit(c) || c == '_' : IsAsciiLetter(c);
                    if (keyChar) buffer.Append(c);
                    else if (ModelfileText.IsBlank(c))
                    {
                        key = buffer.ToString();
                        if (key.Length == 0)
                            throw Error($"{command} needs a {(command == "PARAMETER" ? "parameter name" : "role")} after a single space", line, column);
                        if (command == "MESSAGE" && key is not ("system" or "user" or "assistant"))
                            throw Error($"message role must be one of \"system\", \"user\" or \"assistant\", not '{key}'", line, column);
                        buffer.Clear();
                        state = State.Value;
                        valueLine = line;
                    }
                    else
                        throw Error(ModelfileText.IsLineBreak(c)
                            ? $"{command} {buffer} needs a value on the same line"
                            : $"unexpected character '{rune}' in {(command == "PARAMETER" ? "parameter name" : "message role")} '{buffer}'",
                            ModelfileText.IsLineBreak(c) ? startLine : line, ModelfileText.IsLineBreak(c) ? 0 : column);
                    break;

                case State.Value:
                    if (ModelfileText.IsLineBreak(c) && ModelfileText.Unquote(ModelfileText.Trim(buffer.ToString())) is { } value)
                    {
                        instructions.Add(new ModelfileInstruction(command, KeyOrNull(command, key), value, startLine));
                        buffer.Clear();
                        state = State.Between;
                    }
                    else if (ModelfileText.IsKept(rune))
                        buffer.Append(rune.ToString());
                    break;
            }
        }

        switch (state)
        {
            case State.Value:
                var last = ModelfileText.Unquote(ModelfileText.Trim(buffer.ToString()))
                    ?? throw Error($"the quoted value of {command}{(key.Length > 0 ? " " + key : "")} starting on line {valueLine} is never closed", valueLine);
                instructions.Add(new ModelfileInstruction(command, KeyOrNull(command, key), last, startLine));
                break;
            case State.Command or State.Key:
                throw Error($"'{buffer}' needs a value", startLine);
        }

        if (!instructions.Any(x => x.Command == "FROM"))
            throw new FineTuneException(OllamaErrorCodes.MissingFrom, "the Modelfile has no FROM line (FROM ./model.gguf or FROM <model in Ollama>)", file);
        return new Modelfile(instructions);
    }

    private static string? KeyOrNull(string command, string key) => command is "PARAMETER" or "MESSAGE" ? key : null;

    private static bool IsAsciiLetter(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z';
}
