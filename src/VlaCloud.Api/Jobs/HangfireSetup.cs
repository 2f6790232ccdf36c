using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Dashboard;
using Hangfire.PostgreSql;
using Microsoft.Extensions.Options;
using VlaCloud.Api.Auth;
using VlaCloud.Api.Hosting;
using VlaCloud.Registry;

namespace VlaCloud.Api;

/// <summary>Hangfire on the registry's Postgres (schema <c>hangfire</c>), its server and dashboard.</summary>
internal static class HangfireSetup
{
    public const string DashboardPath = "/hangfire";
    public const string FineTuneQueue = "finetune";

    public static IServiceCollection AddVlaCloudHangfire(this IServiceCollection services)
    {
        services.AddHangfire((sp, config) => config
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UsePostgreSqlStorage(
                storage => storage.UseNpgsqlConnection(
                    RegistryServiceCollectionExtensions.RequireConnectionString(sp.GetRequiredService<IConfiguration>())),
                new PostgreSqlStorageOptions
                {
                    SchemaName = "hangfire",
                    PrepareSchemaIfNecessary = true,
                    // The default retries the first connection with back-off for ~31 s (1+2+4+8+16), blocking start-up
                    // and disposal while Postgres is down; readiness should say 503 at once instead. One quick retry,
                    // then degraded mode: the storage initializes itself on first use once Postgres answers.
                    // (Zero retries would turn resilient start-up off and make the host fail to start.)
                    StartupConnectionMaxRetries = 1,
                    StartupConnectionBaseDelay = TimeSpan.FromMilliseconds(200),
                    StartupConnectionMaxDelay = TimeSpan.FromSeconds(1),
                    AllowDegradedModeWithoutStorage = true,
                }));
        services.AddHostedService<HangfireServerHost>();
        return services;
    }

    public static void MapHangfireDashboard(this WebApplication app) =>
        app.MapHangfireDashboard(DashboardPath, new DashboardOptions
        {
            // Authorization is the endpoint's admin policy; Hangfire's own local-only filter would refuse
            // every remote admin.
            Authorization = [],
            AsyncAuthorization = [],
            DisplayStorageConnectionString = false,
            DashboardTitle = "VlaCloud jobs",
        }).RequireAuthorization(ApiScopes.Admin);
}

/// <summary>
/// Runs a Hangfire server on the fine-tuning queue when this process has the <c>trainer</c> role.
/// Started after the database initializer, so the schema exists first.
/// </summary>
internal sealed class HangfireServerHost(
    IOptions<VlaCloudOptions> options,
    IServiceProvider services,
    ILogger<HangfireServerHost> logger) : IHostedService, IAsyncDisposable
{
    private BackgroundJobServer? server;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.IsTrainer) return Task.CompletedTask;
        var storage = services.GetRequiredService<JobStorage>();
        var serverOptions = new BackgroundJobServerOptions
        {
            Queues = [HangfireSetup.FineTuneQueue, "default"],
            // One training job per device: a second one would only halve the speed of both.
            WorkerCount = Math.Max(1, options.Value.TrainerWorkers),
            ServerName = $"{Environment.MachineName}:{Environment.ProcessId}",
            Activator = new AspNetCoreJobActivator(services.GetRequiredService<IServiceScopeFactory>()),
        };
        server = new BackgroundJobServer(serverOptions, storage);
        logger.LogInformation("Hangfire server started on queues {Queues} with {Workers} worker(s)", serverOptions.Queues, serverOptions.WorkerCount);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (server is null) return;
        server.SendStop();
        await server.WaitForShutdownAsync(cancellationToken);
    }

    public ValueTask DisposeAsync()
    {
        server?.Dispose();
        server = null;
        return ValueTask.CompletedTask;
    }
}
