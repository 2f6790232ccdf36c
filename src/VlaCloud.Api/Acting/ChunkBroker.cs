using VlaCloud.Actions;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Server-side chunk handling for a control session that sends an observation every control step and
/// wants one action back. The model is asked for a new chunk every <c>replanEvery</c> steps; with
/// ensembling on, the action of a step averages every stored chunk that covers it, weighted by CogACT's
/// adaptive rule <c>w = exp(α · cos(chunk action, newest chunk's action))</c>, so a new plan blends in
/// rather than jumping. Binary dimensions (a gripper: 0 or 1 in the embodiment's units) are not averaged into a
/// half-open gripper: the blend is a weighted vote, thresholded at 0.5, so they stay exactly 0 or 1. One instance per
/// session: state never leaks between robots.
/// </summary>
public sealed class ChunkBroker
{
    private readonly int chunkLength;
    private readonly int replanEvery;
    private readonly bool ensemble;
    private readonly double alpha;
    private readonly List<(long Start, ActionChunk Chunk)> chunks = [];
    private readonly int[] binaryDims;

    /// <summary>Creates a broker.</summary>
    /// <param name="chunkLength">Steps per chunk (H).</param>
    /// <param name="replanEvery">Ask for a new chunk every this many steps (1…H).</param>
    /// <param name="ensemble">Blend overlapping chunks (else execute the newest chunk as is).</param>
    /// <param name="alpha">CogACT's α (0.1 in the paper's code).</param>
    /// <param name="binaryDims">Action dimensions that are 0 or 1 (the checkpoint's <c>binary_action_dims</c> for the embodiment).</param>
    public ChunkBroker(int chunkLength, int replanEvery, bool ensemble, double alpha = 0.1, IReadOnlyList<int>? binaryDims = null)
    {
        this.binaryDims = [.. binaryDims ?? []];
        if (replanEvery < 1 || replanEvery > chunkLength) throw new ArgumentOutOfRangeException(nameof(replanEvery), $"must be 1..{chunkLength}");
        this.chunkLength = chunkLength;
        this.replanEvery = replanEvery;
        this.ensemble = ensemble;
        this.alpha = alpha;
    }

    /// <summary>The step the next observation belongs to.</summary>
    public long Step { get; private set; }

    /// <summary>Whether the current step needs a new chunk from the model.</summary>
    public bool NeedsPlan => chunks.Count == 0 || Step - chunks[^1].Start >= replanEvery;

    /// <summary>Stores a chunk planned at the current step (the engine's chunk itself: it is immutable, so no copy is kept).</summary>
    public void AddChunk(ActionChunk chunk)
    {
        ArgumentNullException.ThrowIfNull(chunk);
        chunks.Add((Step, chunk));
        // Only chunks that still cover a future step matter.
        chunks.RemoveAll(c => c.Start + chunkLength <= Step);
    }

    /// <summary>The action of the current step; then moves to the next step.</summary>
    public float[] NextAction()
    {
        if (chunks.Count == 0) throw new InvalidOperationException("No chunk planned yet.");
        var newest = chunks[^1];
        var dim = newest.Chunk.ActionDim;
        var reference = newest.Chunk[(int)(Step - newest.Start)];
        float[] action;
        if (!ensemble)
        {
            action = reference.ToArray();
        }
        else
        {
            action = new float[dim];
            double total = 0;
            foreach (var (start, chunk) in chunks)
            {
                var offset = Step - start;
                if (offset < 0 || offset >= chunkLength) continue;
                var row = chunk[(int)offset];
                var weight = Math.Exp(alpha * Cosine(row, reference));
                total += weight;
                for (var d = 0; d < dim; d++) action[d] += (float)(weight * row[d]);
            }
            for (var d = 0; d < dim; d++) action[d] = (float)(action[d] / total);
            foreach (var d in binaryDims)
                if (d >= 0 && d < dim) action[d] = action[d] >= 0.5f ? 1f : 0f;
        }
        Step++;
        return action;
    }

    /// <summary>Forgets every chunk and starts again at step 0 (a new episode).</summary>
    public void Reset()
    {
        chunks.Clear();
        Step = 0;
    }

    private static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 1 : dot / Math.Sqrt(na * nb);
    }
}
