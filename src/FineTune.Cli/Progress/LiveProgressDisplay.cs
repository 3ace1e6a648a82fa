using FineTune.Core.Progress;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace FineTune.Cli.Progress;

/// <summary>
/// The live terminal display: a progress bar with step/total, loss (and the last validation loss),
/// learning rate, tokens/s, elapsed time, ETA and peak memory, redrawn in place. The trainer calls
/// <see cref="Report"/> from its own thread; a background loop redraws at a fixed rate so a fast
/// trainer is never slowed down by the terminal.
/// </summary>
public sealed class LiveProgressDisplay : ITrainingProgressReporter
{
    private const int BarWidth = 40;
    private readonly IAnsiConsole _console;
    private readonly string _title;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TrainingProgress? _latest;
    private double? _lastEvalLoss;
    private bool _disposed;

    /// <summary>Starts the display on <paramref name="console"/>, redrawing every <paramref name="refresh"/>.</summary>
    public LiveProgressDisplay(IAnsiConsole console, string title, TimeSpan refresh)
    {
        _console = console;
        _title = title;
        _loop = Task.Run(() => _console.Live(Render()).AutoClear(false).StartAsync(async ctx =>
        {
            while (!_stop.IsCancellationRequested)
            {
                ctx.UpdateTarget(Render());
                ctx.Refresh();
                try { await Task.Delay(refresh, _stop.Token); }
                catch (OperationCanceledException) { break; }
            }
            ctx.UpdateTarget(Render());
            ctx.Refresh();
        }));
    }

    /// <inheritdoc />
    public void Report(TrainingProgress value)
    {
        lock (_gate)
        {
            if (value.EvalLoss is { } eval)
            {
                _lastEvalLoss = eval;
                // An evaluation report repeats the step; keep the training numbers of the step itself.
                if (_latest is not null && _latest.Step == value.Step) return;
            }
            _latest = value;
        }
    }

    /// <inheritdoc />
    public void Complete(IReadOnlyList<string> artifacts) => Stop();

    /// <inheritdoc />
    public void Dispose()
    {
        Stop();
        _stop.Dispose();
    }

    private void Stop()
    {
        if (_disposed) return;
        _disposed = true;
        _stop.Cancel();
        _loop.GetAwaiter().GetResult();
    }

    private IRenderable Render()
    {
        TrainingProgress? p;
        double? eval;
        lock (_gate) { p = _latest; eval = _lastEvalLoss; }
        if (p is null)
            return new Markup($"[bold]{Markup.Escape(_title)}[/] [grey]starting...[/]");

        var fraction = p.TotalSteps <= 0 ? 0 : Math.Clamp((double)p.Step / p.TotalSteps, 0, 1);
        var done = (int)Math.Round(fraction * BarWidth);
        var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
        grid.AddRow(
            new Markup($"[bold]{Markup.Escape(_title)}[/]"),
            new Markup($"[green]{new string('━', done)}[/][grey]{new string('━', BarWidth - done)}[/] step [bold]{p.Step}[/]/{p.TotalSteps} ({ProgressFormat.Number(fraction * 100, "0")}%)"));
        var loss = $"loss [bold yellow]{ProgressFormat.Loss(p.Loss)}[/]";
        if (eval is { } e) loss += $"   eval loss [bold cyan]{ProgressFormat.Loss(e)}[/]";
        grid.AddRow(new Markup(""), new Markup($"{loss}   lr {ProgressFormat.LearningRate(p.LearningRate)}   grad norm {ProgressFormat.Number(p.GradNorm, "0.000")}"));
        var memory = p.PeakMemoryBytes is { } m ? $"   memory {ProgressFormat.Bytes(m)}" : "";
        grid.AddRow(new Markup(""), new Markup(
            $"{ProgressFormat.Rate(p.TokensPerSecond)} tok/s   elapsed {ProgressFormat.Duration(p.Elapsed)}   ETA [bold]{ProgressFormat.Duration(p.Eta)}[/]{memory}"));
        return grid;
    }
}
