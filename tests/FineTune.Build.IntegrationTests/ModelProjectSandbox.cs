using System.Diagnostics;
using System.Security.Cryptography;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A copy of example-project in a fresh temporary folder, as a new clone would have it (no bin/,
/// obj/ or generated base model), wired to this repository's tasks through a Directory.Build.props
/// and .targets that import the repository's own.
/// </summary>
internal sealed class ModelProjectSandbox : IDisposable
{
    private ModelProjectSandbox(string root, string projectName = "example-project")
    {
        Root = root;
        ProjectName = projectName;
        ProjectDir = Path.Combine(root, projectName);
    }

    public string Root { get; }
    public string ProjectName { get; }
    public string ProjectDir { get; }
    public string ProjectFile => Path.Combine(ProjectDir, ProjectName + ".csproj");
    public string OutputDir => Path.Combine(ProjectDir, "bin", "Debug");
    public string CacheDir => Path.Combine(ProjectDir, "obj", "finetune", "cache");

    /// <summary>
    /// Copies the example; <paramref name="maxSteps"/> shortens training to keep the suite fast.
    /// <paramref name="withTinyBaseModel"/> puts the tiny base model the example generates on its first
    /// build in place up front (<see cref="TinyBaseModel"/>, the same bytes), for tests that are not
    /// about that generation.
    /// </summary>
    public static ModelProjectSandbox CreateFromExample(int? maxSteps = 4, bool withTinyBaseModel = false)
    {
        var sandbox = new ModelProjectSandbox(NewRoot());
        CopyTree(RepoPaths.ExampleProject, sandbox.ProjectDir);
        WireInRepoTasks(sandbox.Root, "");
        if (withTinyBaseModel) TinyBaseModel.Write(Path.Combine(sandbox.ProjectDir, "models", "base"), sandbox.Root);
        if (maxSteps is { } steps)
            sandbox.EditFile("lora.yaml", text => ReplaceYamlValue(ReplaceYamlValue(ReplaceYamlValue(text, "max_steps", steps.ToString()), "eval_steps", "0"), "save_steps", "2"));
        return sandbox;
    }

    /// <summary>
    /// A user's project file as written (e.g. a README snippet) in an empty folder. Its
    /// <c>PackageReference</c> to FineTune.Build is swapped for this repository's tasks and CLI, so
    /// what is tested is the checkout, not a package of the same version from some feed.
    /// </summary>
    public static ModelProjectSandbox CreateFromProjectText(string projectName, string projectXml)
    {
        var sandbox = new ModelProjectSandbox(NewRoot(), projectName);
        Directory.CreateDirectory(sandbox.ProjectDir);
        File.WriteAllText(sandbox.ProjectFile, projectXml);
        WireInRepoTasks(sandbox.Root, "  <ItemGroup><PackageReference Remove=\"FineTune.Build\" /></ItemGroup>\n");
        return sandbox;
    }

    private static string NewRoot()
    {
        var root = Path.Combine(Path.GetTempPath(), "ft-it-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(root);
        return root;
    }

    private static void WireInRepoTasks(string root, string extraTargets)
    {
        var repo = RepoPaths.Root.TrimEnd('/') + "/";
        File.WriteAllText(Path.Combine(root, "Directory.Build.props"), $"<Project><Import Project=\"{repo}Directory.Build.props\" /></Project>\n");
        File.WriteAllText(Path.Combine(root, "Directory.Build.targets"), $"<Project>\n  <Import Project=\"{repo}Directory.Build.targets\" />\n{extraTargets}</Project>\n");
    }

    public void EditFile(string relativePath, Func<string, string> edit)
    {
        var path = Path.Combine(ProjectDir, relativePath);
        File.WriteAllText(path, edit(File.ReadAllText(path)));
    }

    /// <summary>Sets a top-level key of lora.yaml, adding it when the file lacks it.</summary>
    public void SetLoraValue(string key, string value) => EditFile("lora.yaml", text => ReplaceYamlValue(text, key, value));

    public void SetProperty(string name, string value) =>
        EditFile(ProjectName + ".csproj", text =>
        {
            var start = text.IndexOf($"<{name}>", StringComparison.Ordinal);
            if (start < 0) return text.Replace("</PropertyGroup>", $"  <{name}>{value}</{name}>\n  </PropertyGroup>");
            var end = text.IndexOf($"</{name}>", start, StringComparison.Ordinal);
            return text[..(start + name.Length + 2)] + value + text[end..];
        });

    /// <summary>Runs `dotnet build` (or another verb) on the copy and captures all output.</summary>
    public BuildResult Dotnet(string verb, params string[] extraArgs) => Run("dotnet", DotnetArguments(verb, extraArgs), ProjectDir, Environment);

    /// <summary>Variables set for every `dotnet` this sandbox runs (e.g. HF_ENDPOINT, HF_HUB_CACHE).</summary>
    public Dictionary<string, string> Environment { get; } = new(StringComparer.Ordinal);

    /// <summary>Starts `dotnet build` (or another verb) on the copy in its own process group, to be interrupted.</summary>
    public InterruptibleBuild StartDotnet(string verb, params string[] extraArgs) => InterruptibleBuild.Start(DotnetArguments(verb, extraArgs), ProjectDir);

    private string[] DotnetArguments(string verb, string[] extraArgs) =>
        // The tasks and the CLI were built with the test project, so the build leaves out its references to
        // them (no restore walk or evaluation of the tool projects); plain console logger for parseable lines.
        [verb, ProjectFile, "-nodeReuse:false", "-tl:off", "-v:m", InRepoToolsPrebuilt, .. extraArgs];

    /// <summary>The property that leaves the in-repo tool references out of a model build (Directory.Build.targets).</summary>
    public const string InRepoToolsPrebuilt = "-p:FineTuneInRepoToolReferences=false";

    public static BuildResult Run(string file, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        SetBuildEnvironment(psi);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) psi.Environment[name] = value;
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return new BuildResult(process.ExitCode, stdout + stderr.Result);
    }

    /// <summary>No telemetry banner, and no MSBuild node outliving the build.</summary>
    public static void SetBuildEnvironment(ProcessStartInfo psi)
    {
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
    }

    public string[] Ggufs() => Directory.Exists(OutputDir) ? Directory.GetFiles(OutputDir, "*.gguf").Order(StringComparer.Ordinal).ToArray() : [];

    public static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    public static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from))
        {
            var name = Path.GetFileName(dir);
            if (name is "bin" or "obj" or "models") continue;
            CopyTree(dir, Path.Combine(to, name));
        }
        foreach (var file in Directory.EnumerateFiles(from))
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
    }

    public static void CopyAll(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var dir in Directory.EnumerateDirectories(from)) CopyAll(dir, Path.Combine(to, Path.GetFileName(dir)));
        foreach (var file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    private static string ReplaceYamlValue(string yaml, string key, string value)
    {
        var lines = yaml.Split('\n').ToList();
        var index = lines.FindIndex(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        if (index >= 0) lines[index] = $"{key}: {value}";
        else lines.Add($"{key}: {value}");
        return string.Join('\n', lines);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
