using System.Security.Cryptography;
using System.Text.Json.Nodes;
using FineTune.Cli.Chat;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli.Tests.Chat;

/// <summary>
/// How <c>finetune chat &lt;project | model-manifest.json&gt;</c> finds what a build made, on a project
/// laid out as a build leaves it (bin/Debug/model-manifest.json and Modelfile, the adapter in the
/// step cache). The end-to-end chat on a real build is in the README walkthrough integration test.
/// </summary>
public sealed class BuiltModelTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string Project => _dir.File("my-model");
    private string Adapter => Path.Combine(Project, "obj", "finetune", "cache", "train", "abc123");

    public void Dispose() => _dir.Dispose();

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>A built project: the fields and layout `finetune manifest` and the build write.</summary>
    private string WriteBuiltProject(string outputFolder = "bin/Debug", string template = "llama-3")
    {
        Directory.CreateDirectory(Project);
        File.WriteAllText(Path.Combine(Project, "my-model.csproj"), "<Project />");
        Directory.CreateDirectory(Path.Combine(Project, "data"));
        File.WriteAllText(Path.Combine(Project, "data", "train.jsonl"), "{}\n");
        File.WriteAllText(Path.Combine(Project, "lora.yaml"), "r: 8\n");
        Directory.CreateDirectory(Path.Combine(Project, "models", "base"));
        var config = "{\"model_type\":\"llama\"}"u8.ToArray();
        File.WriteAllBytes(Path.Combine(Project, "models", "base", "config.json"), config);
        Directory.CreateDirectory(Adapter);
        var adapterConfig = "{\"r\":8}"u8.ToArray();
        var weights = new byte[] { 1, 2, 3, 4 };
        File.WriteAllBytes(Path.Combine(Adapter, "adapter_config.json"), adapterConfig);
        File.WriteAllBytes(Path.Combine(Adapter, "adapter_model.safetensors"), weights);

        var output = Path.Combine(Project, outputFolder);
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "Modelfile"), "FROM ./my-model-1.0.0.Q8_0.gguf\nSYSTEM \"\"\"You answer briefly.\"\"\"\n");
        var manifest = new JsonObject
        {
            ["name"] = "my-model",
            ["version"] = "1.0.0",
            ["base_model"] = new JsonObject
            {
                ["path"] = "models/base",
                ["files"] = new JsonArray(new JsonObject { ["path"] = "config.json", ["sha256"] = Sha256(config), ["size"] = config.Length }),
            },
            ["adapter"] = new JsonObject
            {
                ["path"] = "obj/finetune/cache/train/abc123",
                ["files"] = new JsonArray(
                    new JsonObject { ["path"] = "adapter_config.json", ["sha256"] = Sha256(adapterConfig), ["size"] = adapterConfig.Length },
                    new JsonObject { ["path"] = "adapter_model.safetensors", ["sha256"] = Sha256(weights), ["size"] = weights.Length }),
            },
            ["chat_template"] = template,
            ["inputs"] = new JsonArray(new JsonObject { ["path"] = "data/train.jsonl" }, new JsonObject { ["path"] = "lora.yaml" }),
        };
        var path = Path.Combine(output, "model-manifest.json");
        File.WriteAllText(path, manifest.ToJsonString());
        return path;
    }

    [Fact]
    public void A_project_folder_leads_to_the_base_model_adapter_template_and_system_prompt_of_its_manifest()
    {
        var manifest = WriteBuiltProject();
        var built = BuiltModel.Find(Project)!;
        Assert.Equal(manifest, built.Manifest);
        Assert.Equal(Path.Combine(Project, "models", "base"), built.BaseModel);
        Assert.Equal(Adapter, built.Adapter);
        Assert.Equal("llama-3", built.ChatTemplate);
        Assert.Equal("You answer briefly.", built.SystemPrompt);
        // The manifest itself, from anywhere below the project, finds the same.
        Assert.Equal(built, BuiltModel.Find(manifest));
    }

    [Fact]
    public void A_template_file_is_taken_relative_to_the_project()
    {
        WriteBuiltProject(template: "templates/chat.jinja");
        Directory.CreateDirectory(Path.Combine(Project, "templates"));
        File.WriteAllText(Path.Combine(Project, "templates", "chat.jinja"), "{{ messages }}");
        Assert.Equal(Path.Combine(Project, "templates", "chat.jinja"), BuiltModel.Find(Project)!.ChatTemplate);
    }

    [Fact]
    public void A_model_folder_or_a_gguf_is_left_to_the_plain_chat()
    {
        WriteBuiltProject();
        Assert.Null(BuiltModel.Find(Path.Combine(Project, "models", "base")));
        var gguf = Path.Combine(Project, "bin", "Debug", "my-model-1.0.0.Q8_0.gguf");
        File.WriteAllBytes(gguf, "GGUF"u8.ToArray());
        Assert.Null(BuiltModel.Find(gguf));
    }

    [Fact]
    public void A_project_never_built_is_FT7013()
    {
        Directory.CreateDirectory(Project);
        File.WriteAllText(Path.Combine(Project, "my-model.csproj"), "<Project />");
        Assert.Equal("FT7013", Assert.Throws<FineTuneException>(() => BuiltModel.Find(Project)).Code);
    }

    [Fact]
    public void An_adapter_whose_bytes_changed_or_went_missing_is_FT7014()
    {
        WriteBuiltProject();
        File.WriteAllBytes(Path.Combine(Adapter, "adapter_model.safetensors"), [1, 2, 3, 5]);
        var changed = Assert.Throws<FineTuneException>(() => BuiltModel.Find(Project));
        Assert.Equal("FT7014", changed.Code);
        Assert.Contains("SHA-256 differs", changed.Message);
        Directory.Delete(Adapter, recursive: true);
        Assert.Equal("FT7014", Assert.Throws<FineTuneException>(() => BuiltModel.Find(Project)).Code);
    }

    [Fact]
    public void A_base_model_file_of_another_size_is_FT7015()
    {
        WriteBuiltProject();
        File.WriteAllText(Path.Combine(Project, "models", "base", "config.json"), "{\"model_type\":\"qwen3_moe\"}");
        Assert.Equal("FT7015", Assert.Throws<FineTuneException>(() => BuiltModel.Find(Project)).Code);
    }

    [Fact]
    public void A_json_that_is_no_manifest_or_lacks_the_adapter_record_is_FT7016()
    {
        var manifest = WriteBuiltProject();
        var old = JsonNode.Parse(File.ReadAllText(manifest))!.AsObject();
        old.Remove("adapter");
        File.WriteAllText(manifest, old.ToJsonString());
        var e = Assert.Throws<FineTuneException>(() => BuiltModel.Find(manifest));
        Assert.Equal("FT7016", e.Code);
        Assert.Contains("'adapter'", e.Message);
        File.WriteAllText(manifest, "not json");
        Assert.Equal("FT7016", Assert.Throws<FineTuneException>(() => BuiltModel.Find(manifest)).Code);
    }
}
