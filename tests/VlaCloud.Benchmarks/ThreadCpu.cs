using System.Globalization;

namespace VlaCloud.Benchmarks;

/// <summary>
/// CPU time of this process's threads, one by one, from <c>/proc/self/task/&lt;tid&gt;/schedstat</c> (nanoseconds; where
/// absent, utime + stime of <c>stat</c> in the kernel's clock ticks), and of the whole process (<see cref="ProcessNow"/>). It lets
/// the serving benchmark take the inference threads' CPU (the forward) out of the host's, so the overhead it prints is
/// measured, not the difference of two noisy figures taken at different moments.
/// </summary>
internal static class ThreadCpu
{
    // USER_HZ: the unit of utime/stime in /proc; 100 on every Linux the benchmarks run on (it is fixed by the ABI).
    private const double TicksPerSecond = 100;

    /// <summary>
    /// One thread's name (<c>comm</c>, at most 15 characters), CPU time so far, and how many times it has blocked and been
    /// woken up since it started (<c>voluntary_ctxt_switches</c> of its <c>status</c>; 0 where absent). A preemption
    /// does not count: on a loaded machine those say more about the neighbours than about the thread.
    /// </summary>
    internal readonly record struct Sample(int Tid, string Name, TimeSpan Cpu, long Wakeups = 0);

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
        // The scheduler's own count of the thread's run time, in nanoseconds: utime+stime come in 10 ms ticks, which over
        // a 3 s span of ~60 requests is ±0.2 ms per request for each thread read, as large as the overhead being measured.
        var wakeups = ReadVoluntarySwitches(tid);
        if (ReadSchedstatNanoseconds(tid) is { } nanoseconds) return new Sample(tid, name, TimeSpan.FromTicks(nanoseconds / 100), wakeups);
        var fields = stat[(close + 2)..].Split(' ');
        // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return new Sample(tid, name, TimeSpan.FromSeconds(ticks / TicksPerSecond));
    }

    private static long? ReadSchedstatNanoseconds(int tid)
    {
        try
        {
            // "run_ns wait_ns timeslices\n"; absent without CONFIG_SCHED_INFO.
            var text = File.ReadAllText($"/proc/self/task/{tid}/schedstat");
            var end = text.IndexOf(' ');
            return end > 0 && long.TryParse(text.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out var ns) ? ns : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long ReadVoluntarySwitches(int tid)
    {
        const string Field = "voluntary_ctxt_switches:";
        try
        {
            foreach (var line in File.ReadLines($"/proc/self/task/{tid}/status"))
                if (line.StartsWith(Field, StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(Field.Length).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds; public long Nanoseconds; }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>
    /// This process's CPU time, threads that have ended included: <c>CLOCK_PROCESS_CPUTIME_ID</c> at nanosecond
    /// resolution on Linux, else <see cref="System.Diagnostics.Process.TotalProcessorTime"/> (clock ticks).
    /// </summary>
    public static TimeSpan ProcessNow()
    {
        const int ProcessCpuTimeId = 2;
        if (OperatingSystem.IsLinux() && ClockGetTime(ProcessCpuTimeId, out var time) == 0)
            return TimeSpan.FromTicks(time.Seconds * TimeSpan.TicksPerSecond + time.Nanoseconds / 100);
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.TotalProcessorTime;
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

    /// <summary>
    /// CPU and wake-ups since <paramref name="before"/> per thread group (the thread's name without digits and trailing
    /// spaces, so the pool's workers or the Redis client's socket threads add up): which threads a request wakes and what
    /// they spend. Read from <paramref name="after"/>, a <see cref="ReadAll"/> taken when the span ended.
    /// </summary>
    public static Dictionary<string, (TimeSpan Cpu, long Wakeups, int Threads)> ByGroup(List<Sample> before, List<Sample> after)
    {
        var then = before.ToDictionary(s => s.Tid);
        var groups = new Dictionary<string, (TimeSpan Cpu, long Wakeups, int Threads)>();
        foreach (var now in after)
        {
            var old = then.GetValueOrDefault(now.Tid);
            var name = Group(now.Name);
            var sum = groups.GetValueOrDefault(name);
            groups[name] = (sum.Cpu + now.Cpu - old.Cpu, sum.Wakeups + now.Wakeups - old.Wakeups, sum.Threads + 1);
        }
        return groups;
    }

    private static string Group(string name) => new string(name.Where(c => !char.IsAsciiDigit(c)).ToArray()).TrimEnd(' ', '-', '#', '_');
}
