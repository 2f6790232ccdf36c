using System.Net;
using System.Net.Http.Json;
using VlaCloud.Api.Apis;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests;

[Collection(HostCollection.Name)]
public sealed class HealthTests(ServicesFixture services)
{
    [Fact]
    public async Task Liveness_answers_200_without_a_key()
    {
        await using var app = new VlaCloudAppFactory(services);
        var response = await app.CreateClient().GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", (await response.Content.ReadFromJsonAsync<HealthReportResponse>())!.Status);
    }

    [Fact]
    public async Task Readiness_is_200_when_postgres_and_redis_answer()
    {
        await using var app = new VlaCloudAppFactory(services);
        var response = await app.CreateClient().GetAsync("/readyz");
        var report = await response.Content.ReadFromJsonAsync<HealthReportResponse>();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["postgres", "redis"], report!.Checks.Select(c => c.Name).Order());
        Assert.All(report.Checks, check => Assert.Equal("Healthy", check.Status));
    }

    [Fact]
    public async Task Readiness_turns_503_when_redis_stops_and_names_redis()
    {
        var redis = await LocalRedisServer.StartAsync();
        await using var app = new VlaCloudAppFactory(services.PostgresConnectionString, redis.ConnectionString, services.RedisPrefix);
        var client = app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);

        await redis.DisposeAsync();

        var response = await client.GetAsync("/readyz");
        var report = await response.Content.ReadFromJsonAsync<HealthReportResponse>();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("Unhealthy", report!.Checks.Single(c => c.Name == "redis").Status);
        Assert.Equal("Healthy", report.Checks.Single(c => c.Name == "postgres").Status);
    }

    [Fact]
    public async Task Readiness_is_503_when_postgres_is_unreachable()
    {
        var closedPort = "Host=127.0.0.1;Port=1;Database=none;Username=none;Password=none;Timeout=2";
        await using var app = new VlaCloudAppFactory(closedPort, services.RedisConnectionString, services.RedisPrefix,
            new Dictionary<string, string?> { ["VlaCloud:MigrateOnStart"] = "false" });
        var response = await app.CreateClient().GetAsync("/readyz");
        var report = await response.Content.ReadFromJsonAsync<HealthReportResponse>();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal("Unhealthy", report!.Checks.Single(c => c.Name == "postgres").Status);
    }
}
