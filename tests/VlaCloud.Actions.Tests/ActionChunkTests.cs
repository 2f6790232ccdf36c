using VlaCloud.Actions;

namespace VlaCloud.Actions.Tests;

public sealed class ActionChunkTests
{
    // Step t, dimension d holds 10·t + d, so any mix-up of rows, columns or order shows in the numbers.
    private static readonly float[] TwoByThree = [0f, 1f, 2f, 10f, 11f, 12f];

    [Fact]
    public void A_chunk_reads_its_row_major_values_by_step_and_by_step_and_dimension()
    {
        var chunk = new ActionChunk(2, 3, TwoByThree);

        Assert.Equal((2, 3), (chunk.Horizon, chunk.ActionDim));
        Assert.Equal([10f, 11f, 12f], chunk[1].ToArray());
        Assert.Equal(12f, chunk[1, 2]);
        Assert.Equal(1f, chunk[0, 1]);
        Assert.Equal(TwoByThree, chunk.Values.ToArray());
    }

    [Fact]
    public void A_chunk_keeps_its_own_copy_of_the_values_it_was_given()
    {
        var values = (float[])TwoByThree.Clone();
        var chunk = new ActionChunk(2, 3, values);
        values[4] = -1f;
        Assert.Equal(11f, chunk[1, 1]);
    }

    [Theory]
    [InlineData(2, 3, 5)]
    [InlineData(2, 3, 7)]
    [InlineData(1, 0, 1)]
    public void Values_that_do_not_fill_the_shape_are_refused(int horizon, int dim, int count) =>
        Assert.Throws<ArgumentException>(() => new ActionChunk(horizon, dim, new float[count]));

    [Theory]
    [InlineData(0, 3)]
    [InlineData(-1, 3)]
    [InlineData(2, -1)]
    public void A_chunk_has_at_least_one_step_and_no_negative_dimension(int horizon, int dim) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new ActionChunk(horizon, dim, ReadOnlySpan<float>.Empty));

    [Theory]
    [InlineData(-1, 0)]
    [InlineData(2, 0)]
    [InlineData(0, -1)]
    [InlineData(0, 3)]
    public void Steps_and_dimensions_outside_the_chunk_are_refused_not_read_from_a_neighbouring_row(int step, int dim)
    {
        var chunk = new ActionChunk(2, 3, TwoByThree);
        Assert.Throws<ArgumentOutOfRangeException>(() => chunk[step, dim]);
        if (step is < 0 or >= 2) Assert.Throws<ArgumentOutOfRangeException>(() => chunk[step].Length);
    }

    [Fact]
    public void Rows_round_trip_and_ragged_or_empty_rows_are_refused()
    {
        float[][] rows = [[0f, 1f, 2f], [10f, 11f, 12f]];
        var chunk = ActionChunk.FromRows(rows);
        Assert.Equal(TwoByThree, chunk.Values.ToArray());
        Assert.Equal(rows, chunk.ToRows());

        Assert.Throws<ArgumentException>(() => ActionChunk.FromRows([[0f, 1f], [2f]]));
        Assert.Throws<ArgumentException>(() => ActionChunk.FromRows([]));
        Assert.Throws<ArgumentException>(() => ActionChunk.FromRows([[1f], null!]));
    }

    [Fact]
    public void Create_hands_the_writer_a_zeroed_buffer_of_the_shape_and_keeps_what_it_wrote()
    {
        var chunk = ActionChunk.Create(2, 3, 10f, static (values, scale) =>
        {
            Assert.Equal(6, values.Length);
            Assert.All(values.ToArray(), v => Assert.Equal(0f, v));
            for (var i = 0; i < values.Length; i++) values[i] = scale * (i / 3) + i % 3;
        });
        Assert.Equal(TwoByThree, chunk.Values.ToArray());
    }

    [Fact]
    public void Chunks_are_equal_when_shape_and_values_match_bit_for_bit()
    {
        var chunk = new ActionChunk(2, 2, [0.1f, 0, 1, float.NaN]);

        Assert.Equal(new ActionChunk(2, 2, [0.1f, 0, 1, float.NaN]), chunk);
        Assert.Equal(new ActionChunk(2, 2, [0.1f, 0, 1, float.NaN]).GetHashCode(), chunk.GetHashCode());
        Assert.NotEqual(new ActionChunk(1, 4, [0.1f, 0, 1, float.NaN]), chunk);
        Assert.NotEqual(new ActionChunk(2, 2, [0.1f, -0f, 1, float.NaN]), chunk);
        Assert.NotEqual(new ActionChunk(2, 2, [0.1f, 0, 1, 1]), chunk);
        Assert.Equal("2×2 [[0.1, 0], [1, NaN]]", chunk.ToString());
    }
}
