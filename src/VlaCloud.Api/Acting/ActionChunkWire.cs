using VlaCloud.Actions;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Acting;

/// <summary>
/// An <see cref="ActionChunk"/> in the wire's shapes, the one place the API converts it: JSON's <c>float[][]</c> (REST
/// <c>/v1/act</c>, <c>/v1/stream</c>'s <c>actions</c>) and openpi's <c>(H, action_dim)</c> float32 numpy array. The shapes are
/// the contracts' and do not change with the domain type.
/// </summary>
public static class ActionChunkWire
{
    /// <summary>One <c>float[]</c> per step, as <see cref="Contracts.ActResponse.Actions"/> and <see cref="Contracts.StreamActions.Actions"/> carry it.</summary>
    public static float[][] ToRows(ActionChunk chunk) => chunk.ToRows();

    /// <summary>A chunk from the JSON shape; rows of different lengths are refused.</summary>
    /// <exception cref="ArgumentException">No rows, or ragged rows.</exception>
    public static ActionChunk FromRows(float[][] rows) => ActionChunk.FromRows(rows);

    /// <summary>
    /// openpi's <c>actions</c>: a <c>&lt;f4</c> array of shape <c>[H, action_dim]</c>, encoded straight from the chunk's
    /// row-major buffer (no intermediate <c>float[]</c>).
    /// </summary>
    public static NumpyArray ToNumpy(ActionChunk chunk) => NumpyArray.FromFloats(chunk.Values, chunk.Horizon, chunk.ActionDim);

    /// <summary>A chunk from openpi's numpy shape.</summary>
    /// <exception cref="ArgumentException">The array is not 2-D.</exception>
    /// <exception cref="FormatException">The dtype is not numeric, or the data does not match the shape.</exception>
    public static ActionChunk FromNumpy(NumpyArray array) =>
        array.Shape is [var h, var d] ? new ActionChunk(h, d, array.ToFloats()) : throw new ArgumentException($"an action chunk is [H, action_dim], got shape [{string.Join(", ", array.Shape)}]", nameof(array));
}
