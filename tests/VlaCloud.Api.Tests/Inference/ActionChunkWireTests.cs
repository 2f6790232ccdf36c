using System.Text.Json;
using VlaCloud.Actions;
using VlaCloud.Api.Acting;
using VlaCloud.Client;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Tests.Inference;

/// <summary>
/// The API's mapping of an <see cref="ActionChunk"/> to the wire: every surface still sends the shapes it sent before the
/// chunk type (JSON rows, openpi's numpy array), and what the SDK or an openpi client reads back is the same chunk.
/// </summary>
public sealed class ActionChunkWireTests
{
    // Values that JSON and float32 must carry exactly: negative, fractional, tiny and large.
    private static readonly ActionChunk Chunk = new(3, 2, [0.1f, -2.5f, 1e-7f, 1f, 3.4e38f, -0.333333f]);

    private static ActOutcome.Success Outcome(ActionChunk chunk) =>
        new(new ResolvedCheckpoint(Guid.NewGuid(), "demo", 1, "arm"), chunk, null, 7, new ActTiming(1, 2, 3, 1), null);

    [Fact]
    public void The_rest_answer_carries_the_chunks_rows_and_the_sdk_reads_the_same_chunk_back()
    {
        var response = Outcome(Chunk).ToResponse();
        float[][] rows = [[0.1f, -2.5f], [1e-7f, 1f], [3.4e38f, -0.333333f]];
        // The JSON a client receives is the rows' JSON, as it was when the service kept a float[,] and copied it to rows.
        Assert.Equal(JsonSerializer.Serialize(response with { Actions = rows }, VlaCloudClient.Json), JsonSerializer.Serialize(response, VlaCloudClient.Json));

        var read = JsonSerializer.Deserialize<ActResponse>(JsonSerializer.Serialize(response, VlaCloudClient.Json), VlaCloudClient.Json)!;
        Assert.Equal(Chunk.Values.ToArray(), ActionChunkWire.FromRows(read.Actions).Values.ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_stream_actions_reply_round_trips_through_both_encodings(bool binary)
    {
        var reply = new StreamActions(null, ActionChunkWire.ToRows(Chunk), 7, new ActTiming(1, 2, 3, 1), null);
        var frame = StreamMessages.Encode(StreamWire.ToMap(reply, 4L), binary);
        var decoded = StreamWire.FromMap(StreamMessages.Decode(frame, binary, out var error) ?? throw new InvalidOperationException(error));

        var actions = Assert.IsType<StreamActions>(decoded);
        Assert.Equal(Chunk.Values.ToArray(), ActionChunkWire.FromRows(actions.Actions).Values.ToArray());
    }

    [Fact]
    public void Openpis_numpy_array_is_byte_identical_to_the_rows_encoding_and_decodes_to_the_same_chunk()
    {
        var rows = Chunk.ToRows();
        var before = MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?>
        {
            ["actions"] = NumpyArray.FromFloats(rows.SelectMany(r => r).ToArray(), rows.Length, rows[0].Length),
        }));
        var now = MsgPack.Serialize(NumpyArray.ToWireTree(new Dictionary<string, object?> { ["actions"] = ActionChunkWire.ToNumpy(Chunk) }));
        Assert.Equal(before, now);

        var tree = (Dictionary<object, object?>)NumpyArray.FromWireTree(MsgPack.Deserialize(now))!;
        var array = Assert.IsType<NumpyArray>(tree.Single().Value);
        Assert.Equal([3, 2], array.Shape);
        var back = ActionChunkWire.FromNumpy(array);
        Assert.Equal((3, 2), (back.Horizon, back.ActionDim));
        Assert.Equal(Chunk.Values.ToArray(), back.Values.ToArray());
    }

    [Fact]
    public void A_numpy_array_that_is_not_two_dimensional_is_not_a_chunk() =>
        Assert.Throws<ArgumentException>(() => ActionChunkWire.FromNumpy(NumpyArray.FromFloats([1f, 2f, 3f], 3)));
}
