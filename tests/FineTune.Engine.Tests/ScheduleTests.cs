using FineTune.Engine.Training;

namespace FineTune.Engine.Tests;

public class ScheduleTests
{
    [Fact]
    public void Linear_warmup_then_decay_matches_hugging_face_by_hand()
    {
        // get_linear_schedule_with_warmup(warmup=2, total=10): 0, .5, 1, 7/8, 6/8, ... 1/8
        var s = new LrSchedule("linear", 1.0, 10, 2, 0);
        Assert.Equal([0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125], Enumerable.Range(0, 10).Select(s.At));
    }

    [Fact]
    public void Cosine_and_constant_and_warmup_ratio()
    {
        var cosine = new LrSchedule("cosine", 2.0, 10, 0, 0.25);
        Assert.Equal(3, cosine.WarmupSteps); // ceil(10 * 0.25)
        Assert.Equal(2.0, cosine.At(3), 12);
        Assert.Equal(2.0 * 0.5 * (1 + Math.Cos(Math.PI * 3 / 7)), cosine.At(6), 12);
        var constant = new LrSchedule("constant", 3.0, 10, 4, 0);
        Assert.Equal(0.75, constant.At(1), 12);
        Assert.Equal(3.0, constant.At(9), 12);
    }

    [Fact]
    public void Batch_plan_covers_every_example_once_per_epoch()
    {
        var plan = new BatchPlan(7, 2, 2, 3, 0, 2);
        Assert.Equal(4, plan.BatchesPerEpoch);
        Assert.Equal(4, plan.TotalSteps);
        var epoch0 = Enumerable.Range(0, 2).SelectMany(s => Enumerable.Range(0, 2).SelectMany(m => plan.Batch(s, m))).ToList();
        Assert.Equal(Enumerable.Range(0, 7), epoch0.Order());
        Assert.NotEqual(plan.Order(0), plan.Order(1));
    }
}
