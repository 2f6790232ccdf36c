using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using System.Net.WebSockets;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Inference;

/// <summary>
/// The openpi endpoint driven the way openpi_client.WebsocketClientPolicy drives a server: the
/// <c>Authorization: Api-Key</c> header, the metadata frame first, msgpack-numpy dicts in and out.
/// </summary>
[Collection(InferenceCollection.Name)]
public sealed class OpenPiTests(ServicesFixture services)
{
    private static async Task<WebSocket> ConnectAsync(VlaCloudAppFactory app, string key, string checkpoint)
    {
        var client = app.Server.CreateWebSocketClient();
        client.ConfigureRequest = request => request.Headers.Authorization = $"Api-Key {key}";
        return await client.ConnectAsync(new Uri($"ws://localhost/v1/openpi/{checkpoint}"), CancellationToken.None);
    }

    private static async Task<(WebSocketMessageType Type, byte[] Data)> ReceiveAsync(WebSocket socket)
    {
        var buffer = new byte[1 << 20];
        var total = 0;
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer.AsMemory(total), CancellationToken.None);
            total += result.Count;
            if (result.EndOfMessage || result.MessageType == WebSocketMessageType.Close) return (result.MessageType, buffer[..total]);
        }
    }

    private static Dictionary<object, object?> Decode(byte[] data) =>
        (Dictionary<object, object?>)NumpyArray.FromWireTree(MsgPack.Deserialize(data))!;

    /// <summary>An observation as openpi's LIBERO example sends it, for our two cameras.</summary>
    private static byte[] Observation(int variant) => MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?>
    {
        ["observation/front"] = NumpyArray.FromBytes(InferenceWorld.Pixels(variant + 5), 64, 64, 3),
        ["observation/wrist"] = NumpyArray.FromBytes(InferenceWorld.Pixels(variant + 5), 64, 64, 3),
        ["observation/state"] = NumpyArray.FromFloats([0.1f * variant, -0.2f, 0.3f], 3),
        ["prompt"] = "pick the red cube and place it in the blue bowl",
    }));

    [Fact]
    public async Task An_openpi_client_gets_metadata_then_an_action_ndarray_with_timings_per_observation()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"{world.Model}@v1");

        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Binary, type);
        var metadata = Decode(data);
        Assert.Equal((long)InferenceWorld.ActionDim, metadata["action_dim"]);
        Assert.Equal((long)VlaCloud.Policy.PolicyConfig.Tiny.ChunkLength, metadata["action_horizon"]);

        for (var i = 0; i < 3; i++)
        {
            await socket.SendAsync(Observation(0), WebSocketMessageType.Binary, true, CancellationToken.None);
            (type, data) = await ReceiveAsync(socket);
            Assert.Equal(WebSocketMessageType.Binary, type);
            var reply = Decode(data);
            var actions = (NumpyArray)reply["actions"]!;
            Assert.Equal("<f4", actions.Dtype);
            Assert.Equal([VlaCloud.Policy.PolicyConfig.Tiny.ChunkLength, InferenceWorld.ActionDim], actions.Shape);
            Assert.IsType<double>(((Dictionary<object, object?>)reply["policy_timing"]!)["infer_ms"]);
            var serverTiming = (Dictionary<object, object?>)reply["server_timing"]!;
            Assert.IsType<double>(serverTiming["infer_ms"]);
            Assert.Equal(i > 0, serverTiming.ContainsKey("prev_total_ms"));
            Assert.All(actions.ToFloats(), v => Assert.True(float.IsFinite(v)));
        }
    }

    [Fact]
    public async Task An_openpi_client_of_an_internvla_m1_checkpoint_gets_16_step_chunks()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateInternVlaM1Async(app);
        using var socket = await ConnectAsync(app, world.Key, $"{world.Model}@v1");

        var (_, data) = await ReceiveAsync(socket);
        Assert.Equal(16L, Decode(data)["action_horizon"]);
        await socket.SendAsync(Observation(0), WebSocketMessageType.Binary, true, CancellationToken.None);
        (var type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Binary, type);
        var actions = (NumpyArray)Decode(data)["actions"]!;
        Assert.Equal([16, InferenceWorld.ActionDim], actions.Shape);
        Assert.All(actions.ToFloats(), v => Assert.True(float.IsFinite(v)));
    }

    [Fact]
    public async Task When_the_queue_is_full_an_openpi_observation_waits_for_a_place_and_gets_its_actions_instead_of_a_close()
    {
        // One place in the queue, held by a REST request that waits out a long batching window; the openpi observation
        // finds the queue full. openpi's client raises on an error reply, so it must wait, not be refused.
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:Inference:QueueCapacity"] = "1", ["VlaCloud:Inference:MaxBatchSize"] = "64", ["VlaCloud:Inference:MaxQueueDelay"] = "00:00:02", ["VlaCloud:Inference:IdleDispatch"] = "false",
            ["VlaCloud:Inference:DefaultTimeout"] = "00:02:00",
        });
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"{world.Model}@v1");
        await ReceiveAsync(socket);
        var engine = app.Services.GetRequiredService<VlaCloud.Inference.InferenceEngine>();
        var waiting = world.Client.PostAsJsonAsync("/v1/act", world.Request(0, options: new ActOptions(Steps: 4, TimeoutMs: 120_000)));
        while (engine.QueueDepth < 1) await Task.Delay(10);
        var refusedMeanwhile = await world.Client.PostAsJsonAsync("/v1/act", world.Request(1));
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, refusedMeanwhile.StatusCode);

        await socket.SendAsync(Observation(0), WebSocketMessageType.Binary, true, CancellationToken.None);
        var (type, data) = await ReceiveAsync(socket);

        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal(WebSocketState.Open, socket.State);
        var actions = (NumpyArray)Decode(data)["actions"]!;
        Assert.Equal([VlaCloud.Policy.PolicyConfig.Tiny.ChunkLength, InferenceWorld.ActionDim], actions.Shape);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await waiting).StatusCode);
    }

    [Fact]
    public async Task Droid_style_keys_map_onto_the_embodiment_by_order_and_concatenated_state()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, world.Checkpoint.Id.ToString());
        await ReceiveAsync(socket);

        var droid = MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?>
        {
            ["observation/exterior_image_1_left"] = NumpyArray.FromBytes(InferenceWorld.Pixels(1), 64, 64, 3),
            ["observation/wrist_image_left"] = NumpyArray.FromBytes(InferenceWorld.Pixels(2), 64, 64, 3),
            ["observation/joint_position"] = NumpyArray.FromFloats([0.1f, 0.2f], 2),
            ["observation/gripper_position"] = NumpyArray.FromFloats([1f], 1),
            ["prompt"] = "push the green ball to the yellow square",
        }));
        await socket.SendAsync(droid, WebSocketMessageType.Binary, true, CancellationToken.None);
        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.IsType<NumpyArray>(Decode(data)["actions"]);
    }

    [Fact]
    public async Task An_observation_that_does_not_fit_gets_the_error_as_text_and_closes_1008_a_client_error_not_1011()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"{world.Model}@v1");
        await ReceiveAsync(socket);

        var missingState = MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?>
        {
            ["observation/front"] = NumpyArray.FromBytes(InferenceWorld.Pixels(1), 64, 64, 3),
            ["observation/wrist"] = NumpyArray.FromBytes(InferenceWorld.Pixels(1), 64, 64, 3),
            ["prompt"] = "pick",
        }));
        await socket.SendAsync(missingState, WebSocketMessageType.Binary, true, CancellationToken.None);
        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Text, type);
        Assert.Contains("state", System.Text.Encoding.UTF8.GetString(data));
        (type, _) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Close, type);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, socket.CloseStatus);
    }

    [Fact]
    public async Task A_frame_that_is_not_msgpack_numpy_closes_1007_after_the_error_as_text()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        foreach (var frame in new[] { new byte[] { 0xc1, 0x00 }, [0x82, 0xa1, (byte)'a', 0x01, 0xa1, (byte)'a', 0x02] })
        {
            using var socket = await ConnectAsync(app, world.Key, $"{world.Model}@v1");
            await ReceiveAsync(socket);
            await socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);
            var (type, data) = await ReceiveAsync(socket);
            Assert.Equal(WebSocketMessageType.Text, type);
            Assert.StartsWith("Invalid observation", System.Text.Encoding.UTF8.GetString(data));
            (type, _) = await ReceiveAsync(socket);
            Assert.Equal(WebSocketMessageType.Close, type);
            Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, socket.CloseStatus);
        }
    }
}
