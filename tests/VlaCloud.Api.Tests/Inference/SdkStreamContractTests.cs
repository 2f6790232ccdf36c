using System.Net;
using System.Net.WebSockets;
using VlaCloud.Api.Tests.Hardening;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;
using VlaCloud.Policy;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Inference;

/// <summary>
/// The SDK's <see cref="StreamSession"/> against the real host over its WebSocket: what the server sends arrives in the
/// SDK's records (no field dropped on the way), and the documented close codes reach the SDK's caller.
/// </summary>
[Collection(InferenceCollection.Name)]
public sealed class SdkStreamContractTests(ServicesFixture services)
{
    [Trait("Category", "Slow")]
    [Theory]
    [InlineData("json")]
    [InlineData("msgpack")]
    public async Task A_point_guided_checkpoint_streams_its_guide_points_and_actions_to_the_sdk(string encoding)
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app, PolicyConfig.Tiny with { PointGuidance = true });
        using var sdk = app.CreateSdkClient(world.Key);

        await using var session = await sdk.ConnectStreamAsync(new StreamOptions($"{world.Model}@v1", Encoding: encoding));
        Assert.Equal(world.Checkpoint.Id, session.Info.Checkpoint.Id);
        Assert.Equal(InferenceWorld.Cameras, session.Info.Embodiment.Cameras.Select(c => c.Name));
        var reply = Assert.IsType<StreamActions>(await session.ActAsync(InferenceWorld.Observation(2), new ActOptions(Steps: 4, Seed: 9)));

        var guide = world.Reference.GeneratePointGuides([world.PolicyObservation(2)])[0];
        Assert.NotNull(reply.Guide);
        Assert.Equal(guide.Target, reply.Guide.Target);
        Assert.Equal(guide.Destination, reply.Guide.Destination);
        Assert.Equal(9, reply.Seed);
        var expected = world.Expected(2, 9);
        Assert.Equal(expected.Horizon, reply.Actions.Length);
        for (var step = 0; step < expected.Horizon; step++)
            for (var d = 0; d < InferenceWorld.ActionDim; d++) Assert.Equal(expected[step, d], reply.Actions[step][d], 3);
    }

    [Fact]
    public async Task Revoking_the_key_closes_the_sdk_session_with_4401_and_the_sdk_reports_it_as_unauthorized()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var sdk = app.CreateSdkClient(world.Key);
        var (keyId, tenantId) = await SessionClient.KeyOfAsync(app, world.Key);

        await using var session = await sdk.ConnectStreamAsync(new StreamOptions($"{world.Model}@v1", Encoding: "msgpack"));
        Assert.IsType<StreamActions>(await session.ActAsync(InferenceWorld.Observation(0), new ActOptions(Steps: 2, Seed: 1)));
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/admin/tenants/{tenantId}/api-keys/{keyId}")).StatusCode);

        // The close is pushed: the session's next read ends with the code, not a timeout.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Null(await session.ReceiveAsync(timeout.Token));
        Assert.Equal((WebSocketCloseStatus)StreamCloseCodes.KeyRevoked, session.CloseStatus);
        Assert.False(session.IsOpen);
    }

    [Fact]
    public async Task An_observation_the_server_refuses_names_its_fields_in_the_sdks_exception_and_the_session_goes_on()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var sdk = app.CreateSdkClient(world.Key);

        await using var session = await sdk.ConnectStreamAsync(new StreamOptions($"{world.Model}@v1"));
        var refused = await Assert.ThrowsAsync<VlaCloudApiException>(() =>
            session.ActAsync(InferenceWorld.Observation(0), new ActOptions(Steps: 2, CfgScale: 500)));

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains(refused.Problem.Errors!.Keys, k => k.EndsWith("cfg_scale", StringComparison.Ordinal));
        Assert.True(await session.PingAsync() > TimeSpan.Zero);
    }
}
