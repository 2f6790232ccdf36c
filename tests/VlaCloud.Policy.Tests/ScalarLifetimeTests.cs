using System.Diagnostics;
using System.Reflection;
using System.Runtime.CompilerServices;
using TorchSharp;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// TorchSharp 0.107 lets a collection finalise a <see cref="Scalar"/> (or a temporary tensor) while libtorch still
/// reads it; the build copies a TorchSharp.dll rewritten to keep such objects alive (src/Build/TorchSharpKeepAlive.targets,
/// docs/scalar-lifetime.md). These tests pin that the rewritten assembly is the one loaded, that it compiles, and that
/// the stress loop which failed about 17 rounds in 20000 on the package's assembly now fails none.
/// </summary>
public sealed class ScalarLifetimeTests
{
    [Fact]
    public void The_TorchSharp_assembly_loaded_is_the_build_rewritten_one_that_keeps_handle_owners_alive()
    {
        var markers = typeof(Scalar).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Select(a => a.Key);
        Assert.Contains("VlaCloud.KeepAlive", markers);
    }

    [Fact]
    public void Every_non_generic_method_of_the_rewritten_TorchSharp_compiles()
    {
        // A rewriting mistake would surface as an InvalidProgramException only when the method first runs; this
        // compiles every method whose compilation needs no type arguments.
        var failures = new List<string>();
        var flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var type in typeof(Scalar).Assembly.GetTypes().Where(t => !t.ContainsGenericParameters))
            foreach (var method in type.GetMethods(flags).Cast<MethodBase>().Concat(type.GetConstructors(flags)))
            {
                if (method.IsAbstract || method.ContainsGenericParameters || method.GetMethodBody() is null) continue;
                try
                {
                    RuntimeHelpers.PrepareMethod(method.MethodHandle);
                }
                catch (Exception e) when (e is InvalidProgramException or BadImageFormatException)
                {
                    failures.Add($"{type.FullName}.{method.Name}: {e.Message}");
                }
            }
        Assert.Empty(failures);
    }

    [Fact]
    public async Task Ops_on_scalars_made_on_the_fly_survive_a_thread_that_keeps_collecting_and_finalising()
    {
        // In a child process: on an assembly without the keep-alives the loop may also kill its process.
        var dll = typeof(ScalarLifetimeTests).Assembly.Location;
        var start = new ProcessStartInfo("dotnet", ["exec", dll, "scalar-stress", "20000"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{output}");
        Assert.Contains("errors: 0", output);
        Assert.Contains("wrong_results: 0", output);
    }
}
