using System.Text.Json;

namespace VlaCloud.Deploy.Tests;

/// <summary>Runtime settings the host is built with: they are read from its runtimeconfig.json, which ships in the image.</summary>
public sealed class HostRuntimeConfigTests
{
    // Copied next to this test assembly from the referenced host project, as `dotnet publish` puts it next to VlaCloud.Api.dll.
    private static readonly string HostRuntimeConfig = Path.Combine(AppContext.BaseDirectory, "VlaCloud.Api.runtimeconfig.json");

    [Fact]
    public void The_host_thread_pool_does_not_spin_waiting_for_work()
    {
        Assert.True(File.Exists(HostRuntimeConfig), $"{HostRuntimeConfig} is missing");
        using var config = JsonDocument.Parse(File.ReadAllText(HostRuntimeConfig));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.True(properties.TryGetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit", out var spin),
            "the host's runtimeconfig.json does not set the thread pool's spin limit");
        Assert.Equal(0, spin.GetInt32());
    }
}
