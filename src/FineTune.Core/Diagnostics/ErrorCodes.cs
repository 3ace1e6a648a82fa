namespace FineTune.Core.Diagnostics;

/// <summary>
/// Code ranges (each code is listed with its cause in docs/errors.md):
/// FT1xxx data, FT2xxx tokenizer, FT3xxx training, FT4xxx export, FT5xxx publish,
/// FT6xxx project and build properties, FT7xxx command line, FT9xxx internal.
/// </summary>
public static class ErrorCodes
{
    /// <summary>True for <c>FT</c> followed by four digits.</summary>
    public static bool IsWellFormed(string code) =>
        code.Length == 6 && code.StartsWith("FT", StringComparison.Ordinal) && code.AsSpan(2).IndexOfAnyExceptInRange('0', '9') < 0;
}
