using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace VlaCloud;

/// <summary>
/// Makes libtorch's OpenMP threads sleep instead of spinning while they wait for work. Spinning threads starve the
/// threads that compute whenever there are more threads than free cores (a tiny training step measured 4x slower on
/// a loaded 2-core machine), which is the normal state of a host that batches on a few cores next to its HTTP
/// threads. libgomp reads <c>OMP_WAIT_POLICY</c> once, when libtorch loads it, so this runs as a module initializer
/// of every entry point's assembly (host, CLI, policy library, tests, benchmarks; this one source file is linked into
/// each by Directory.Build.targets), before any tensor exists. A value the operator set is left alone.
/// </summary>
internal static class PassiveOpenMpWait
{
    private const string Variable = "OMP_WAIT_POLICY";

    // CA2255 warns libraries off module initializers; here running before anything else is the point.
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries")]
    [ModuleInitializer]
    internal static void Apply()
    {
        if (!OperatingSystem.IsLinux() || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(Variable))) return;
        // .NET keeps its own copy of the environment on Unix; native code (libgomp) reads the C library's, so both are set.
        try
        {
            _ = setenv(Variable, "PASSIVE", 0);
            Environment.SetEnvironmentVariable(Variable, "PASSIVE");
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: nothing to set it with; the process still works, only less efficiently on busy cores.
        }
    }

    [DllImport("libc.so.6", CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int setenv(string name, string value, int overwrite);
}
