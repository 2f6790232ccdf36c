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
    public const string DefaultQueue = "default";

    public static IServiceCollection AddVlaCloudHangfire(this IServiceCollection services)
    {
        services.AddHangfire((sp, config) => config
            .UseLogProvider(new HostLogProvider(sp.GetRequiredService<ILoggerFactory>()))
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UseFilter(new FineTuneQueueFilter())
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
                    // A job whose worker died (a killed trainer pod) becomes visible again after this long; the sliding
                    // timeout keeps a live worker's long job invisible, so the timeout can be short.
                    InvisibilityTimeout = JobSetting(sp, "InvisibilityTimeout", TimeSpan.FromMinutes(2)),
                    UseSlidingInvisibilityTimeout = true,
                    // A worker killed inside a state change leaves its job's state lock behind, and the next worker to
                    // fetch that job waits for the lock to expire (default 10 min), idle for everything else in its
                    // queue. State changes take milliseconds, so a short expiry loses nothing.
                    DistributedLockTimeout = JobSetting(sp, "DistributedLockTimeout", TimeSpan.FromMinutes(1)),
                    QueuePollInterval = JobSetting(sp, "QueuePollInterval", TimeSpan.FromSeconds(2)),
                }));
        services.AddHostedService<HangfireServerHost>();
        return services;
    }

    /// <summary>A <c>VlaCloud:Jobs:{name}</c> time span, or <paramref name="fallback"/>.</summary>
    public static TimeSpan JobSetting(IServiceProvider sp, string name, TimeSpan fallback) =>
        sp.GetRequiredService<IConfiguration>().GetValue<TimeSpan?>($"VlaCloud:Jobs:{name}") ?? fallback;

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
    private BackgroundJobServer? utilityServer;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.IsTrainer) return Task.CompletedTask;
        var storage = services.GetRequiredService<JobStorage>();
        var serverOptions = new BackgroundJobServerOptions
        {
            Queues = [HangfireSetup.FineTuneQueue],
            // One training job per device: a second one would only halve the speed of both.
            WorkerCount = Math.Max(1, options.Value.TrainerWorkers),
            ServerName = $"{Environment.MachineName}:{Environment.ProcessId}",
            Activator = new AspNetCoreJobActivator(services.GetRequiredService<IServiceScopeFactory>()),
            // Deferred jobs come back when this poll finds them due.
            SchedulePollingInterval = HangfireSetup.JobSetting(services, "SchedulePollingInterval", TimeSpan.FromSeconds(15)),
        };
        server = new BackgroundJobServer(serverOptions, storage);
        // Dataset validation and cleanup get a worker of their own, so they never wait behind a long training job.
        utilityServer = new BackgroundJobServer(new BackgroundJobServerOptions
        {
            Queues = [HangfireSetup.DefaultQueue],
            WorkerCount = 1,
            ServerName = $"{Environment.MachineName}:{Environment.ProcessId}:utility",
            Activator = serverOptions.Activator,
            SchedulePollingInterval = serverOptions.SchedulePollingInterval,
        }, storage);
        logger.LogInformation("Hangfire server started on queues {Queues} with {Workers} worker(s)", serverOptions.Queues, serverOptions.WorkerCount);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (server is null) return;
        server.SendStop();
        utilityServer?.SendStop();
        await server.WaitForShutdownAsync(cancellationToken);
        if (utilityServer is not null) await utilityServer.WaitForShutdownAsync(cancellationToken);
    }

    public ValueTask DisposeAsync()
    {
        server?.Dispose();
        server = null;
        utilityServer?.Dispose();
        utilityServer = null;
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// Hangfire's log provider is one static per process, so in a process that hosts several apps one after another (the
/// test suite) it can outlive the logger factory of the app that set it; a logger asked of a disposed factory is then
/// an <see cref="ObjectDisposedException"/> inside Hangfire (e.g. creating a job client). This provider logs through
/// the host while it lives and drops Hangfire's messages after it is gone, instead of failing the caller.
/// </summary>
internal sealed class HostLogProvider(ILoggerFactory loggerFactory) : Hangfire.Logging.ILogProvider
{
    private readonly AspNetCoreLogProvider inner = new(loggerFactory);

    public Hangfire.Logging.ILog GetLogger(string name)
    {
        try
        {
            return inner.GetLogger(name);
        }
        catch (ObjectDisposedException)
        {
            return Dropped.Instance;
        }
    }

    private sealed class Dropped : Hangfire.Logging.ILog
    {
        public static readonly Dropped Instance = new();

        public bool Log(Hangfire.Logging.LogLevel logLevel, Func<string>? messageFunc, Exception? exception = null) => false;
    }
}
