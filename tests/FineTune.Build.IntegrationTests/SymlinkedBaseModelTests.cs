using System.Security.Cryptography;

namespace FineTune.Build.IntegrationTests;

/// <summary>
/// A base model laid out as the Hugging Face hub cache lays it out: every file of
/// snapshots/&lt;commit&gt;/ is a relative link into blobs/. Each step reads, hashes and exports
/// the files the links point to.
/// </summary>
[Collection("pipeline")]
public sealed class SymlinkedBaseModelTests
{
    [Fact]
    public void A_base_model_folder_of_relative_symlinks_into_blobs_builds_end_to_end()
    {
        using var clone = ModelProjectSandbox.CreateFromExample(withTinyBaseModel: true);
        var generated = Path.Combine(clone.Root, "generated");
        TinyBaseModel.Write(generated, clone.Root);

        var repo = Path.Combine(clone.ProjectDir, "models", "hub");
        var snapshot = Path.Combine(repo, "snapshots", "0123456789abcdef0123456789abcdef01234567");
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(snapshot);
        foreach (var file in Directory.GetFiles(generated))
        {
            var blob = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
            File.Copy(file, Path.Combine(repo, "blobs", blob), overwrite: true);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", blob));
        }
        clone.SetProperty("BaseModel", "models/hub/snapshots/0123456789abcdef0123456789abcdef01234567");

        var build = clone.Dotnet("build");
        Assert.True(build.Succeeded, build.ToString());
        Assert.Equal(2, clone.Ggufs().Length);
        Assert.True(build.Ran("FineTuneTrain"), build.ToString());

        // The same bytes behind links train the same adapter as the plain folder: the GGUF is identical.
        using var plain = ModelProjectSandbox.CreateFromExample();
        ModelProjectSandbox.CopyAll(generated, Path.Combine(plain.ProjectDir, "models", "base"));
        var plainBuild = plain.Dotnet("build");
        Assert.True(plainBuild.Succeeded, plainBuild.ToString());
        Assert.Equal(clone.Ggufs().Select(ModelProjectSandbox.Sha256), plain.Ggufs().Select(ModelProjectSandbox.Sha256));
    }
}
