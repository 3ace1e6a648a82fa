using FineTune.Build.Cache;
using FineTune.Build.Fingerprints;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace FineTune.Build.Tasks;

/// <summary>
/// Runs one pipeline step (format, tokenize, train, export, ...) in the <c>finetune</c> CLI, keyed
/// by a content fingerprint of exactly the inputs it is given. When the cache already holds a
/// complete result for that fingerprint the step is skipped; otherwise the CLI writes into a
/// temporary folder that is renamed into the cache only on success, so a failed or cancelled step
/// never leaves a result that a later build would trust. The log says per step whether it was up
/// to date or which inputs changed.
/// </summary>
public sealed class FineTuneStep : FineTuneToolTask
{
    /// <summary>Short name of the step's folder in the cache and of its state file, e.g. <c>train</c>.</summary>
    [Required] public string CacheName { get; set; } = "";

    /// <summary>Root of the content-addressed cache (<c>FineTuneCacheDir</c>).</summary>
    [Required] public string CacheDir { get; set; } = "";

    /// <summary>Per-checkout state folder (<c>obj/finetune</c>): file-hash memo and last inputs per step.</summary>
    [Required] public string StateDir { get; set; } = "";

    /// <summary>Folder that input keys are made relative to (the project folder).</summary>
    [Required] public string ProjectDirectory { get; set; } = "";

    /// <summary>Files whose content the step depends on. Metadata <c>Key</c> overrides the key.</summary>
    public ITaskItem[] InputFiles { get; set; } = [];

    /// <summary>Metadata of <see cref="InputFiles"/> items that the step also depends on (e.g. a dataset's <c>Format</c>).</summary>
    public string[] InputFileMetadata { get; set; } = [];

    /// <summary>Folders whose every file (recursively) the step depends on.</summary>
    public ITaskItem[] InputDirectories { get; set; } = [];

    /// <summary>The cache folder holding this step's result.</summary>
    [Output] public string ResultDirectory { get; set; } = "";

    /// <summary>True when the step actually ran (its inputs changed).</summary>
    [Output] public bool Ran { get; set; }

    private string _outDir = "";
    private string _checkpointDir = "";

    /// <inheritdoc />
    public override bool Execute()
    {
        var hasher = new ContentHasher(Path.Combine(StateDir, "file-hashes.tsv"));
        try
        {
            return Execute(hasher);
        }
        finally
        {
            hasher.Save();
        }
    }

    private bool Execute(ContentHasher hasher)
    {
        StepInputs inputs;
        try
        {
            inputs = CollectInputs(hasher);
        }
        catch (FileNotFoundException e)
        {
            Log.LogError(null, "FT6015", null, ProjectFile, 0, 0, 0, 0, $"{StepName}: input file '{e.FileName}' is missing.");
            return false;
        }

        var fingerprint = inputs.Fingerprint();
        var stepDir = Path.Combine(CacheDir, CacheName);
        ResultDirectory = Path.Combine(stepDir, fingerprint[..32]);
        var lastInputsFile = Path.Combine(StateDir, CacheName + ".inputs.tsv");
        var previous = File.Exists(lastInputsFile) ? StepInputs.Parse(File.ReadAllText(lastInputsFile)) : null;

        if (UseCached(hasher, fingerprint, inputs, previous, lastInputsFile)) return true;

        // One build computes a given entry at a time; a second one waits and then uses its result.
        using var entryLock = EntryLock.Acquire(ResultDirectory + ".lock",
            () => Log.LogMessage(MessageImportance.High, $"{StepName}: waiting for another build that is computing the same result ({ResultDirectory}.lock)."),
            () => CancelRequested);
        if (CancelRequested) return false;
        if (UseCached(hasher, fingerprint, inputs, previous, lastInputsFile)) return true;

        var reason = _damaged
            ? "its cached result was damaged"
            : previous is null
                ? "no cached result for these inputs"
                : Summarise(inputs.DescribeChanges(previous));
        Log.LogMessage(MessageImportance.High, $"{StepName}: running ({reason}).");

        _outDir = ResultDirectory + ".tmp-" + Environment.ProcessId;
        _checkpointDir = ResultDirectory + ".checkpoint";
        if (Directory.Exists(_outDir)) Directory.Delete(_outDir, recursive: true);
        Directory.CreateDirectory(_outDir);
        Placeholders["{out}"] = _outDir;
        Placeholders["{checkpoint}"] = _checkpointDir;

        Ran = true;
        var ok = RunTool();
        if (!ok)
        {
            TryDeleteDirectory(_outDir);
            return false;
        }
        try
        {
            File.WriteAllText(Path.Combine(_outDir, ".inputs.tsv"), inputs.Serialize());
            CacheEntryManifest.Write(_outDir, fingerprint, hasher);
            Publish(hasher, fingerprint);
        }
        catch (IOException e)
        {
            TryDeleteDirectory(_outDir);
            Log.LogError(null, "FT6022", null, ProjectFile, 0, 0, 0, 0,
                $"{StepName}: its result could not be stored in the cache {CacheDir} ({e.Message}). Free space there (or set FineTuneCacheDir to a folder with room) and build again; nothing half-written was kept.");
            return false;
        }
        TryDeleteDirectory(_checkpointDir);
        RememberInputs(lastInputsFile, inputs);
        return true;
    }

    /// <summary>True when a verified entry for <paramref name="fingerprint"/> is in the cache; a damaged one is moved aside with a warning.</summary>
    private bool UseCached(ContentHasher hasher, string fingerprint, StepInputs inputs, IReadOnlyDictionary<string, string>? previous, string lastInputsFile)
    {
        if (!Directory.Exists(ResultDirectory)) return false;
        var problem = CacheEntryManifest.Verify(ResultDirectory, fingerprint, hasher);
        if (problem is not null)
        {
            _damaged = true;
            var aside = MoveAside(ResultDirectory);
            Log.LogWarning(null, "FT6020", null, ProjectFile, 0, 0, 0, 0,
                $"{StepName}: the cached result {ResultDirectory} is damaged: {problem}. " +
                (aside is null ? "It was removed" : $"It was moved to {aside}") + " and the step runs again.");
            return false;
        }
        var why = previous is null ? "result restored from the cache" : inputs.DescribeChanges(previous).Count == 0 ? "inputs unchanged" : "inputs match a cached result";
        Log.LogMessage(MessageImportance.High, $"{StepName}: up to date ({why}; {inputs.Entries.Count} inputs, fingerprint {fingerprint[..12]}).");
        RememberInputs(lastInputsFile, inputs);
        return true;
    }

    /// <summary>
    /// Renames the finished temp folder into place. The first writer wins (as in Bazel's disk
    /// cache): when another build stored a sound entry meanwhile, ours is discarded (same inputs,
    /// same bytes); a damaged one is moved aside first.
    /// </summary>
    private void Publish(ContentHasher hasher, string fingerprint)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Directory.Move(_outDir, ResultDirectory);
                return;
            }
            catch (IOException) when (Directory.Exists(ResultDirectory) && attempt < 3)
            {
                if (CacheEntryManifest.Verify(ResultDirectory, fingerprint, hasher) is null)
                {
                    Log.LogMessage(MessageImportance.High, $"{StepName}: another build stored the same result first; using it.");
                    TryDeleteDirectory(_outDir);
                    return;
                }
                MoveAside(ResultDirectory);
            }
        }
    }

    /// <summary>
    /// Renames a damaged entry out of the way rather than deleting it in place, so a build reading
    /// it right now keeps its open files; entries moved aside over a day ago are deleted.
    /// </summary>
    private static string? MoveAside(string entry)
    {
        var stepDir = Path.GetDirectoryName(entry)!;
        foreach (var old in Directory.EnumerateDirectories(stepDir, "*.damaged-*"))
            if (Directory.GetLastWriteTimeUtc(old) < DateTime.UtcNow.AddDays(-1)) TryDeleteDirectory(old);
        var aside = $"{entry}.damaged-{DateTime.UtcNow:yyyyMMddHHmmss}-{Environment.ProcessId}";
        try
        {
            Directory.Move(entry, aside);
            return aside;
        }
        catch (IOException) when (!Directory.Exists(entry))
        {
            return null; // another build moved it first
        }
        catch (IOException)
        {
            TryDeleteDirectory(entry);
            return null;
        }
    }

    private bool _damaged;

    private StepInputs CollectInputs(ContentHasher hasher)
    {
        var inputs = new StepInputs();
        foreach (var item in InputFiles)
        {
            var full = item.GetMetadata("FullPath");
            if (!File.Exists(full)) throw new FileNotFoundException(null, item.ItemSpec);
            var key = item.GetMetadata("Key");
            var name = string.IsNullOrEmpty(key) ? Relative(full) : key;
            inputs.Add("file:" + name, hasher.HashFile(full));
            foreach (var meta in InputFileMetadata)
            {
                var value = item.GetMetadata(meta);
                if (!string.IsNullOrEmpty(value)) inputs.Add($"meta:{name}#{meta}", ContentHasher.HashText(value));
            }
        }
        foreach (var item in InputDirectories)
        {
            var dir = item.GetMetadata("FullPath");
            if (!Directory.Exists(dir)) throw new FileNotFoundException(null, item.ItemSpec);
            var key = item.GetMetadata("Key");
            var prefix = string.IsNullOrEmpty(key) ? Relative(dir) : key;
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
            {
                var rel = Path.GetRelativePath(dir, file).Replace('\\', '/');
                // Hidden files and folders (editor swap files, .cache from hub downloads) are not model content.
                if (rel.Split('/').Any(p => p.StartsWith('.'))) continue;
                inputs.Add($"dir:{prefix}/{rel}", hasher.HashFile(file));
            }
        }
        // The command line is an input too (a quantization type, a template name), with this
        // checkout's folders replaced by placeholders so another checkout computes the same key.
        inputs.Add("args", ContentHasher.HashText(string.Join("\n", CliArguments.Select(NormalizeArgument))));
        // The tool's own code is an input: a new engine may train differently.
        var cliDir = Path.GetDirectoryName(Path.GetFullPath(CliPath))!;
        foreach (var dll in Directory.EnumerateFiles(cliDir, "FineTune.*.dll").Append(Path.GetFullPath(CliPath)).Order(StringComparer.Ordinal))
            inputs.Add("tool:" + Path.GetFileName(dll), hasher.HashFile(dll));
        return inputs;
    }

    private string NormalizeArgument(string arg)
    {
        var project = Path.TrimEndingDirectorySeparator(Path.GetFullPath(ProjectDirectory));
        var cache = Path.TrimEndingDirectorySeparator(Path.GetFullPath(CacheDir));
        return arg.Replace(cache, "<cache>").Replace(project, "<project>").Replace('\\', '/');
    }

    private static string Summarise(IReadOnlyList<string> changes)
    {
        if (changes.Count == 0) return "no cached result for these inputs";
        const int shown = 4;
        var text = string.Join(", ", changes.Take(shown));
        return changes.Count > shown ? $"{text} and {changes.Count - shown} more" : text;
    }

    private void RememberInputs(string file, StepInputs inputs)
    {
        Directory.CreateDirectory(StateDir);
        File.WriteAllText(file, inputs.Serialize());
    }

    private string Relative(string full) => Path.GetRelativePath(ProjectDirectory, full).Replace('\\', '/');

    private static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
