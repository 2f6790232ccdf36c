using VlaCloud.Actions;
using VlaCloud.Api.Acting;

namespace VlaCloud.Api.Tests.Inference;

public sealed class ChunkBrokerTests
{
    private static ActionChunk Chunk(int length, float dx, float gripper) =>
        ActionChunk.FromRows([.. Enumerable.Range(0, length).Select(_ => new[] { dx, 0.5f, gripper })]);

    [Fact]
    public void Blending_overlapping_chunks_keeps_a_binary_gripper_exactly_0_or_1_and_averages_the_other_dimensions()
    {
        var broker = new ChunkBroker(chunkLength: 4, replanEvery: 2, ensemble: true, binaryDims: [2]);
        broker.AddChunk(Chunk(4, dx: 1f, gripper: 1f));
        broker.NextAction();
        broker.NextAction();
        // A new plan at step 2 says "open" while the old one still says "closed" for steps 2 and 3.
        broker.AddChunk(Chunk(4, dx: 0f, gripper: 0f));

        var blended = broker.NextAction();

        Assert.InRange(blended[0], 0.01f, 0.99f);
        Assert.Contains(blended[2], new[] { 0f, 1f });
        Assert.Equal(0.5f, blended[1], 5);
    }

    [Fact]
    public void Without_binary_dimensions_every_dimension_is_averaged_as_before()
    {
        var broker = new ChunkBroker(chunkLength: 4, replanEvery: 2, ensemble: true);
        broker.AddChunk(Chunk(4, dx: 1f, gripper: 1f));
        broker.NextAction();
        broker.NextAction();
        broker.AddChunk(Chunk(4, dx: 0f, gripper: 0f));

        var blended = broker.NextAction();

        Assert.InRange(blended[2], 0.01f, 0.99f);
    }
}
