namespace FineTune.Data;

/// <summary>The FT1xxx codes this project reports (each listed with cause and fix in docs/errors.md).</summary>
public static class DataErrors
{
    /// <summary>A dataset file does not exist.</summary>
    public const string FileNotFound = "FT1001";
    /// <summary>A dataset file (or sheet) has no rows.</summary>
    public const string EmptyFile = "FT1002";
    /// <summary>A JSONL line is not valid JSON.</summary>
    public const string MalformedJsonLine = "FT1003";
    /// <summary>A .json file is not valid JSON or not an array of objects.</summary>
    public const string MalformedJsonDocument = "FT1004";
    /// <summary>A row lacks a field its format requires.</summary>
    public const string MissingField = "FT1005";
    /// <summary>A field has the wrong JSON type.</summary>
    public const string WrongType = "FT1006";
    /// <summary>The <c>Format</c> metadata is unknown, or cannot be inferred.</summary>
    public const string UnknownFormat = "FT1007";
    /// <summary>A <c>{column}</c> in <c>Prompt</c>/<c>Response</c> names no column of the dataset.</summary>
    public const string UnknownColumn = "FT1008";
    /// <summary>The <c>columns</c> format needs <c>Prompt</c> and <c>Response</c> metadata.</summary>
    public const string MissingColumnsTemplate = "FT1009";
    /// <summary>A message role (<c>from</c>/<c>role</c>) is not one of the supported ones.</summary>
    public const string UnknownRole = "FT1010";
    /// <summary>A conversation has no assistant reply, or a reply before any user message.</summary>
    public const string BadConversation = "FT1011";
    /// <summary>The <c>Sheet</c> metadata names no sheet of the workbook.</summary>
    public const string SheetNotFound = "FT1012";
    /// <summary>The dataset file's extension is not a supported one.</summary>
    public const string UnsupportedFile = "FT1013";
    /// <summary>A CSV/TSV row is malformed (bad quoting, wrong number of fields).</summary>
    public const string MalformedCsv = "FT1014";
    /// <summary>The <c>ConversationExtension</c> metadata is not a whole number of at least 1.</summary>
    public const string BadConversationExtension = "FT1015";
    /// <summary>The <c>Split</c> metadata is neither <c>train</c> nor <c>validation</c>.</summary>
    public const string BadSplit = "FT1016";
    /// <summary>The request file given to <c>finetune format</c> is malformed.</summary>
    public const string BadRequest = "FT1017";
    /// <summary><c>[[</c> and <c>]]</c> in a <c>Prompt</c>/<c>Response</c> template do not pair up.</summary>
    public const string UnbalancedOptional = "FT1018";
    /// <summary>No training examples remain (no datasets, or everything is validation data).</summary>
    public const string NoTrainingExamples = "FT1019";
    /// <summary>A preference row's prompt, chosen or rejected value is neither text nor a list of messages, or has the wrong roles.</summary>
    public const string BadPreferenceRow = "FT1070";
    /// <summary>A preference dataset is given ConversationExtension, or the project's preference data and trainer disagree.</summary>
    public const string BadPreferenceItem = "FT1071";

    /// <summary>Warning: two examples render to the same text.</summary>
    public const string DuplicateExample = "FT1501";
    /// <summary>Warning: an assistant reply is empty.</summary>
    public const string EmptyReply = "FT1502";
    /// <summary>Warning: one output value dominates a <c>columns</c> dataset.</summary>
    public const string ClassImbalance = "FT1503";
}
