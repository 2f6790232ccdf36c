using System.Globalization;

namespace VlaCloud.Benchmarks;

/// <summary>
/// CPU time of this process's threads, one by one, from <c>/proc/self/task/&lt;tid&gt;/stat</c> (utime + stime, in the
/// kernel's clock ticks, the unit <see cref="System.Diagnostics.Process.TotalProcessorTime"/> is read in too). It lets
/// the serving benchmark take the inference threads' CPU (the forward) out of the host's, so the overhead it prints is
/// measured, not the difference of two noisy figures taken at different moments.
/// </summary>
internal static class ThreadCpu
{
    // USER_HZ: the unit of utime/stime in /proc; 100 on every Linux the benchmarks run on (it is fixed by the ABI).
    private const double TicksPerSecond = 100;

    /// <summary>One thread's name (<c>comm</c>, at most 15 characters) and CPU time so far.</summary>
    internal readonly record struct Sample(int Tid, string Name, TimeSpan Cpu);

    /// <summary>Whether per-thread CPU can be read here (Linux with /proc).</summary>
    public static bool Available => OperatingSystem.IsLinux() && Directory.Exists("/proc/self/task");

    /// <summary>Every thread of this process alive now; a thread that ends between listing and reading is left out.</summary>
    public static List<Sample> ReadAll()
    {
        var samples = new List<Sample>();
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var tid)) continue;
            if (Read(tid) is { } sample) samples.Add(sample);
        }
        return samples;
    }

    /// <summary>One thread's sample, or null when it has ended.</summary>
    public static Sample? Read(int tid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        // "tid (comm) state ppid ...": comm may hold spaces and parentheses, so the fields start after the last ')'.
        var open = stat.IndexOf('(');
        var close = stat.LastIndexOf(')');
        var name = stat[(open + 1)..close];
        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return new Sample(tid, name, TimeSpan.FromSeconds(ticks / TicksPerSecond));
    }

    /// <summary>
    /// The CPU time the threads <paramref name="belongs"/> picks spent since <paramref name="before"/> (from
    /// <see cref="ReadAll"/>): per thread, now minus then (a thread started since counts from zero). A thread that ended
    /// in between takes its CPU with it, so compare over a span in which the picked threads live (the inference worker
    /// lives as long as its host).
    /// </summary>
    public static TimeSpan Since(List<Sample> before, Func<Sample, bool> belongs)
    {
        var then = before.ToDictionary(s => s.Tid, s => s.Cpu);
        var total = TimeSpan.Zero;
        foreach (var now in ReadAll().Where(belongs))
            total += now.Cpu - then.GetValueOrDefault(now.Tid);
        return total;
    }
}
