using FineTune.Core.Config;
using FineTune.Core.Datasets;
using FineTune.Core.Diagnostics;
using FineTune.Engine.Model;

namespace FineTune.Engine.Training.Preference;

/// <summary>The reference model's summed completion log-probabilities of one pair.</summary>
public readonly record struct ReferenceLogps(double Chosen, double Rejected);

/// <summary>
/// One optimizer step of DPO or ORPO over <see cref="ITrainingModel"/>: each micro-batch packs the
/// chosen and the rejected sequence of its pairs into one padding-free batch, the loss is the mean
/// over the step's pairs (ORPO adds the NLL of the chosen completions, averaged over their tokens),
/// and each completion token's cross-entropy gets d(loss)/d(its sequence's log-probability) as its
/// backward scale. Metrics carry TRL's names.
/// </summary>
public sealed class PreferenceObjective
{
    private readonly TrainingConfig _c;

    /// <summary>Checks the pairs (each side needs a completion token) for <paramref name="config"/>'s trainer.</summary>
    public PreferenceObjective(TrainingConfig config, IReadOnlyList<TokenizedPair> pairs, string which)
    {
        _c = config;
        for (var i = 0; i < pairs.Count; i++)
            if (Rows(pairs[i].Chosen) == 0 || Rows(pairs[i].Rejected) == 0)
                throw new FineTuneException("FT3123",
                    $"Preference pair {i + 1} of the {which} data has an empty {(Rows(pairs[i].Chosen) == 0 ? "chosen" : "rejected")} completion after tokenization and truncation: it cannot be scored. Check the row, or raise max_length.");
    }

    /// <summary>True when the loss needs the reference model (DPO); ORPO has none.</summary>
    public bool NeedsReference => _c.Trainer == "dpo";

    /// <summary>
    /// The reference model's log-probabilities of every pair, in batches of <paramref name="batchSize"/>
    /// pairs, forward only: with <paramref name="adapterEnabled"/> false the frozen base model (the
    /// adapter switched off), otherwise the model with the adapter as it is now (the start adapter).
    /// </summary>
    public static ReferenceLogps[] References(ITrainingModel model, IReadOnlyList<TokenizedPair> pairs, int batchSize, bool adapterEnabled)
    {
        model.DropoutKey = null;
        var result = new ReferenceLogps[pairs.Count];
        for (var i = 0; i < pairs.Count; i += batchSize)
        {
            var chunk = pairs.Skip(i).Take(batchSize).ToList();
            var (batch, counts) = Pack(chunk);
            var (rowLoss, means) = model.ForwardBackwardRows(batch, _ => null, adapterEnabled);
            var seqs = Sequences(rowLoss, means, counts);
            for (var k = 0; k < chunk.Count; k++) result[i + k] = new ReferenceLogps(seqs[2 * k].Sum, seqs[2 * k + 1].Sum);
        }
        return result;
    }

    /// <summary>Loss and TRL metrics of the pairs <paramref name="micro"/> lists per micro-batch; with <paramref name="train"/> true, gradients too.</summary>
    public (double Loss, long Tokens, SortedDictionary<string, double> Metrics) Run(ITrainingModel model, IReadOnlyList<IReadOnlyList<int>> micro,
        IReadOnlyList<TokenizedPair> pairs, IReadOnlyList<ReferenceLogps>? references, bool train)
    {
        var pairCount = micro.Sum(m => m.Count);
        var chosenTokens = micro.Sum(m => m.Sum(i => Rows(pairs[i].Chosen)));
        var acc = new Accumulator();
        long tokens = 0;
        // TRL disables dropout for preference training (disable_dropout=True); so does this engine.
        model.DropoutKey = null;
        foreach (var indices in micro)
        {
            if (indices.Count == 0) continue;
            var chunk = indices.Select(i => pairs[i]).ToList();
            var (batch, counts) = Pack(chunk);
            tokens += batch.TokenCount;
            var (rowLoss, means) = model.ForwardBackwardRows(batch, ce =>
            {
                var seqs = Sequences(ce, means: null, counts);
                var scales = train ? new float[ce.Length] : null;
                var row = 0;
                for (var k = 0; k < chunk.Count; k++)
                {
                    var r = references?[indices[k]] ?? default;
                    var pair = PreferenceLoss.Pair(_c, seqs[2 * k], seqs[2 * k + 1], r.Chosen, r.Rejected);
                    if (scales is not null)
                    {
                        // logp = -Σ cross-entropy, so d(loss)/d(ce) = -d(loss)/d(logp) / pairs; ORPO's NLL adds 1/(chosen tokens).
                        var nll = _c.Trainer == "orpo" ? 1.0 / chosenTokens : 0;
                        for (var t = 0; t < counts[2 * k]; t++) scales[row++] = (float)(-pair.DChosen / pairCount + nll);
                        for (var t = 0; t < counts[2 * k + 1]; t++) scales[row++] = (float)(-pair.DRejected / pairCount);
                    }
                }
                return scales;
            });
            var seqs = Sequences(rowLoss, means, counts);
            for (var k = 0; k < chunk.Count; k++)
            {
                var r = references?[indices[k]] ?? default;
                acc.Add(PreferenceLoss.Pair(_c, seqs[2 * k], seqs[2 * k + 1], r.Chosen, r.Rejected), seqs[2 * k], seqs[2 * k + 1]);
            }
        }
        return acc.Result(_c, pairCount, chosenTokens, tokens);
    }

    /// <summary>Chosen, rejected, chosen, ... packed without padding, and the loss rows of each sequence.</summary>
    private static (PackedBatch Batch, int[] RowCounts) Pack(IReadOnlyList<TokenizedPair> pairs)
    {
        var examples = pairs.SelectMany(p => new[] { p.Chosen, p.Rejected }).ToList();
        return (PackedBatch.FromExamples(examples), [.. examples.Select(Rows)]);
    }

    /// <summary>Loss rows of one sequence: targets after its first token (row t-1 predicts token t).</summary>
    private static int Rows(TokenizedExample e)
    {
        var n = 0;
        for (var t = 1; t < e.Length; t++) if (e.Targets[t]) n++;
        return n;
    }

    private static SequenceLogp[] Sequences(double[] rowLoss, double[]? means, int[] counts)
    {
        var result = new SequenceLogp[counts.Length];
        var row = 0;
        for (var s = 0; s < counts.Length; s++)
        {
            double sum = 0, logits = 0;
            for (var t = 0; t < counts[s]; t++, row++)
            {
                sum -= rowLoss[row];
                if (means is not null) logits += means[row];
            }
            result[s] = new SequenceLogp(sum, counts[s], logits);
        }
        return result;
    }

    /// <summary>Sums in pair order; the means are TRL's (over pairs; logits over completion tokens).</summary>
    private sealed class Accumulator
    {
        private double _loss, _rc, _rr, _acc, _lc, _lr, _logitC, _logitR, _logOdds, _ratio, _nll;
        private long _tokC, _tokR;

        public void Add(PairLoss p, SequenceLogp chosen, SequenceLogp rejected)
        {
            _loss += p.Loss;
            _rc += p.ChosenReward;
            _rr += p.RejectedReward;
            _acc += p.ChosenReward > p.RejectedReward ? 1 : 0;
            _lc += p.ChosenLogp;
            _lr += p.RejectedLogp;
            _logitC += chosen.LogitSum;
            _logitR += rejected.LogitSum;
            _tokC += chosen.Tokens;
            _tokR += rejected.Tokens;
            _logOdds += p.LogOdds;
            _ratio += p.Ratio;
            _nll -= chosen.Sum;
        }

        public (double, long, SortedDictionary<string, double>) Result(TrainingConfig c, int pairs, int chosenTokens, long tokens)
        {
            var loss = _loss / pairs;
            var m = new SortedDictionary<string, double>(StringComparer.Ordinal)
            {
                ["rewards/chosen"] = _rc / pairs,
                ["rewards/rejected"] = _rr / pairs,
                ["rewards/accuracies"] = _acc / pairs,
                ["rewards/margins"] = (_rc - _rr) / pairs,
                ["logps/chosen"] = _lc / pairs,
                ["logps/rejected"] = _lr / pairs,
                ["logits/chosen"] = _logitC / _tokC,
                ["logits/rejected"] = _logitR / _tokR,
            };
            if (c.Trainer == "orpo")
            {
                var nll = _nll / chosenTokens;
                m["nll_loss"] = nll;
                m["log_odds_ratio"] = _ratio / pairs;
                m["log_odds_chosen"] = _logOdds / pairs;
                loss += nll;
            }
            return (loss, tokens, m);
        }
    }
}
