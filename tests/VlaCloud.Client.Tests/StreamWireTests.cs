using System.Text.Json;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Client.Tests;

/// <summary>
/// Every <c>/v1/stream</c> message the server writes (through <see cref="StreamWire.ToMap(StreamReply, object?)"/>) reads
/// back into the same record on the SDK's side (through <see cref="StreamWire.FromMap"/>), and every message the SDK
/// writes (<see cref="StreamWire.ToMap(StreamRequest)"/>) reads back on the server's side (<see cref="StreamWire.RequestFromMap"/>),
/// in both encodings, so no field is sent that the other end drops.
/// </summary>
public sealed class StreamWireTests
{
    private static readonly ActTiming Timing = new(1.5, 20.25, 22, 3);

    public static TheoryData<string, StreamReply> Replies() => new()
    {
        { "actions", new StreamActions(7, [[0.5f, -1f, 1f], [0.25f, 0f, 0f]], 42, Timing, null) },
        {
            "actions with spatial and guide",
            new StreamActions(8, [[1f, 2f]], 1, Timing, new SpatialOutput("box", [[1f, 2f], [30f, 40f]]), new GuideOutput([10f, 11f], [20f, 21f]))
        },
        { "actions with a text answer", new StreamActions(18, [[1f]], 3, Timing, new SpatialOutput("box", [], "[{\"bbox_2d\": [1, 2]}]")) },
        { "actions with a guide lacking its destination", new StreamActions(9, [[1f]], 2, Timing, null, new GuideOutput([3f, 4f], null)) },
        { "broker action, replanned", new StreamAction(10, 4, true, [0.1f, 0.2f, 1f], Timing) },
        { "broker action from the chunk", new StreamAction(11, 5, false, [0.1f, 0.2f, 0f], null) },
        { "busy", new StreamBusy(12, TimeSpan.FromMilliseconds(250)) },
        { "invalid observation", new StreamError(13, 400, "Invalid observation", null, new Dictionary<string, string[]> { ["images.main"] = ["too big"] }) },
        { "share exceeded", new StreamError(14, 429, "Inference share exceeded", "over the share", null, "inference_share_exceeded", TimeSpan.FromMilliseconds(900)) },
        { "unavailable", new StreamError(15, 503, "Service unavailable", "redis", null, RetryAfter: TimeSpan.FromSeconds(2)) },
        { "pong", new StreamPong(16) },
        { "reset", new StreamResetDone(17) },
    };

    [Theory]
    [MemberData(nameof(Replies))]
    public void A_reply_written_by_the_server_reads_back_equal_in_json_and_msgpack(string name, StreamReply reply)
    {
        var map = StreamWire.ToMap(reply);

        var fromJson = StreamWire.FromMap(AsMap(JsonWire.Parse(JsonSerializer.SerializeToUtf8Bytes(map), DecodeBudget.ForMessage(1 << 20))));
        var fromMsgPack = StreamWire.FromMap(AsMap(MsgPack.Deserialize(MsgPack.Serialize(map))));

        Assert.True(Same(reply, fromJson), $"{name}: JSON read back {Show(fromJson)}, sent {Show(reply)}");
        Assert.True(Same(reply, fromMsgPack), $"{name}: MessagePack read back {Show(fromMsgPack)}, sent {Show(reply)}");
    }

    private static readonly ObservationInput Observation = new(
        new Dictionary<string, ImageInput>
        {
            ["main"] = new("raw", [1, 2, 3, 4, 5, 6], [1, 2, 3]),
            ["wrist"] = new("png", [0x89, 0x50, 0x4e, 0x47]),
        },
        [0.5f, -0.25f, 1f],
        "pick the red cube");

    public static TheoryData<string, StreamRequest> Requests() => new()
    {
        { "observation with every option", new StreamObservation(1L, Observation, new ActOptions(4, 42, "box", 800, "pad", 2.5)) },
        { "observation without options or state", new StreamObservation(2L, Observation with { State = null, Instruction = "" }) },
        { "observation with a text id", new StreamObservation("frame-3", Observation, new ActOptions(Seed: -7)) },
        { "ping", new StreamPing(4L) },
        { "reset", new StreamReset(5L) },
        { "close", new StreamClose() },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void A_message_written_by_the_sdk_reads_back_equal_on_the_server_in_json_and_msgpack(string name, StreamRequest request)
    {
        var map = StreamWire.ToMap(request);
        var jsonErrors = new Dictionary<string, string[]>();
        var msgPackErrors = new Dictionary<string, string[]>();

        var fromJson = StreamWire.RequestFromMap(AsMap(JsonWire.Parse(JsonSerializer.SerializeToUtf8Bytes(map), DecodeBudget.ForMessage(1 << 20))), jsonErrors);
        var fromMsgPack = StreamWire.RequestFromMap(AsMap(MsgPack.Deserialize(MsgPack.Serialize(map))), msgPackErrors);

        Assert.Empty(jsonErrors);
        Assert.Empty(msgPackErrors);
        Assert.True(Same(request, fromJson), $"{name}: JSON read back {Show(fromJson)}, sent {Show(request)}");
        Assert.True(Same(request, fromMsgPack), $"{name}: MessagePack read back {Show(fromMsgPack)}, sent {Show(request)}");
    }

    [Fact]
    public void An_observation_with_fields_that_do_not_fit_names_each_of_them()
    {
        var errors = new Dictionary<string, string[]>();
        var message = new Dictionary<string, object?>
        {
            ["type"] = "observation", ["id"] = 1L, ["images"] = new Dictionary<string, object?> { ["main"] = new Dictionary<string, object?> { ["format"] = "raw" } },
            ["state"] = new List<object?> { 1L, "two" },
            ["options"] = new Dictionary<string, object?> { ["steps"] = 1e12, ["cfg_scale"] = "high" },
        };

        Assert.IsType<StreamObservation>(StreamWire.RequestFromMap(message, errors));

        Assert.Equal(["images.main", "options.cfg_scale", "options.steps", "state"], errors.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_client_message_type_the_server_does_not_know_reads_as_null()
    {
        Assert.Null(StreamWire.RequestFromMap(new Dictionary<string, object?> { ["type"] = "teleport", ["id"] = 1L }, []));
    }

    [Fact]
    public void The_session_message_reads_back_equal()
    {
        var session = new StreamSessionInfo("abc", new ResolvedCheckpoint(Guid.NewGuid(), "picker", 3, "sim-tabletop"),
            new StreamEmbodiment("sim-tabletop", 3, 3, ["dx", "dy", "gripper"], [new CameraDto("main", 64, 64), new CameraDto("wrist", 64, 48)], 10, 8),
            "msgpack", "broker");

        var back = StreamWire.SessionFromMap(AsMap(MsgPack.Deserialize(MsgPack.Serialize(StreamWire.ToMap(session)))));

        Assert.Equal(Show(session), Show(back));
    }

    [Fact]
    public void A_client_id_that_is_not_a_number_is_echoed_as_sent()
    {
        var map = StreamWire.ToMap(new StreamPong(null), echoId: "frame-3");
        Assert.Equal("frame-3", map["id"]);
    }

    [Fact]
    public void A_message_type_this_version_does_not_know_is_skipped_not_an_error()
    {
        Assert.Null(StreamWire.FromMap(new Dictionary<string, object?> { ["type"] = "telemetry", ["id"] = 1L }));
    }

    private static Dictionary<string, object?> AsMap(object? decoded) => decoded switch
    {
        Dictionary<string, object?> map => map,
        Dictionary<object, object?> map => map.ToDictionary(e => (string)e.Key, e => e.Value),
        _ => throw new InvalidDataException("not a map"),
    };

    // Records holding arrays compare by reference; their JSON compares by value (TimeSpan included).
    private static bool Same(object expected, object? actual) =>
        actual is not null && actual.GetType() == expected.GetType() && Show(expected) == Show(actual);

    private static string Show(object? value) => value is null ? "null" : JsonSerializer.Serialize(value, value.GetType());
}
