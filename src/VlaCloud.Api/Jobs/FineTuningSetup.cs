using Hangfire;
using VlaCloud.Api.Auth;
using VlaCloud.Registry.Uploads;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Api;

/// <summary>Uploads, datasets and fine-tuning: options, the job classes and the recurring cleanup (the part store is the registry's).</summary>
internal static class FineTuningSetup
{
    public const string UploadCleanupJobId = "upload-cleanup";
    public const string ArtifactCollectionJobId = "artifact-collection";

    public static IServiceCollection AddVlaCloudFineTuning(this IServiceCollection services)
    {
        services.AddOptions<UploadOptions>().BindConfiguration(UploadOptions.Section);
        services.AddOptions<FineTuningJobOptions>().BindConfiguration(FineTuningJobOptions.Section);
        services.AddScoped<IJobTenant, JobTenant>();
        services.AddScoped<IFineTuneQueue, FineTuneQueue>();
        services.AddScoped<ArtifactCollectionJob>();
        services.AddScoped<DatasetValidationJob>();
        services.AddScoped<CheckpointImportJob>();
        services.AddScoped<FineTuneJob>();
        services.AddScoped<UploadCleanupJob>();
        services.AddHostedService<RecurringJobsRegistrar>();
        services.AddHostedService<StaleJobMonitor>();
        return services;
    }

    /// <summary>The host's tenant for a job's scope.</summary>
    private sealed class JobTenant(CurrentTenant tenant) : IJobTenant
    {
        public void ActFor(Guid tenantId) => tenant.ActFor(tenantId);
    }
}

/// <summary>Registers the recurring jobs once the database is ready (it starts after the database initializer).</summary>
internal sealed class RecurringJobsRegistrar(IServiceProvider services, ILogger<RecurringJobsRegistrar> logger) : IHostedService
{
    // Hangfire's API is synchronous (blocking Npgsql reads), and the host calls StartAsync on whatever thread finished
    // the previous hosted service: after the database initializer's last await that can be a socket event thread
    // (with DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 Npgsql's async reads complete there). A blocking read on a
    // pooled, already non-blocking socket waits for that same event thread to signal it, so blocking there hangs the
    // host for good. On the thread pool the calls block a worker for a moment, as anywhere else.
    public Task StartAsync(CancellationToken cancellationToken) => Task.Run(Register, cancellationToken);

    private void Register()
    {
        try
        {
            var recurring = services.GetRequiredService<IRecurringJobManager>();
            recurring.AddOrUpdate<UploadCleanupJob>(FineTuningSetup.UploadCleanupJobId, job => job.RunAsync(CancellationToken.None), "*/5 * * * *");
            recurring.AddOrUpdate<ArtifactCollectionJob>(FineTuningSetup.ArtifactCollectionJobId, job => job.RunAsync(CancellationToken.None), "17 * * * *");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Postgres may be down at start: readiness says so, and the next start registers the job.
            logger.LogWarning(e, "Could not register the recurring cleanup jobs");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
