using VlaCloud.Inference;

namespace VlaCloud.Api.Acting;

/// <summary>Registers the inference engine and the services that feed it.</summary>
public static class InferenceSetup
{
    /// <summary>Server keep-alive pings on WebSocket sessions, so idle control loops survive proxies.</summary>
    public static readonly TimeSpan WebSocketKeepAlive = TimeSpan.FromSeconds(15);

    /// <summary>The engine (one worker thread per device), checkpoint loading from the artifact store, metering, live sessions.</summary>
    public static IServiceCollection AddVlaCloudInference(this IServiceCollection services)
    {
        services.AddOptions<InferenceOptions>().BindConfiguration(InferenceOptions.Section);
        services.AddHostedService<TorchThreadsStartup>();
        services.AddSingleton<ICheckpointSource, RegistryCheckpointSource>();
        services.AddSingleton<CheckpointInspector>();
        services.AddSingleton<InferenceEngine>();
        services.AddScoped<ActionService>();
        services.AddScoped<ComputeCounterPrefetch>();
        services.AddSingleton<ResolutionCache>();
        services.AddSingleton<UsageBuffer>();
        services.AddHostedService(sp => sp.GetRequiredService<UsageBuffer>());
        services.AddSingleton<LiveSessions>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveSessions>());
        return services;
    }
}
