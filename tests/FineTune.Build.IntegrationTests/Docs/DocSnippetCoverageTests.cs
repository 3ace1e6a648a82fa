namespace FineTune.Build.IntegrationTests.Docs;

/// <summary>
/// Every ```xml and ```bash block of README.md and docs/*.md that a user would copy is built or run
/// by a named test, or is listed here with the reason it cannot be. A block added to the docs without
/// either fails this test, and so does an entry whose block is gone.
/// </summary>
public sealed class DocSnippetCoverageTests
{
    /// <summary>(file, section, language, n-th block of that language in the section) and who covers it.</summary>
    private static readonly (string File, string Section, string Language, int Index, string CoveredBy)[] Coverage =
    [
        ("README.md", "Two commands", "bash", 0,
            // `dotnet build example-project` is what PipelineTests and TrainedExampleFixture run on a copy of
            // example-project (shorter training); `bash .ci/run` is the suite this test is part of, so
            // running it from here would recurse.
            "excluded: the example build is PipelineTests' (on a copy, fewer steps); .ci/run runs this very suite"),
        ("README.md", "Use it in your own repository", "bash", 0, nameof(OwnRepositoryWalkthroughTests.Readme_own_repository_section_works_verbatim_from_a_clone)),
        ("README.md", "Use it in your own repository", "xml", 0, nameof(OwnRepositoryWalkthroughTests.Readme_own_repository_section_works_verbatim_from_a_clone)
            + ", " + nameof(ReadmeProjectSnippetTests.Readme_project_snippet_builds_a_csv_with_empty_cells_through_the_columns_format)),
        ("README.md", "Use it in your own repository", "bash", 1, nameof(OwnRepositoryWalkthroughTests.Readme_own_repository_section_works_verbatim_from_a_clone)),
        ("docs/configuration.md", "Preference training (DPO and ORPO)", "xml", 0, nameof(PreferencePipelineTests.Sft_then_dpo_builds_the_model_and_a_preference_edit_reruns_only_the_dpo_stage)),
        ("docs/cli.md", "`finetune chat`", "sh", 0, nameof(QualityGateTests.The_example_reports_each_gguf_against_the_trained_model_chats_with_the_gguf_and_a_damaged_gguf_fails_the_build)),
    ];

    [Fact]
    public void Every_copied_snippet_is_built_or_run_by_a_test_or_excluded_with_a_reason()
    {
        var snippets = DocSnippets.All()
            .GroupBy(s => (s.File, s.Section, s.Language))
            .SelectMany(g => g.Select((s, i) => (Key: (s.File, s.Section, s.Language, i), Snippet: s)))
            .ToList();
        var covered = Coverage.Select(c => (c.File, c.Section, c.Language, c.Index)).ToHashSet();
        var uncovered = snippets.Where(s => !covered.Contains(s.Key)).Select(s => s.Snippet.ToString()).ToList();
        Assert.True(uncovered.Count == 0, "Copyable blocks no test builds or runs (add a test, or an exclusion with its reason, to Coverage):\n" + string.Join('\n', uncovered));
        var present = snippets.Select(s => s.Key).ToHashSet();
        var stale = Coverage.Where(c => !present.Contains((c.File, c.Section, c.Language, c.Index))).Select(c => $"{c.File} '{c.Section}' {c.Language} #{c.Index}").ToList();
        Assert.True(stale.Count == 0, "Coverage lists blocks the docs no longer have:\n" + string.Join('\n', stale));
    }
}
