using System.Globalization;

namespace VlaCloud.Testing;

/// <summary>
/// A process's resident memory from <c>/proc</c> (Linux): now, and the peak since the last <see cref="ResetPeak"/>.
/// The peak is what a bomb test needs: memory touched and given back between two samples still counts.
/// </summary>
public static class ProcessMemory
{
    /// <summary>Resident bytes now (<c>VmRSS</c>).</summary>
    public static long Resident(int pid) => Field(pid, "VmRSS:");

    /// <summary>Most resident bytes since the last <see cref="ResetPeak"/> or the start (<c>VmHWM</c>).</summary>
    public static long PeakResident(int pid) => Field(pid, "VmHWM:");

    /// <summary>Starts the peak afresh from the current resident size (<c>echo 5 &gt; /proc/PID/clear_refs</c>).</summary>
    public static void ResetPeak(int pid) => File.WriteAllText($"/proc/{pid}/clear_refs", "5");

    private static long Field(int pid, string name)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(name, StringComparison.Ordinal));
        var kilobytes = line[name.Length..].Trim().Split(' ')[0];
        return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
    }
}
