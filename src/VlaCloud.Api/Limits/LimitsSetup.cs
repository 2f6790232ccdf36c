using VlaCloud.Api.Keys;
using VlaCloud.Api.Usage;
using VlaCloud.Registry.Checkpoints;

namespace VlaCloud.Api.Limits;

/// <summary>Registers what the host enforces per tenant and key on top of the registry: who a key is, how fast and how much it may use.</summary>
public static class LimitsSetup
{
    /// <summary>
    /// The key cache (which also carries the registry's resolution changes to every replica), request rate limits, stream
    /// slots, compute metering and the storage quota. Needs the registry, an <c>IConnectionMultiplexer</c> and a
    /// <see cref="VlaCloud.Registry.RedisKeyspace"/>.
    /// </summary>
    public static IServiceCollection AddVlaCloudLimits(this IServiceCollection services)
    {
        services.AddSingleton<ApiKeyCache>();
        services.AddSingleton<IResolutionChanges>(sp => sp.GetRequiredService<ApiKeyCache>());
        services.AddSingleton<RequestRateLimiter>();
        services.AddSingleton<StreamSlots>();
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.Section);
        services.AddScoped<IUsageMeter, UsageMeter>();
        services.AddScoped<StorageQuota>();
        return services;
    }
}
