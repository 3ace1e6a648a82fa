using FineTune.Engine.Lora;
using FineTune.Engine.Training;

namespace FineTune.Engine.Tests;

public class AdamWTests
{
    [Fact]
    public void Two_steps_match_the_pytorch_formula_by_hand()
    {
        var t = new LoraTensor("w", 1, 1);
        t.Value[0] = 1f;
        var opt = new AdamW(0.9, 0.999, 1e-8, 0.1);
        t.Grad[0] = 0.5f;
        opt.Step([t], 1, 0.01);
        // step 1: p = 1·(1 − 0.001) = 0.999; m = 0.05, v = 0.00025; m̂/√v̂ = 1 → p = 0.999 − 0.01 = 0.989
        Assert.Equal(0.989, t.Value[0], 6);
        t.Grad[0] = -1f;
        opt.Step([t], 2, 0.01);
        double p = 0.989 * (1 - 0.001), m = 0.9 * 0.05 - 0.1, v = 0.999 * 0.00025 + 0.001;
        p -= 0.01 / (1 - 0.81) * m / (Math.Sqrt(v) / Math.Sqrt(1 - 0.999 * 0.999) + 1e-8);
        Assert.Equal(p, t.Value[0], 6);
    }

    [Fact]
    public void Clipping_scales_to_the_max_norm()
    {
        var a = new LoraTensor("a", 1, 2);
        a.Grad[0] = 3; a.Grad[1] = 4;
        var norm = AdamW.GradNorm([a]);
        Assert.Equal(5, norm, 12);
        AdamW.Clip([a], norm, 1.0);
        Assert.Equal(0.6, a.Grad[0], 5);
        Assert.Equal(0.8, a.Grad[1], 5);
    }
}
