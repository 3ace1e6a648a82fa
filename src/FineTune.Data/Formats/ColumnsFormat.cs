using FineTune.Core.Diagnostics;
using FineTune.Data.Readers;

namespace FineTune.Data.Formats;

/// <summary>The <c>columns</c> format: one user message from <c>Prompt</c>, one reply from <c>Response</c>.</summary>
internal sealed class ColumnsFormat
{
    private readonly PromptTemplate _prompt, _response;
    private bool _checkedColumns;

    public ColumnsFormat(string? prompt, string? response, string file)
    {
        if (string.IsNullOrWhiteSpace(prompt) || string.IsNullOrWhiteSpace(response))
            throw new FineTuneException(DataErrors.MissingColumnsTemplate,
                "Format=\"columns\" needs Prompt and Response metadata, e.g. <FineTuneDataset Include=\"data/titanic.csv\" Format=\"columns\" Prompt=\"[[The passenger embarked from {Embarked}.]] [[Their age is {Age}.]]\" Response=\"{Survived}\" /> (MSBuild reserves the name Output).", file);
        _prompt = PromptTemplate.Parse(prompt, "Prompt", file);
        _response = PromptTemplate.Parse(response, "Response", file);
    }

    /// <summary>The reply rendered for each row, for the class-imbalance lint.</summary>
    public List<string> Outputs { get; } = [];

    public Conversation Convert(DatasetRow row)
    {
        if (!_checkedColumns && row.Cells is { } cells)
        {
            // A table's header is fixed, so a misspelt column is caught once, before any row is used.
            foreach (var (template, name) in new[] { (_prompt, "Prompt"), (_response, "Response") })
                foreach (var field in template.Fields)
                    if (!cells.ContainsKey(field))
                        throw new FineTuneException(DataErrors.UnknownColumn,
                            $"{name} template uses column '{field}', which the dataset does not have; its columns are: {string.Join(", ", cells.Keys)}.",
                            row.File, row.Sheet is null ? 1 : 0, 0);
            _checkedColumns = true;
        }
        // Dropped optional parts leave the spaces between them at the ends; those are never meant.
        var output = _response.Render(row, "Response").Trim();
        Outputs.Add(output);
        return new Conversation([new Message(Role.User, _prompt.Render(row, "Prompt").Trim()), new Message(Role.Assistant, output)], row.File, row.Line);
    }
}
