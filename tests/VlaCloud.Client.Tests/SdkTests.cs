using System.Net;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Testing;
using VlaCloud.Actions;

namespace VlaCloud.Client.Tests;

/// <summary>Tests of the SDK, each against a fresh in-memory host.</summary>
[CollectionDefinition(Name)]
public sealed class SdkCollection : ICollectionFixture<ServicesFixture>
{
    public const string Name = "sdk";
}

[Collection(SdkCollection.Name)]
public sealed class SdkTests(ServicesFixture services)
{
    private static async Task<(VlaCloudClient Client, string Embodiment)> TenantWithEmbodimentAsync(VlaCloudAppFactory app)
    {
        var (_, key) = await app.CreateTenantAsync();
        var client = app.CreateSdkClient(key);
        var embodiment = $"sim-{Guid.NewGuid():N}"[..12];
        await client.CreateEmbodimentAsync(SimPolicy.Embodiment(embodiment));
        return (client, embodiment);
    }

    private static async Task<CheckpointResponse> RegisterAsync(VlaCloudClient client, VlaCloud.Policy.VlaPolicy policy, string model, string embodiment)
    {
        using var tar = new MemoryStream(SimPolicy.Tar(policy));
        var reported = new List<long>();
        var artifact = await client.PutArtifactAsync(tar, new SynchronousProgress<long>(reported.Add));
        Assert.Equal(tar.Length, artifact.SizeBytes);
        Assert.Equal(tar.Length, reported[^1]);
        return await client.RegisterCheckpointAsync(SimPolicy.Registration(policy, model, embodiment, artifact.Sha256));
    }

    [Fact]
    public async Task Checkpoints_put_from_a_stream_register_as_versions_and_enumerate_across_pages()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;
        using var policy = SimPolicy.Create(embodiment);

        var registered = new List<CheckpointResponse>();
        for (var i = 0; i < 3; i++) registered.Add(await RegisterAsync(client, policy, "picker", embodiment));
        Assert.Equal([1, 2, 3], registered.Select(c => c.Version));

        var firstPage = await client.ListCheckpointsAsync(model: "picker", limit: 2);
        Assert.Equal(2, firstPage.Data.Count);
        Assert.True(firstPage.HasMore);
        var all = new List<CheckpointResponse>();
        await foreach (var c in client.ListAllCheckpointsAsync(model: "picker")) all.Add(c);
        Assert.Equal([3, 2, 1], all.Select(c => c.Version));

        var resolved = await client.ResolveCheckpointAsync("picker@v2");
        Assert.Equal(registered[1].Id, resolved.Id);
        var fetched = await client.GetCheckpointAsync(registered[0].Id);
        Assert.Equal(embodiment, fetched.Embodiment);
        Assert.Equal(registered[0].Sha256, fetched.Sha256);
        Assert.Contains(await ToListAsync(client.ListAllEmbodimentsAsync()), e => e.Name == embodiment);
    }

    [Fact]
    public async Task Aliases_are_promoted_rolled_back_and_keep_their_history()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;
        using var policy = SimPolicy.Create(embodiment);
        var v1 = await RegisterAsync(client, policy, "picker", embodiment);
        var v2 = await RegisterAsync(client, policy, "picker", embodiment);

        Assert.Equal(v1.Id, (await client.SetAliasAsync("picker", "production", "picker@v1", "first release")).CheckpointId);
        Assert.Equal(2, (await client.SetAliasAsync("picker", "production", v2.Id.ToString())).Version);
        var rolledBack = await client.RollbackAliasAsync("picker", "production", "v2 drops cubes");
        Assert.Equal(v1.Id, rolledBack.CheckpointId);
        Assert.Equal(v1.Id, (await client.ResolveCheckpointAsync("picker@production")).Id);

        var history = await client.GetAliasHistoryAsync("picker", "production");
        Assert.Equal([v1.Id, v2.Id, v1.Id], history.Data.Select(m => m.ToCheckpointId!.Value).Reverse());
        Assert.Equal("v2 drops cubes", history.Data[0].Reason);
        Assert.Single((await client.ListAliasesAsync("picker")).Data);
    }

    [Fact]
    public async Task Refusals_surface_as_exceptions_carrying_the_problem_details()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;

        var invalid = await Assert.ThrowsAsync<VlaCloudApiException>(() =>
            client.CreateEmbodimentAsync(SimPolicy.Embodiment("another") with { ActionDim = 0, ControlHz = -1 }));
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Contains("action_dim", invalid.Errors.Keys);
        Assert.Contains("control_hz", invalid.Errors.Keys);
        Assert.Contains("action_dim", invalid.Message);

        var missing = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.ResolveCheckpointAsync("nothing@v9"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("Not found", missing.Problem.Title);
        Assert.Equal(404, missing.Problem.Status);

        var conflict = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.CreateEmbodimentAsync(SimPolicy.Embodiment(embodiment)));
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Contains(embodiment, conflict.Problem.Detail);

        using var stranger = app.CreateSdkClient("vlc_000000000000_00000000000000000000000000000000");
        var unauthorized = await Assert.ThrowsAsync<VlaCloudApiException>(() => stranger.ListEmbodimentsAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);

        var noStream = await Assert.ThrowsAsync<VlaCloudApiException>(() => client.ConnectStreamAsync(new StreamOptions("nothing@v9")));
        Assert.Equal(HttpStatusCode.NotFound, noStream.StatusCode);
        Assert.Equal("Not found", noStream.Problem.Title);
    }

    [Fact]
    public async Task Act_returns_the_actions_the_model_computes_alone()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;
        using var policy = SimPolicy.Create(embodiment);
        await RegisterAsync(client, policy, "picker", embodiment);

        var response = await client.ActAsync(new ActRequest("picker@v1", SimPolicy.Observation(), new ActOptions(Steps: 4, Seed: 11)));
        AssertActions(SimPolicy.Expected(policy, embodiment, 11, 4), response.Actions);
        Assert.Equal(11, response.Seed);
        Assert.Equal("picker", response.Checkpoint.Model);

        var usage = await client.GetUsageAsync();
        Assert.True(usage.ComputeQuota.LimitMs > 0);
        Assert.True((await client.GetHealthAsync()).Status == "Healthy");
        Assert.Equal("Healthy", (await client.GetReadinessAsync()).Status);
    }

    [Trait("Category", "Slow")]
    [Theory]
    [InlineData("json")]
    [InlineData("msgpack")]
    public async Task A_stream_session_describes_itself_and_answers_observations_pings_and_resets(string encoding)
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;
        using var policy = SimPolicy.Create(embodiment);
        var checkpoint = await RegisterAsync(client, policy, "picker", embodiment);

        await using (var session = await client.ConnectStreamAsync(new StreamOptions("picker@v1", Encoding: encoding)))
        {
            Assert.Equal(checkpoint.Id, session.Info.Checkpoint.Id);
            Assert.Equal(encoding, session.Info.Encoding);
            Assert.Equal(3, session.Info.Embodiment.ActionDim);
            Assert.Equal(["main", "wrist"], session.Info.Embodiment.Cameras.Select(c => c.Name));

            var expected = SimPolicy.Expected(policy, embodiment, 5, 4);
            for (var i = 0; i < 3; i++)
            {
                var reply = Assert.IsType<StreamActions>(await session.ActAsync(SimPolicy.Observation(), new ActOptions(Steps: 4, Seed: 5)));
                AssertActions(expected, reply.Actions);
                Assert.Equal(5, reply.Seed);
            }
            Assert.True(await session.PingAsync() > TimeSpan.Zero);
            await session.ResetAsync();

            var refused = await Assert.ThrowsAsync<VlaCloudApiException>(() =>
                session.ActAsync(SimPolicy.Observation() with { Images = new Dictionary<string, ImageInput>() }));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.True(session.IsOpen);
            await session.CloseAsync();
            Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, session.CloseStatus);
        }
    }

    [Fact]
    public async Task A_broker_session_hands_out_one_action_per_observation()
    {
        await using var app = new VlaCloudAppFactory(services);
        var (client, embodiment) = await TenantWithEmbodimentAsync(app);
        using var _ = client;
        using var policy = SimPolicy.Create(embodiment);
        await RegisterAsync(client, policy, "picker", embodiment);

        await using var session = await client.ConnectStreamAsync(new StreamOptions("picker@v1", Mode: "broker", ReplanEvery: 4, Ensemble: false));
        Assert.Equal("broker", session.Info.Mode);
        var replies = new List<StreamAction>();
        for (var i = 0; i < 8; i++)
            replies.Add(Assert.IsType<StreamAction>(await session.ActAsync(SimPolicy.Observation(), new ActOptions(Steps: 2, Seed: 1))));
        Assert.All(replies, r => Assert.Equal(3, r.Action.Length));
        Assert.Equal([true, false, false, false, true, false, false, false], replies.Select(r => r.Replanned));
        Assert.NotNull(replies[0].Timing);
    }

    [Fact]
    public async Task An_admin_creates_a_tenant_and_a_key_that_works_and_can_be_revoked()
    {
        await using var app = new VlaCloudAppFactory(services);
        var adminKey = await app.CreateAdminKeyAsync();
        using var admin = app.CreateSdkClient(adminKey);

        var tenant = await admin.CreateTenantAsync(new CreateTenantRequest($"acme-{Guid.NewGuid():N}"[..16], "ACME robots", new TenantLimitsDto(Burst: 50)));
        Assert.Equal(50, tenant.Limits.Burst);
        var created = await admin.CreateApiKeyAsync(tenant.Id, new CreateApiKeyRequest("ci", ["registry:read"]));
        Assert.StartsWith("vlc_", created.PlainKey);
        Assert.Contains(await ToListAsync(PagesOf(admin)), t => t.Id == tenant.Id);
        Assert.Equal("ACME", (await admin.UpdateTenantAsync(tenant.Id, new UpdateTenantRequest("ACME"))).DisplayName);

        using var acme = app.CreateSdkClient(created.PlainKey);
        Assert.DoesNotContain((await acme.ListEmbodimentsAsync()).Data, e => !e.IsPublic);
        Assert.Single((await admin.ListApiKeysAsync(tenant.Id)).Data);

        await admin.RevokeApiKeyAsync(tenant.Id, created.Key.Id);
        var revoked = await Assert.ThrowsAsync<VlaCloudApiException>(() => acme.ListEmbodimentsAsync());
        Assert.Equal(HttpStatusCode.Unauthorized, revoked.StatusCode);
    }

    private static async IAsyncEnumerable<TenantResponse> PagesOf(VlaCloudClient admin)
    {
        foreach (var t in (await admin.ListTenantsAsync(limit: 100)).Data) yield return t;
    }

    private static async Task<List<T>> ToListAsync<T>(IAsyncEnumerable<T> items)
    {
        var list = new List<T>();
        await foreach (var item in items) list.Add(item);
        return list;
    }

    private static void AssertActions(ActionChunk expected, float[][] actual)
    {
        Assert.Equal(expected.Horizon, actual.Length);
        for (var t = 0; t < actual.Length; t++)
        {
            Assert.Equal(expected.ActionDim, actual[t].Length);
            for (var d = 0; d < actual[t].Length; d++) Assert.Equal(expected[t, d], actual[t][d], 3);
        }
    }

    /// <summary>Reports on the calling thread, so the last report is in before the call returns.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
