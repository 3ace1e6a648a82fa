using System.Runtime.InteropServices;

namespace FineTune.Bench.FirstBuild;

/// <summary>
/// CPU time of this process's finished, waited-for descendants (getrusage RUSAGE_CHILDREN): the
/// build, its MSBuild nodes, task hosts and every CLI step they ran.
/// </summary>
internal static class ChildUsage
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal { public long Seconds; public long Microseconds; }

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct RUsage
    {
        public TimeVal User;
        public TimeVal System;
        public fixed long Rest[14];
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, out RUsage usage);

    public static (double User, double System) Seconds()
    {
        if (getrusage(-1, out var u) != 0) throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return (u.User.Seconds + u.User.Microseconds / 1e6, u.System.Seconds + u.System.Microseconds / 1e6);
    }
}
