using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using Microsoft.Extensions.DependencyInjection;
using VlaCloud.Api.Acting;
using VlaCloud.Api.Tests.FineTuning;
using VlaCloud.Api.Tests.Inference;
using VlaCloud.Contracts.Wire;
using VlaCloud.Registry;
using VlaCloud.Registry.Entities;
using VlaCloud.Api.Limits;
using VlaCloud.Testing;
using Xunit.Abstractions;

namespace VlaCloud.Api.Tests.Hardening;

/// <summary>Issue 18, item 2: a revoked key kept streaming; stream slots were renewed only on messages.</summary>
[Collection(SessionsCollection.Name)]
public sealed class SessionTests(ServicesFixture services, ITestOutputHelper output)
{
    /// <summary>Far above a pushed close (milliseconds) and far below the heartbeat (a third of the 2-minute lease).</summary>
    private static readonly TimeSpan PushBound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Revoking_a_key_on_one_replica_closes_its_stream_openpi_and_event_sessions_on_another_with_4401()
    {
        await using var admin = new VlaCloudAppFactory(services);
        await using var serving = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(serving);
        var (keyId, tenantId) = await SessionClient.KeyOfAsync(serving, world.Key);
        var jobId = await QueuedJobAsync(serving, tenantId!.Value, world);

        using var stream = await SessionClient.ConnectAsync(serving, world.Key, $"/v1/stream?checkpoint={world.Model}@v1");
        Assert.Equal("session", (string)(await SessionClient.ReceiveJsonAsync(stream))["type"]!);
        await SessionClient.SendJsonAsync(stream, Observation(1));
        Assert.Equal("actions", (string)(await SessionClient.ReceiveJsonAsync(stream))["type"]!);
        using var openpi = await SessionClient.ConnectAsync(serving, world.Key, $"/v1/openpi/{world.Checkpoint.Id}");
        await SessionClient.ReceiveAsync(openpi);
        using var events = await world.Client.GetAsync($"/v1/fine_tuning/jobs/{jobId}/events/stream", HttpCompletionOption.ResponseHeadersRead);
        var blocks = SessionClient.EventsAsync(await events.Content.ReadAsStreamAsync()).GetAsyncEnumerator();
        Assert.True(await blocks.MoveNextAsync());
        Assert.Contains("Job created.", blocks.Current);
        Assert.Equal(3, serving.Services.GetRequiredService<LiveSessions>().Count);

        var adminClient = admin.CreateClient(await admin.CreateAdminKeyAsync());
        var clock = Stopwatch.StartNew();
        Assert.Equal(HttpStatusCode.NoContent, (await adminClient.DeleteAsync($"/v1/admin/tenants/{tenantId}/api-keys/{keyId}")).StatusCode);
        clock.Restart();

        var (streamStatus, streamAfter) = await SessionClient.CloseAsync(stream, clock, PushBound);
        var (openpiStatus, openpiAfter) = await SessionClient.CloseAsync(openpi, clock, PushBound);
        Assert.Equal((WebSocketCloseStatus)StreamMessages.KeyRevoked, streamStatus);
        Assert.Equal((WebSocketCloseStatus)StreamMessages.KeyRevoked, openpiStatus);
        string? revoked = null;
        using (var timeout = new CancellationTokenSource(PushBound))
            while (await blocks.MoveNextAsync().AsTask().WaitAsync(timeout.Token))
                if (blocks.Current.Contains("event: revoked", StringComparison.Ordinal)) revoked = blocks.Current;
        var eventsAfter = clock.Elapsed;
        Assert.NotNull(revoked);
        Assert.Contains("\"code\":4401", revoked);
        output.WriteLine($"closed after the revocation answered: /v1/stream {streamAfter.TotalMilliseconds:F0} ms, openpi {openpiAfter.TotalMilliseconds:F0} ms, SSE {eventsAfter.TotalMilliseconds:F0} ms");

        // And the key opens nothing new.
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => SessionClient.ConnectAsync(serving, world.Key, $"/v1/stream?checkpoint={world.Model}@v1"));
        Assert.Contains("401", refused.Message);
        await Eventually.TrueAsync(() => Task.FromResult(serving.Services.GetRequiredService<LiveSessions>().Count == 0), TimeSpan.FromSeconds(10), "sessions still registered");
    }

    [Fact]
    public async Task A_session_whose_key_expires_is_closed_with_4401_by_the_server_heartbeat()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:Limits:StreamSlotLease"] = "00:00:03" });
        using var world = await InferenceWorld.CreateAsync(app);
        var (_, tenantId) = await SessionClient.KeyOfAsync(app, world.Key);
        string shortLived;
        using (var scope = app.Services.CreateScope())
            (_, shortLived) = await scope.ServiceProvider.GetRequiredService<ApiKeyIssuer>()
                .IssueAsync(tenantId!.Value, "short", [ApiScopes.Inference], DateTimeOffset.UtcNow.AddSeconds(10), CancellationToken.None);

        using var socket = await SessionClient.ConnectAsync(app, shortLived, $"/v1/stream?checkpoint={world.Model}@v1");
        await SessionClient.ReceiveJsonAsync(socket);
        var (status, after) = await SessionClient.CloseAsync(socket, Stopwatch.StartNew(), TimeSpan.FromSeconds(30));
        Assert.Equal((WebSocketCloseStatus)StreamMessages.KeyRevoked, status);
        output.WriteLine($"closed {after.TotalSeconds:F1} s after connecting with a key valid for 10 s (heartbeat every second)");
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task An_idle_session_keeps_its_slot_past_the_lease_and_a_session_that_lost_its_slot_is_closed_with_1013()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:Limits:StreamSlotLease"] = "00:00:03", ["VlaCloud:Limits:MaxConcurrentStreams"] = "1",
        });
        using var world = await InferenceWorld.CreateAsync(app);
        var (_, tenantId) = await SessionClient.KeyOfAsync(app, world.Key);
        var slots = app.Services.GetRequiredService<StreamSlots>();

        using var socket = await SessionClient.ConnectAsync(app, world.Key, $"/v1/stream?checkpoint={world.Model}@v1");
        await SessionClient.ReceiveJsonAsync(socket);
        // Three leases without a message: only the server's own heartbeat can have kept the slot.
        await Task.Delay(TimeSpan.FromSeconds(9));
        Assert.Equal(1, await slots.CountAsync(tenantId!.Value));
        var second = await Assert.ThrowsAnyAsync<Exception>(() => SessionClient.ConnectAsync(app, world.Key, $"/v1/stream?checkpoint={world.Model}@v1"));
        Assert.Contains("429", second.Message);
        await SessionClient.SendJsonAsync(socket, new { type = "ping", id = 1 });
        Assert.Equal("pong", (string)(await SessionClient.ReceiveJsonAsync(socket))["type"]!);

        // The slot vanishes from Redis (its lease ran out while Redis could not be reached): the session must not outlive it.
        var keyspace = app.Services.GetRequiredService<RedisKeyspace>();
        await app.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>().GetDatabase().KeyDeleteAsync(keyspace.Key($"streams:{tenantId}"));
        var (status, _) = await SessionClient.CloseAsync(socket, Stopwatch.StartNew(), TimeSpan.FromSeconds(20));
        Assert.Equal((WebSocketCloseStatus)StreamMessages.TryAgainLater, status);

        using var again = await SessionClient.ConnectAsync(app, world.Key, $"/v1/stream?checkpoint={world.Model}@v1");
        Assert.Equal("session", (string)(await SessionClient.ReceiveJsonAsync(again))["type"]!);
    }

    /// <summary>A queued job of the tenant (no trainer runs here), so its event stream stays open.</summary>
    private static Task<Guid> QueuedJobAsync(VlaCloudAppFactory app, Guid tenantId, InferenceWorld world) =>
        app.WithDbAsync(async db =>
        {
            var dataset = new Dataset
            {
                TenantId = tenantId, Name = "d.tar", EmbodimentId = world.Checkpoint.EmbodimentId, ArtifactSha256 = world.Checkpoint.Sha256, Status = DatasetStatus.Ready,
            };
            var job = new FineTuningJob
            {
                TenantId = tenantId, Model = world.Model, BaseCheckpointId = world.Checkpoint.Id, DatasetId = dataset.Id,
                EmbodimentId = world.Checkpoint.EmbodimentId, Hyperparameters = "{}", TotalSteps = 1,
            };
            db.AddRange(dataset, job);
            db.JobEvents.Add(new JobEvent { JobId = job.Id, TenantId = tenantId, Level = "info", Type = "message", Message = "Job created." });
            await db.SaveChangesAsync();
            return job.Id;
        });

    private static object Observation(int variant) => new
    {
        type = "observation",
        id = variant,
        images = InferenceWorld.Cameras.ToDictionary(c => c, c => new { format = "raw", shape = new[] { 64, 64, 3 }, data = Convert.ToBase64String(InferenceWorld.Pixels(variant)) }),
        state = new[] { 0.1f, -0.2f, 0.3f },
        instruction = "pick the red cube and place it in the blue bowl",
        options = new { steps = 2, seed = 1 },
    };
}
