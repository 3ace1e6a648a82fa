namespace FineTune.Gguf.Format;

/// <summary>The FT4xxx codes of the GGUF reader and writer (documented in docs/errors.md).</summary>
public static class GgufErrors
{
    /// <summary>The file does not start with the GGUF magic.</summary>
    public const string NotGguf = "FT4001";
    /// <summary>The GGUF version is not 2 or 3.</summary>
    public const string UnsupportedVersion = "FT4002";
    /// <summary>The file ends before the structure it declares (truncated download or copy).</summary>
    public const string Truncated = "FT4003";
    /// <summary>A metadata entry is malformed (unknown value type, bad UTF-8, duplicate key, bad alignment).</summary>
    public const string BadMetadata = "FT4004";
    /// <summary>A tensor entry is malformed (dimensions, type, offset or size outside the file).</summary>
    public const string BadTensorInfo = "FT4005";
    /// <summary>The GGUF file does not exist or cannot be read.</summary>
    public const string FileUnreadable = "FT4006";
}
