namespace FineTune.Core.Diagnostics;

/// <summary>
/// An error caused by the user's input (a file, a property, a config key), carrying a stable
/// <c>FTnnnn</c> code and the location to report. Every layer throws this for bad input so the CLI
/// and the MSBuild tasks can print it in MSBuild's canonical form and IDEs annotate the right line.
/// </summary>
public class FineTuneException : Exception
{
    /// <summary>Creates an error with a code (e.g. <c>FT1003</c>), a message and an optional location.</summary>
    public FineTuneException(string code, string message, string? file = null, int line = 0, int column = 0, Exception? inner = null)
        : base(message, inner)
    {
        if (!ErrorCodes.IsWellFormed(code))
            throw new ArgumentException($"Error code '{code}' is not of the form FTnnnn.", nameof(code));
        Code = code;
        File = file;
        Line = line;
        Column = column;
    }

    /// <summary>The stable error code, documented in docs/errors.md.</summary>
    public string Code { get; }

    /// <summary>The file the error is about, or null when it is about a property or the environment.</summary>
    public string? File { get; }

    /// <summary>1-based line in <see cref="File"/>, 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>1-based column in <see cref="File"/>, 0 when unknown.</summary>
    public int Column { get; }

    /// <summary>The error in MSBuild's canonical format: <c>file(line,col): error FTnnnn: message</c>.</summary>
    public virtual string ToCanonicalString() => CanonicalMessage.Format(Severity.Error, Code, Message, File, Line, Column);

    /// <inheritdoc />
    public override string ToString() => ToCanonicalString();
}
