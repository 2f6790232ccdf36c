using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc.Testing;
using VlaCloud.Contracts.Wire;
using VlaCloud.Testing;

namespace VlaCloud.Api.Tests.Inference;

[Collection(InferenceCollection.Name)]
public sealed class StreamTests(ServicesFixture services)
{
    private static async Task<WebSocket> ConnectAsync(VlaCloudAppFactory app, string key, string query)
    {
        var client = app.Server.CreateWebSocketClient();
        client.ConfigureRequest = request => request.Headers.Authorization = $"Bearer {key}";
        return await client.ConnectAsync(new Uri($"ws://localhost/v1/stream?{query}"), CancellationToken.None);
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

    private static async Task<JsonObject> ReceiveJsonAsync(WebSocket socket)
    {
        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Text, type);
        return JsonNode.Parse(data)!.AsObject();
    }

    private static Task SendJsonAsync(WebSocket socket, object message) =>
        socket.SendAsync(JsonSerializer.SerializeToUtf8Bytes(message), WebSocketMessageType.Text, true, CancellationToken.None);

    private static object Observation(int variant, long seed = 1) => new
    {
        type = "observation",
        id = variant,
        images = InferenceWorld.Cameras.ToDictionary(c => c, c => new { format = "raw", shape = new[] { 64, 64, 3 }, data = Convert.ToBase64String(InferenceWorld.Pixels(variant + c.Length)) }),
        state = new[] { 0.1f * variant, -0.2f, 0.3f },
        instruction = variant % 2 == 0 ? "pick the red cube and place it in the blue bowl" : "push the green ball to the yellow square",
        options = new { steps = 4, seed },
    };

    private static async Task<WebSocketCloseStatus?> CloseStatusAfterAsync(WebSocket socket)
    {
        while (true)
        {
            var (type, _) = await ReceiveAsync(socket);
            if (type == WebSocketMessageType.Close) return socket.CloseStatus;
        }
    }

    [Trait("Category", "Slow")]
    [Fact]
    public async Task A_session_sends_its_metadata_first_and_survives_a_thousand_messages_with_correct_actions()
    {
        // Each observation takes a token of the key's rate limit, as a REST request does: this session may send as fast as it can.
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?>
        {
            ["VlaCloud:Limits:KeyRequestsPerSecond"] = "10000", ["VlaCloud:Limits:KeyBurst"] = "10000",
            ["VlaCloud:Limits:TenantRequestsPerSecond"] = "10000", ["VlaCloud:Limits:TenantBurst"] = "10000",
        });
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");

        var session = await ReceiveJsonAsync(socket);
        Assert.Equal("session", (string)session["type"]!);
        Assert.Equal(world.Checkpoint.Id.ToString(), (string)session["checkpoint"]!["id"]!);
        Assert.Equal(InferenceWorld.ActionDim, (int)session["embodiment"]!["action_dim"]!);
        Assert.Equal(2, session["embodiment"]!["cameras"]!.AsArray().Count);

        var expected = world.Expected(3, seed: 9);
        for (var i = 0; i < 1000; i++)
        {
            if (i % 100 == 50)
            {
                await SendJsonAsync(socket, new { type = "ping", id = i });
                Assert.Equal("pong", (string)(await ReceiveJsonAsync(socket))["type"]!);
            }
            await SendJsonAsync(socket, Observation(3, seed: 9));
            var reply = await ReceiveJsonAsync(socket);
            Assert.Equal("actions", (string)reply["type"]!);
            Assert.Equal(3, (int)reply["id"]!);
            var actions = reply["actions"]!.AsArray();
            Assert.Equal(expected.Horizon, actions.Count);
            if (i % 250 == 0) Assert.Equal(expected[1, 2], (float)actions[1]![2]!, 3);
        }
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task An_internvla_m1_session_streams_16_step_chunks_equal_to_the_model_alone()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateInternVlaM1Async(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");
        var session = await ReceiveJsonAsync(socket);
        Assert.Equal("session", (string)session["type"]!);

        var expected = world.Expected(3, seed: 9);
        for (var i = 0; i < 3; i++)
        {
            await SendJsonAsync(socket, Observation(3, seed: 9));
            var reply = await ReceiveJsonAsync(socket);
            Assert.Equal("actions", (string)reply["type"]!);
            var actions = reply["actions"]!.AsArray();
            Assert.Equal(16, actions.Count);
            Assert.Equal(InferenceWorld.ActionDim, actions[0]!.AsArray().Count);
            Assert.Equal(expected[15, 3], (float)actions[15]![3]!, 3);
        }
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task An_internvla_m1_session_answers_spatial_questions_with_the_points_and_the_models_text()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateInternVlaM1Async(app, taught: true);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");
        Assert.Equal("session", (string)(await ReceiveJsonAsync(socket))["type"]!);

        var expected = world.Reference.GenerateSpatial([world.PolicyObservation(0)], VlaCloud.Policy.SpatialKind.Box)[0];
        Assert.True(expected.Answered, expected.Text);
        var message = JsonSerializer.SerializeToNode(Observation(0, seed: 9))!.AsObject();
        message["options"] = new JsonObject { ["steps"] = 4, ["seed"] = 9, ["spatial"] = "box" };
        await SendJsonAsync(socket, message);
        var reply = await ReceiveJsonAsync(socket);
        Assert.Equal("actions", (string)reply["type"]!);
        var spatial = reply["spatial"]!.AsObject();
        Assert.Equal("box", (string)spatial["kind"]!);
        Assert.Equal(expected.Text, (string)spatial["text"]!);
        var points = spatial["points"]!.AsArray();
        Assert.Equal(2, points.Count);
        Assert.Equal(expected.Coordinates, points.SelectMany(p => p!.AsArray().Select(c => (float)c!)));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
    }

    [Fact]
    public async Task A_broker_session_returns_one_action_per_step_and_replans_every_k_steps()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1&mode=broker&replanEvery=3");
        Assert.Equal("broker", (string)(await ReceiveJsonAsync(socket))["mode"]!);

        var replanned = new List<bool>();
        for (var step = 0; step < 7; step++)
        {
            await SendJsonAsync(socket, Observation(step));
            var reply = await ReceiveJsonAsync(socket);
            Assert.Equal("action", (string)reply["type"]!);
            Assert.Equal(step, (int)reply["step"]!);
            Assert.Equal(InferenceWorld.ActionDim, reply["action"]!.AsArray().Count);
            replanned.Add((bool)reply["replanned"]!);
        }
        Assert.Equal([true, false, false, true, false, false, true], replanned);

        await SendJsonAsync(socket, new { type = "reset" });
        Assert.Equal("reset", (string)(await ReceiveJsonAsync(socket))["type"]!);
        await SendJsonAsync(socket, Observation(0));
        var first = await ReceiveJsonAsync(socket);
        Assert.Equal((0, true), ((int)first["step"]!, (bool)first["replanned"]!));
    }

    [Fact]
    public async Task A_msgpack_session_carries_raw_image_bytes_in_binary_frames()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Checkpoint.Id}&encoding=msgpack");
        var (type, data) = await ReceiveAsync(socket);
        Assert.Equal(WebSocketMessageType.Binary, type);
        Assert.Equal("session", ((Dictionary<object, object?>)MsgPack.Deserialize(data)!)["type"]);

        var message = new Dictionary<string, object?>
        {
            ["type"] = "observation",
            ["id"] = 1,
            ["images"] = InferenceWorld.Cameras.ToDictionary(c => c, c => (object?)new Dictionary<string, object?>
            {
                ["format"] = "raw", ["shape"] = new object[] { 64, 64, 3 }, ["data"] = InferenceWorld.Pixels(2 + c.Length),
            }),
            ["state"] = new object[] { 0.2f, -0.2f, 0.3f },
            ["instruction"] = "pick the red cube and place it in the blue bowl",
            ["options"] = new Dictionary<string, object?> { ["steps"] = 4, ["seed"] = 11 },
        };
        await socket.SendAsync(MsgPack.Serialize(message), WebSocketMessageType.Binary, true, CancellationToken.None);
        (type, data) = await ReceiveAsync(socket);
        var reply = (Dictionary<object, object?>)MsgPack.Deserialize(data)!;
        Assert.Equal("actions", reply["type"]);
        var expected = world.Expected(2, seed: 11);
        var rows = (List<object?>)reply["actions"]!;
        Assert.Equal(expected[0, 0], Convert.ToSingle(((List<object?>)rows[0]!)[0]), 3);
    }

    [Fact]
    public async Task An_invalid_observation_gets_an_error_message_and_the_session_goes_on()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");
        await ReceiveJsonAsync(socket);

        await SendJsonAsync(socket, new { type = "observation", id = 5, images = new { }, state = new[] { 1 }, instruction = "x" });
        var error = await ReceiveJsonAsync(socket);
        Assert.Equal(("error", 400, 5), ((string)error["type"]!, (int)error["status"]!, (int)error["id"]!));
        Assert.NotNull(error["errors"]!["observation.images.front"]);

        await SendJsonAsync(socket, new { type = "dance" });
        Assert.Equal("error", (string)(await ReceiveJsonAsync(socket))["type"]!);

        await SendJsonAsync(socket, Observation(1));
        Assert.Equal("actions", (string)(await ReceiveJsonAsync(socket))["type"]!);
    }

    [Theory]
    [InlineData("json", "{not json", false, 1007)]
    [InlineData("json", "[1, 2, 3]", false, 1007)]
    [InlineData("json", "{\"type\":\"ping\",\"type\":\"observation\"}", false, 1007)]
    [InlineData("json", "{\"type\":\"ping\",\"id\":\"\\ud800\"}", false, 1007)]
    [InlineData("json", "\u0001\u0002", true, 1003)]
    [InlineData("msgpack", "{}", false, 1003)]
    public async Task A_bad_frame_closes_the_session_with_the_documented_code(string encoding, string frame, bool sendBinary, int code)
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1&encoding={encoding}");
        await ReceiveAsync(socket);

        await socket.SendAsync(Encoding.UTF8.GetBytes(frame), sendBinary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal((WebSocketCloseStatus)code, await CloseStatusAfterAsync(socket));
    }

    [Fact]
    public async Task A_msgpack_frame_with_a_repeated_key_or_past_its_decode_budget_closes_1007_not_1011()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        // A list of a million one-byte integers: 1 MB on the wire, some 40 MB once decoded.
        var numbers = new byte[5 + (1 << 20)];
        numbers[0] = 0xdd;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(1), 1 << 20);
        foreach (var frame in new[] { [0x82, 0xa4, .. "type"u8, 0xa4, .. "ping"u8, 0xa4, .. "type"u8, 0xa4, .. "ping"u8], numbers })
        {
            using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1&encoding=msgpack");
            await ReceiveAsync(socket);
            await socket.SendAsync(frame, WebSocketMessageType.Binary, true, CancellationToken.None);
            Assert.Equal(WebSocketCloseStatus.InvalidPayloadData, await CloseStatusAfterAsync(socket));
        }
    }

    [Theory]
    [InlineData("json", "png")]
    [InlineData("msgpack", "jpeg")]
    public async Task An_image_bomb_in_a_frame_is_an_error_naming_the_camera_and_the_session_goes_on(string encoding, string format)
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1&encoding={encoding}");
        await ReceiveAsync(socket);
        var bomb = format == "png" ? ImageBombs.Png() : ImageBombs.Jpeg();
        var message = new Dictionary<string, object?>
        {
            ["type"] = "observation", ["id"] = 7, ["state"] = new[] { 0.1, 0.2, 0.3 }, ["instruction"] = "pick",
            ["images"] = new Dictionary<string, object?>
            {
                ["front"] = new Dictionary<string, object?> { ["format"] = format, ["data"] = encoding == "json" ? Convert.ToBase64String(bomb) : bomb },
                ["wrist"] = new Dictionary<string, object?> { ["format"] = "raw", ["shape"] = new[] { 64, 64, 3 }, ["data"] = encoding == "json" ? Convert.ToBase64String(InferenceWorld.Pixels(1)) : InferenceWorld.Pixels(1) },
            },
        };
        var binary = encoding == "msgpack";
        await socket.SendAsync(binary ? MsgPack.Serialize(message) : JsonSerializer.SerializeToUtf8Bytes(message), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, CancellationToken.None);

        var (_, data) = await ReceiveAsync(socket);
        var reply = JsonNode.Parse(JsonSerializer.Serialize(binary ? ToJsonable(MsgPack.Deserialize(data)) : JsonNode.Parse(data)))!;
        Assert.Equal(("error", 400), ((string)reply["type"]!, (int)reply["status"]!));
        var size = format == "png" ? "50000×50000" : "16384×16384";
        Assert.Contains($"The image is {size}; camera 'front' takes at most 64×64", (string)reply["errors"]!["observation.images.front"]![0]!);

        await socket.SendAsync(binary ? MsgPack.Serialize(new Dictionary<string, object?> { ["type"] = "ping" }) : JsonSerializer.SerializeToUtf8Bytes(new { type = "ping" }),
            binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.NotEqual(WebSocketMessageType.Close, (await ReceiveAsync(socket)).Type);
    }

    /// <summary>A decoded MessagePack tree with string keys, for reading as JSON.</summary>
    private static object? ToJsonable(object? value) => value switch
    {
        Dictionary<object, object?> map => map.ToDictionary(e => e.Key.ToString()!, e => ToJsonable(e.Value)),
        List<object?> list => list.Select(ToJsonable).ToList(),
        _ => value,
    };

    [Fact]
    public async Task Refusals_before_the_upgrade_are_plain_http_problems()
    {
        await using var app = new VlaCloudAppFactory(services, new Dictionary<string, string?> { ["VlaCloud:Limits:MaxConcurrentStreams"] = "1" });
        using var world = await InferenceWorld.CreateAsync(app);

        var anonymous = app.Server.CreateWebSocketClient();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => anonymous.ConnectAsync(new Uri($"ws://localhost/v1/stream?checkpoint={world.Model}@v1"), CancellationToken.None));
        Assert.Contains("401", error.Message);

        var unknown = await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v7"));
        Assert.Contains("404", unknown.Message);

        using var first = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");
        await ReceiveAsync(first);
        var second = await Assert.ThrowsAnyAsync<Exception>(() => ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1"));
        Assert.Contains("429", second.Message);
    }

    [Fact]
    public async Task Observations_on_a_stream_count_against_the_keys_rate_limit_and_past_it_are_answered_429_without_closing()
    {
        await using var app = new VlaCloudAppFactory(services);
        using var world = await InferenceWorld.CreateAsync(app);
        // Then the tenant's bucket becomes 4 deep and refills once in 100 s: the upgrade takes one token, three observations
        // pass, the next ones are refused.
        var admin = app.CreateClient(await app.CreateAdminKeyAsync());
        var (_, tenantId) = await VlaCloud.Api.Tests.Hardening.SessionClient.KeyOfAsync(app, world.Key);
        var limited = await admin.PatchAsJsonAsync($"/v1/admin/tenants/{tenantId}", new UpdateTenantRequest(Limits: new TenantLimitsDto(RequestsPerSecond: 0.01, Burst: 4)));
        Assert.Equal(System.Net.HttpStatusCode.OK, limited.StatusCode);
        using var socket = await ConnectAsync(app, world.Key, $"checkpoint={world.Model}@v1");
        Assert.Equal("session", (string)(await ReceiveJsonAsync(socket))["type"]!);

        var replies = new List<JsonObject>();
        for (var i = 0; i < 5; i++)
        {
            await SendJsonAsync(socket, Observation(i));
            replies.Add(await ReceiveJsonAsync(socket));
        }
        Assert.Equal(["actions", "actions", "actions", "error", "error"], replies.Select(r => (string)r["type"]!));
        Assert.All(replies.Skip(3), r => Assert.Equal(429, (int)r["status"]!));
        Assert.All(replies.Skip(3), r => Assert.True((long)r["retry_after_ms"]! > 0));
        // The session stays open: a ping still answers.
        await SendJsonAsync(socket, new { type = "ping", id = 9 });
        Assert.Equal("pong", (string)(await ReceiveJsonAsync(socket))["type"]!);
    }
}
