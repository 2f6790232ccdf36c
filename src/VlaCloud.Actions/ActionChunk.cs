namespace VlaCloud.Actions;

/// <summary>
/// An action chunk: <see cref="Horizon"/> consecutive actions of <see cref="ActionDim"/> values each, in the embodiment's
/// units, held once in a contiguous row-major buffer (step 0's action first). It is immutable, so one chunk can travel
/// from the policy through the inference engine to the action service, a stream's broker, the simulator's controllers
/// and training without each stage copying it into its own shape; conversions happen only at the edges (tensors in
/// <c>VlaCloud.Policy</c>, the JSON and numpy wire shapes in the API's mapping).
/// </summary>
/// <remarks>
/// It lives in this project of its own, which references nothing, because every layer that handles chunks must see it and
/// the arrows of <c>docs/architecture.md</c> leave no existing home: <c>VlaCloud.Policy</c> carries libtorch, which the
/// simulator (and with it the <c>vlacloud</c> CLI) must not; <c>VlaCloud.Contracts</c> is the wire, whose shapes
/// (<c>float[][]</c> in JSON, a numpy array in openpi's msgpack) are not the domain's and which the simulator does not
/// reference; <c>VlaCloud.Datasets</c> is the LeRobot format. Policy and Sim reference this project; Inference, Training
/// and the API see it through them.
/// <para>Two chunks are equal when they have the same shape and the same values bit for bit, as the arrays it replaced
/// compared in tests of determinism (the same seed, the same chunk).</para>
/// </remarks>
[System.Diagnostics.DebuggerDisplay("{ToString(),nq}")]
public sealed class ActionChunk : IEquatable<ActionChunk>
{
    private readonly float[] values;

    private ActionChunk(int horizon, int actionDim, float[] values)
    {
        Horizon = horizon;
        ActionDim = actionDim;
        this.values = values;
    }

    /// <summary>A copy of <paramref name="values"/> (row-major, <c>horizon × actionDim</c> of them) as a chunk.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The horizon is below 1 or the dimension negative.</exception>
    /// <exception cref="ArgumentException">The number of values is not <c>horizon × actionDim</c>.</exception>
    public ActionChunk(int horizon, int actionDim, ReadOnlySpan<float> values)
        : this(horizon, actionDim, Allocate(horizon, actionDim))
    {
        if (values.Length != this.values.Length)
            throw new ArgumentException($"a {horizon}×{actionDim} chunk needs {this.values.Length} values, got {values.Length}", nameof(values));
        values.CopyTo(this.values);
    }

    /// <summary>Steps in the chunk (H, at least 1).</summary>
    public int Horizon { get; }

    /// <summary>Values per action (the embodiment's action dimension).</summary>
    public int ActionDim { get; }

    /// <summary>All values, row-major: step <c>t</c>'s action is <c>[t·ActionDim, (t+1)·ActionDim)</c>.</summary>
    public ReadOnlySpan<float> Values => values;

    /// <summary>The action of step <paramref name="step"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The step is outside <c>[0, Horizon)</c>.</exception>
    public ReadOnlySpan<float> this[int step] => values.AsSpan(RowStart(step), ActionDim);

    /// <summary>Value <paramref name="dim"/> of step <paramref name="step"/>'s action.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The step or the dimension is out of range.</exception>
    public float this[int step, int dim] =>
        (uint)dim < (uint)ActionDim ? values[RowStart(step) + dim] : throw new ArgumentOutOfRangeException(nameof(dim), $"dimension {dim} of {ActionDim}");

    /// <summary>
    /// A chunk written in place by <paramref name="fill"/>, which receives the zeroed row-major buffer and
    /// <paramref name="state"/>: how a producer (the policy unnormalising its output, a sampler slicing an episode) builds
    /// a chunk without a copy. The buffer is the chunk's from then on; <paramref name="fill"/> cannot keep it, as spans
    /// do not outlive the call.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The horizon is below 1 or the dimension negative.</exception>
    public static ActionChunk Create<TState>(int horizon, int actionDim, TState state, ChunkFill<TState> fill)
    {
        ArgumentNullException.ThrowIfNull(fill);
        var buffer = Allocate(horizon, actionDim);
        fill(buffer, state);
        return new ActionChunk(horizon, actionDim, buffer);
    }

    /// <summary>A chunk of these actions, one per step, all of one length (copied).</summary>
    /// <exception cref="ArgumentException">No rows, or rows of different lengths.</exception>
    public static ActionChunk FromRows(IReadOnlyList<float[]> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("a chunk has at least one action", nameof(rows));
        var dim = rows[0]?.Length ?? throw new ArgumentException("action 0 is null", nameof(rows));
        for (var t = 1; t < rows.Count; t++)
            if (rows[t]?.Length != dim) throw new ArgumentException($"action {t} has {rows[t]?.Length.ToString() ?? "no"} values, action 0 has {dim}", nameof(rows));
        return Create(rows.Count, dim, rows, static (buffer, rows) =>
        {
            var dim = rows[0].Length;
            for (var t = 0; t < rows.Count; t++) rows[t].CopyTo(buffer.Slice(t * dim, dim));
        });
    }

    /// <summary>The actions as one array per step (a copy): the shape of the JSON wire and of the SDK's records.</summary>
    public float[][] ToRows()
    {
        var rows = new float[Horizon][];
        for (var t = 0; t < rows.Length; t++) rows[t] = this[t].ToArray();
        return rows;
    }

    /// <summary>Same shape and bit-identical values (so NaN equals NaN and 0 differs from −0).</summary>
    public bool Equals(ActionChunk? other) =>
        other is not null && (ReferenceEquals(this, other) || (Horizon == other.Horizon && ActionDim == other.ActionDim
            && System.Runtime.InteropServices.MemoryMarshal.AsBytes(Values).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(other.Values))));

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as ActionChunk);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Horizon);
        hash.Add(ActionDim);
        hash.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Values));
        return hash.ToHashCode();
    }

    /// <summary>The shape and the actions, e.g. <c>2×3 [[0.1, 0, 1], [0.2, 0, 1]]</c>, for test failures and logs.</summary>
    public override string ToString() =>
        $"{Horizon}×{ActionDim} [{string.Join(", ", Enumerable.Range(0, Horizon).Select(t => "[" + string.Join(", ", this[t].ToArray().Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture))) + "]"))}]";

    private int RowStart(int step) =>
        (uint)step < (uint)Horizon ? step * ActionDim : throw new ArgumentOutOfRangeException(nameof(step), $"step {step} of a {Horizon}-step chunk");

    private static float[] Allocate(int horizon, int actionDim)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(horizon, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(actionDim);
        return new float[checked(horizon * actionDim)];
    }
}

/// <summary>Writes a new chunk's row-major values (see <see cref="ActionChunk.Create{TState}"/>).</summary>
/// <param name="values">The chunk's buffer, <c>horizon × actionDim</c> zeros.</param>
/// <param name="state">What the caller passed along, so the writer need not capture it.</param>
public delegate void ChunkFill<in TState>(Span<float> values, TState state);
