using System.CommandLine;
using FineTune.Core.Diagnostics;

namespace FineTune.Cli;

/// <summary>
/// The <c>finetune</c> command. Each sub-command lives in its own file under Commands/ and is
/// registered here. Exit codes: 0 success, 1 an FTnnnn error in the input (printed in MSBuild's
/// canonical form on stderr), 2 bad command-line usage, 130 cancelled (Ctrl+C), 70 internal error.
/// </summary>
public static class CliApp
{
    /// <summary>Exit code for success.</summary>
    public const int Success = 0;
    /// <summary>Exit code for a reported FTnnnn error.</summary>
    public const int InputError = 1;
    /// <summary>Exit code for wrong usage of the command line.</summary>
    public const int UsageError = 2;
    /// <summary>Exit code for an unexpected failure (a bug: FT9xxx).</summary>
    public const int InternalError = 70;
    /// <summary>Exit code when cancelled by Ctrl+C / SIGINT / SIGTERM.</summary>
    public const int Cancelled = 130;

    /// <summary>Builds the command tree.</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand("FineTune.Build: fine-tune LLMs with LoRA and ship them as GGUF + Ollama Modelfile.");
        foreach (var command in Commands.Registry.All())
            root.Subcommands.Add(command);
        return root;
    }

    /// <summary>The command line this process was started with (a multi-GPU run starts its ranks with it).</summary>
    public static IReadOnlyList<string> Arguments { get; private set; } = [];

    /// <summary>Parses and runs; maps FineTune errors and cancellation to exit codes.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        Arguments = args;
        using var cts = new CancellationTokenSource();
        // The first Ctrl+C (SIGINT) or SIGTERM asks the running step to stop cleanly: training
        // finishes its current step and writes a checkpoint, no half-written file is left. Further
        // SIGTERMs are ignored, so a build that forwards the cancellation to this process (the
        // MSBuild task sends SIGTERM) while a terminal's Ctrl+C also reached it cannot cut the
        // checkpoint short; a second Ctrl+C is left to the runtime's default and kills the process,
        // the user's way out when a step takes too long (the previous checkpoint stays usable).
        void RequestStop()
        {
            if (cts.IsCancellationRequested) return;
            Console.Error.WriteLine("finetune: cancelling, finishing the current step cleanly...");
            cts.Cancel();
        }
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            if (cts.IsCancellationRequested) return;
            e.Cancel = true;
            RequestStop();
        };
        Console.CancelKeyPress += onCancel;
        using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(
            System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; RequestStop(); });
        try
        {
            var parse = CreateRoot().Parse(args);
            if (parse.Errors.Count > 0 && !args.Contains("--help") && !args.Contains("-h"))
            {
                // Canonical lines so MSBuild and CI show a usage mistake as an error with a code.
                foreach (var error in parse.Errors)
                    Console.Error.WriteLine(CanonicalMessage.Format(Severity.Error, "FT7090", error.Message + " Run 'finetune --help' for usage."));
                return UsageError;
            }
            // FineTuneException must reach the catch below to be printed in canonical form.
            // System.CommandLine's own signal handling is off (ProcessTerminationTimeout = null): it
            // would kill the process two seconds after Ctrl+C, before a training step and its
            // checkpoint can finish, and it crashes when a second signal arrives.
            var invocation = new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
            return await parse.InvokeAsync(invocation, cts.Token);
        }
        catch (FineTuneException e)
        {
            Console.Error.WriteLine(e.ToCanonicalString());
            return InputError;
        }
        catch (IOException e) when (DiskFull.Is(e))
        {
            // Not a bug: the build removes the step's temporary folder, so no partial file is kept.
            Console.Error.WriteLine(CanonicalMessage.Format(Severity.Error, "FT6023", DiskFull.Message(e)));
            return InputError;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            Console.Error.WriteLine("finetune: cancelled.");
            return Cancelled;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // A bug, not bad input: one canonical line for the build log, the details after it.
            Console.Error.WriteLine(CanonicalMessage.Format(Severity.Error, "FT9002", $"Internal error: {e.GetType().Name}: {e.Message} Please report it with the details below."));
            Console.Error.WriteLine(e);
            return InternalError;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
