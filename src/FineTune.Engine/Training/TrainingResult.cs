namespace FineTune.Engine.Training;

/// <summary>The summary of a finished run (also written as <c>train-summary.json</c>).</summary>
public sealed record TrainingResult(double FinalTrainLoss, double? FinalEvalLoss, int Steps, long Tokens, double Seconds, double TokensPerSecond, string EngineVersion, string Device);
