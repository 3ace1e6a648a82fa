namespace FineTune.Data.Tests.Formatting;

internal static class Items
{
    public static DatasetItem Of(string fullPath, params (string Key, string Value)[] metadata) =>
        new(Path.GetFileName(fullPath), fullPath, metadata.ToDictionary(m => m.Key, m => m.Value, StringComparer.OrdinalIgnoreCase));
}
