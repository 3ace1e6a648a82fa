namespace FineTune.Core.Diagnostics;

/// <summary>
/// Several independent mistakes in one input (a config file's keys), reported together so a user
/// fixes them in one edit instead of one build per mistake, as a compiler lists every error. It is
/// the first error for code that reads one (<see cref="FineTuneException.Code"/>, the location);
/// its canonical text is one line per error, each of which MSBuild logs as an error of its own.
/// </summary>
public sealed class FineTuneErrors : FineTuneException
{
    private FineTuneErrors(IReadOnlyList<FineTuneException> errors)
        : base(errors[0].Code, errors[0].Message, errors[0].File, errors[0].Line, errors[0].Column, errors[0]) =>
        Errors = errors;

    /// <summary>Every error, in the order found.</summary>
    public IReadOnlyList<FineTuneException> Errors { get; }

    /// <inheritdoc />
    public override string ToCanonicalString() => string.Join(Environment.NewLine, Errors.Select(e => e.ToCanonicalString()));

    /// <summary>Throws nothing for no errors, the error itself for one, all of them together for more.</summary>
    public static void ThrowIfAny(IReadOnlyList<FineTuneException> errors)
    {
        if (errors.Count == 1) throw errors[0];
        if (errors.Count > 1) throw new FineTuneErrors([.. errors]);
    }
}
