using FineTune.Core.Config;

namespace FineTune.Engine.Training.Preference;

/// <summary>One sequence's summed log-probability of its completion tokens, their count and the sum over them of the mean logit (over the vocabulary).</summary>
public readonly record struct SequenceLogp(double Sum, int Tokens, double LogitSum);

/// <summary>What one pair contributes: its loss, d(loss)/d(summed log-probability) of each side, and TRL's logged values.</summary>
/// <param name="Loss">The pair's loss (before averaging over pairs; ORPO's NLL term is added per step, not here).</param>
/// <param name="DChosen">d(Loss)/d(summed log-probability of the chosen completion).</param>
/// <param name="DRejected">d(Loss)/d(summed log-probability of the rejected completion).</param>
/// <param name="ChosenReward">TRL's <c>rewards/chosen</c> for this pair.</param>
/// <param name="RejectedReward">TRL's <c>rewards/rejected</c>.</param>
/// <param name="ChosenLogp">TRL's <c>logps/chosen</c> (averaged per token for ipo and ORPO, as TRL does).</param>
/// <param name="RejectedLogp">TRL's <c>logps/rejected</c>.</param>
/// <param name="LogOdds">ORPO's log odds ratio of chosen over rejected (<c>log_odds_chosen</c>), else 0.</param>
/// <param name="Ratio">ORPO's log σ(log odds) (<c>log_odds_ratio</c>), else 0.</param>
public readonly record struct PairLoss(double Loss, double DChosen, double DRejected, double ChosenReward, double RejectedReward,
    double ChosenLogp, double RejectedLogp, double LogOdds, double Ratio);

/// <summary>
/// The preference losses of TRL (DPOTrainer.dpo_loss for sigmoid/ipo/hinge, ORPOTrainer.odds_ratio_loss),
/// in float64, with their derivatives written out: the engine back-propagates d(loss)/d(log-probability)
/// through each completion token's cross-entropy.
/// </summary>
public static class PreferenceLoss
{
    /// <summary>The loss of one pair; <paramref name="refChosen"/>/<paramref name="refRejected"/> are the reference model's summed log-probabilities (unused by ORPO).</summary>
    public static PairLoss Pair(TrainingConfig c, SequenceLogp chosen, SequenceLogp rejected, double refChosen, double refRejected)
    {
        var beta = c.Beta;
        if (c.Trainer == "orpo")
        {
            // ORPO works on the mean log-probability per completion token.
            double pc = chosen.Sum / chosen.Tokens, pr = rejected.Sum / rejected.Tokens;
            var logOdds = pc - pr - (Math.Log(-double.ExpM1(pc)) - Math.Log(-double.ExpM1(pr)));
            var ratio = LogSigmoid(logOdds);
            // loss = -beta * ratio; d ratio/d logOdds = sigmoid(-logOdds); d logOdds/d pc = 1/(1 - e^pc).
            var dLogOdds = -beta * Sigmoid(-logOdds);
            var dc = dLogOdds / -double.ExpM1(pc) / chosen.Tokens;
            var dr = -dLogOdds / -double.ExpM1(pr) / rejected.Tokens;
            return new PairLoss(-beta * ratio, dc, dr, beta * pc, beta * pr, pc, pr, logOdds, ratio);
        }
        double policyC = chosen.Sum, policyR = rejected.Sum, refC = refChosen, refR = refRejected, perC = 1, perR = 1;
        if (c.LossType == "ipo")
        {
            // TRL averages the log-probabilities per token for IPO (its paper's formulation).
            perC = 1.0 / chosen.Tokens;
            perR = 1.0 / rejected.Tokens;
            (policyC, policyR, refC, refR) = (policyC * perC, policyR * perR, refC * perC, refR * perR);
        }
        var h = policyC - policyR - (refC - refR);
        double loss, dh;
        switch (c.LossType)
        {
            case "sigmoid":
                var ls = c.LabelSmoothing;
                loss = -LogSigmoid(beta * h) * (1 - ls) - LogSigmoid(-beta * h) * ls;
                dh = beta * (-(1 - ls) * Sigmoid(-beta * h) + ls * Sigmoid(beta * h));
                break;
            case "ipo":
                var d = h - 1 / (2 * beta);
                loss = d * d;
                dh = 2 * d;
                break;
            case "hinge":
                loss = Math.Max(0, 1 - beta * h);
                dh = 1 - beta * h > 0 ? -beta : 0;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(c), c.LossType, "unknown loss_type");
        }
        return new PairLoss(loss, dh * perC, -dh * perR, beta * (policyC - refC), beta * (policyR - refR), policyC, policyR, 0, 0);
    }

    /// <summary>log σ(x) without overflow.</summary>
    public static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));

    /// <summary>σ(x) without overflow.</summary>
    public static double Sigmoid(double x) => x >= 0 ? 1 / (1 + Math.Exp(-x)) : Math.Exp(x) / (1 + Math.Exp(x));
}
