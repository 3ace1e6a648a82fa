namespace FineTune.Ollama.Modelfiles;

/// <summary>
/// One instruction of a Modelfile as Ollama reads it.
/// </summary>
/// <param name="Command">The command in upper case: <c>FROM</c>, <c>ADAPTER</c>, <c>TEMPLATE</c>, <c>SYSTEM</c>,
/// <c>LICENSE</c>, <c>PARAMETER</c>, <c>MESSAGE</c>, <c>DRAFT</c>, <c>RENDERER</c>, <c>PARSER</c> or <c>REQUIRES</c>.</param>
/// <param name="Key">The parameter name for <c>PARAMETER</c>, the role for <c>MESSAGE</c>, otherwise null.</param>
/// <param name="Value">The value with its quotes removed, exactly as Ollama passes it on.</param>
/// <param name="Line">1-based line where the instruction starts.</param>
public sealed record ModelfileInstruction(string Command, string? Key, string Value, int Line);
