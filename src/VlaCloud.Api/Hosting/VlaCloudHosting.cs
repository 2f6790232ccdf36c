using VlaCloud.Api.TenantConsole;
using Microsoft.AspNetCore.Authentication;
using Microsoft.OpenApi;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Apis;
using VlaCloud.Api.Auth;
using VlaCloud.Api.Health;
using VlaCloud.Api.Idempotency;
using VlaCloud.Api.Limits;
using VlaCloud.Api.Observability;
using VlaCloud.Api.Validation;
using VlaCloud.Registry;

namespace VlaCloud.Api.Hosting;

/// <summary>Composition root: what <c>Program.cs</c> calls.</summary>
public static class VlaCloudHosting
{
    /// <summary>Name of the Redis connection string in configuration.</summary>
    public const string RedisConnectionStringName = "Redis";

    /// <summary>Registers every VlaCloud service on the builder.</summary>
    public static WebApplicationBuilder AddVlaCloud(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<VlaCloudOptions>().BindConfiguration(VlaCloudOptions.Section);
        // Under the test host (environment "Testing") an unhandled exception's text rides in its 500 problem, so a
        // failure seen only in a loaded CI run says what threw; never in any other environment.
        var showExceptions = builder.Environment.IsEnvironment("Testing");
        services.AddProblemDetails(problems => problems.CustomizeProblemDetails = context =>
        {
            // Every problem gets a stable type of ours (a specific one where the site set it, else its status's) and the
            // type's code, so clients match on them instead of on titles; the framework's default type is only the RFC
            // section of the status.
            var problem = context.ProblemDetails;
            if (problem.Type is null || !problem.Type.StartsWith(ProblemTypes.Base, StringComparison.Ordinal))
                problem.Type = ProblemTypes.ForStatus(problem.Status ?? context.HttpContext.Response.StatusCode);
            problem.Extensions.TryAdd("code", ProblemTypes.CodeOf(problem.Type));
            if (showExceptions && context.Exception is { } exception && context.ProblemDetails.Status == 500)
                context.ProblemDetails.Extensions["exception"] = exception.ToString() is { Length: > 4000 } text ? text[..4000] : exception.ToString();
        });
        services.AddExceptionHandler<DependencyExceptionHandler>();
        // The job dashboard checks antiforgery tokens on its POST actions when the service exists: a site that gets a
        // browser to send cached dashboard credentials still cannot trigger or delete jobs.
        services.AddAntiforgery();
        services.AddExceptionHandler<DatabaseRefusalHandler>();
        // Requests Kestrel rejects before the application runs get problem bodies too.
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(listen => listen.UseKestrelProblemBodies()));
        // VlaCloudOptions.InlineSocketScheduling says what it saves, what it risks and why it is off by default.
        if (builder.Configuration.GetValue<bool?>($"{VlaCloudOptions.Section}:{nameof(VlaCloudOptions.InlineSocketScheduling)}") ?? new VlaCloudOptions().InlineSocketScheduling)
            builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        services.AddHttpContextAccessor();
        builder.AddVlaCloudObservability();

        services.AddRegistry();
        services.AddVlaCloudLimits();
        services.AddSingleton<IConnectionMultiplexer>(sp => ConnectRedis(sp.GetRequiredService<IConfiguration>()));

        // The initializer is the first hosted service: migrations and seed data exist before anything else starts.
        services.AddHostedService<DatabaseInitializer>();
        services.AddVlaCloudHangfire();
        services.AddVlaCloudFineTuning();
        services.AddVlaCloudInference();

        services.AddAuthentication(ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorization(options => options.AddScopePolicies());
        services.AddScoped<CurrentTenant>();
        services.AddSingleton<FailedAuthLimiter>();
        services.AddSingleton<VlaCloud.Api.TenantConsole.ConsoleSessions>();
        services.AddScoped<ITenantAccessor>(sp => sp.GetRequiredService<CurrentTenant>());
        services.AddSingleton(sp => new RedisKeyspace(sp.GetRequiredService<IOptions<VlaCloudOptions>>().Value.RedisPrefix));

        services.AddHealthChecks()
            .AddCheck<PostgresReadinessCheck>("postgres", tags: [SystemApi.ReadyTag])
            .AddCheck<RedisReadinessCheck>("redis", tags: [SystemApi.ReadyTag]);

        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(swagger =>
        {
            swagger.AddVlaCloudConventions();
            // The contracts' XML docs (records' <param> texts included) become the document's descriptions, so clients
            // generated from it carry them; a file missing from a trimmed deployment only costs the descriptions.
            foreach (var xml in new[] { "VlaCloud.Contracts.xml", "VlaCloud.Api.xml" }.Select(f => Path.Combine(AppContext.BaseDirectory, f)).Where(File.Exists))
                swagger.IncludeXmlComments(xml, includeControllerXmlComments: true);
            swagger.AddOperationDescriptions();
            swagger.SwaggerDoc(OpenApiDocumentName, new OpenApiInfo
            {
                Title = "VlaCloud API",
                Version = "v1",
                Description = "Multi-tenant policy API for robot vision-language-action models (ST4VLA): " +
                              "actions over REST and WebSocket, datasets, fine-tuning, and a versioned checkpoint registry.",
            });
            swagger.AddSecurityDefinition(ApiKeyAuthenticationHandler.SchemeName, new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                BearerFormat = "vlc_<prefix>_<secret>",
                Description = "An API key: 'Authorization: Bearer vlc_...'. A tenant's key for the tenant routes, a platform administrator's key for /v1/admin.",
            });
            swagger.AddSecurityRequirement(document => new OpenApiSecurityRequirement
            {
                [new OpenApiSecuritySchemeReference(ApiKeyAuthenticationHandler.SchemeName, document)] = [],
            });
        });
        return builder;
    }

    /// <summary>Name of the OpenAPI document, served at <c>/swagger/v1/swagger.json</c>.</summary>
    public const string OpenApiDocumentName = "v1";

    /// <summary>Adds the middleware and maps every endpoint group.</summary>
    public static WebApplication MapVlaCloud(this WebApplication app)
    {
        app.UseVlaCloudMetrics();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = InferenceSetup.WebSocketKeepAlive });
        app.UseAuthentication();
        app.UseTenantLogScope();
        app.UseAuthorization();
        app.UseMiddleware<JsonBodyGuard>();
        app.UseMiddleware<IdempotencyMiddleware>();

        // With a metrics port (the Helm chart's), Swagger is served there only, beside /metrics: the public port and the
        // Ingress never show it.
        var metricsPort = app.Configuration.GetValue<int?>("VlaCloud:Observability:MetricsPort");
        app.UseWhen(context => metricsPort is not { } port || context.Connection.LocalPort == port, swagger =>
        {
            swagger.UseSwagger();
            swagger.UseSwaggerUI(ui =>
            {
                ui.SwaggerEndpoint($"/swagger/{OpenApiDocumentName}/swagger.json", "VlaCloud API v1");
                ui.DocumentTitle = "VlaCloud API";
            });
        });

        app.MapSystemApi();
        app.MapEmbodimentsApi();
        app.MapCheckpointsApi();
        app.MapCheckpointImportsApi();
        app.MapModelsApi();
        app.MapUsageApi();
        app.MapActApi();
        app.MapStreamApi();
        app.MapAdminApi();
        app.MapUploadsApi();
        app.MapDatasetsApi();
        app.MapFineTuningApi();
        app.MapApiKeysApi();
        app.MapConsoleApi();
        app.MapHangfireDashboard();
        return app;
    }

    private static ConnectionMultiplexer ConnectRedis(IConfiguration configuration) => ConnectionMultiplexer.Connect(RedisOptions(configuration));

    /// <summary>The Redis client's options as <paramref name="configuration"/> sets them (a seam for tests of the socket manager choice).</summary>
    internal static ConfigurationOptions RedisOptions(IConfiguration configuration)
    {
        var connectionString = configuration.GetConnectionString(RedisConnectionStringName) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"ConnectionStrings:{RedisConnectionStringName} is not set. Start the local services with `bash .ci/services start`.");
        var options = ConfigurationOptions.Parse(connectionString);
        // Start even when Redis is down: readiness reports it, and the client reconnects by itself.
        options.AbortOnConnectFail = false;
        options.ConnectTimeout = 2000;
        // While Redis is away a command fails at once instead of waiting in a backlog for the connection, and a slow
        // answer fails within the timeout: requests degrade (503 + Retry-After) in under a second instead of hanging.
        options.BacklogPolicy = BacklogPolicy.FailFast;
        var timeout = (int)Math.Ceiling((configuration.GetValue<TimeSpan?>($"{VlaCloudOptions.Section}:{nameof(VlaCloudOptions.RedisTimeout)}")
                                         ?? new VlaCloudOptions().RedisTimeout).TotalMilliseconds);
        options.AsyncTimeout = timeout;
        options.SyncTimeout = timeout;
        // VlaCloudOptions.RedisOnThreadPool says why the pool is the default.
        if (configuration.GetValue<bool?>($"{VlaCloudOptions.Section}:{nameof(VlaCloudOptions.RedisOnThreadPool)}") ?? new VlaCloudOptions().RedisOnThreadPool)
            options.SocketManager = SocketManager.ThreadPool;
        return options;
    }
}
