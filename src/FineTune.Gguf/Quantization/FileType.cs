using FineTune.Gguf.Format;

namespace FineTune.Gguf.Quantization;

/// <summary>The file types <c>finetune export --type</c> offers, with llama.cpp's <c>llama_ftype</c> codes (stored as <c>general.file_type</c>).</summary>
public enum FileType
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q8_0 = 7,
    Q4_K_M = 15,
    Q5_K_M = 17,
    Q6_K = 18,
    BF16 = 32,
}

/// <summary>Parsing and defaults for <see cref="FileType"/>.</summary>
public static class FileTypes
{
    /// <summary>The names accepted on the command line (case-insensitive).</summary>
    public static IReadOnlyList<string> Names { get; } = Enum.GetNames<FileType>();

    /// <summary>Parses a name such as <c>Q4_K_M</c>; null when unknown.</summary>
    public static FileType? Parse(string name) =>
        Enum.TryParse<FileType>(name.Trim(), ignoreCase: true, out var t) && Enum.IsDefined(t) ? t : null;

    /// <summary>The tensor type most weights get (llama_ftype_get_default_type).</summary>
    public static GgmlType DefaultTensorType(FileType type) => type switch
    {
        FileType.F32 => GgmlType.F32,
        FileType.F16 => GgmlType.F16,
        FileType.BF16 => GgmlType.BF16,
        FileType.Q4_0 => GgmlType.Q4_0,
        FileType.Q8_0 => GgmlType.Q8_0,
        FileType.Q4_K_M => GgmlType.Q4_K,
        FileType.Q5_K_M => GgmlType.Q5_K,
        FileType.Q6_K => GgmlType.Q6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}
