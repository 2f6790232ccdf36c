using TorchSharp;
using VlaCloud.Actions;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>
    /// Action chunks for a batch of observations, each <c>[H, action_dim]</c> in its embodiment's units.
    /// Each sample's noise comes from its own seed, so a sample's result does not depend on the batch
    /// it was served in (up to float rounding). <paramref name="steps"/> Euler steps (default from the config).
    /// A config with <see cref="PolicyConfig.PointGuidance"/> reads <paramref name="guides"/> when given (one per observation;
    /// the caller knows where the objects are) and otherwise asks System 2 first (<see cref="GeneratePointGuides"/>).
    /// </summary>
    /// <remarks>
    /// An InternVLA-M1 policy samples by DDIM: <paramref name="steps"/> DDIM steps (default the config's, 10 released) with
    /// classifier-free guidance of scale <paramref name="cfgScale"/> (default the config's, 1.5 released; 1 or less turns
    /// guidance off). The ST4VLA family has no guidance and ignores the scale.
    /// </remarks>
    public ActionChunk[] SampleActions(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps = null, IReadOnlyList<PointGuide?>? guides = null,
        double? cfgScale = null)
    {
        if (observations.Count == 0) return [];
        using var sampling = StartSampling(observations, seeds, steps, guides, cfgScale);
        while (!sampling.Done) sampling.Step();
        return sampling.Finish();
    }

    /// <summary>
    /// <see cref="SampleActions(IReadOnlyList{Observation}, IReadOnlyList{long}, int?, IReadOnlyList{PointGuide?}, double?)"/>
    /// one denoising step at a time: computes the batch's prefix (vision, language, condition, the point guides if asked)
    /// and its seeded noise now, and returns the sampling for the caller to step (<see cref="ActionSampling.Step"/>) and
    /// finish, with other work in between if it likes. The result is the same as running the steps back to back.
    /// </summary>
    public ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps = null, IReadOnlyList<PointGuide?>? guides = null,
        double? cfgScale = null)
    {
        if (observations.Count == 0) throw new ArgumentException("no observations to sample for");
        if (seeds.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {seeds.Count} seeds");
        if (m1 is not null)
        {
            if (guides is not null) throw new ArgumentException("this policy has no point guidance to read the guides with");
            return StartInternVlaM1(observations, seeds, steps, cfgScale);
        }
        var k = steps ?? Config.InferenceSteps;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(steps), "at least one Euler step");
        var stats = observations.Select(o => StatsFor(o.Embodiment)).ToArray();
        var (h, a) = (Config.ChunkLength, Config.MaxActionDim);
        if (guides is not null && !Config.PointGuidance) throw new ArgumentException("this policy has no point guidance to read the guides with");
        if (Config.PointGuidance) guides ??= GeneratePointGuides(observations);

        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        Model.eval();
        var cond = Condition(observations, 1.0);                                                   // (B, Q, De)
        var state = States(observations);                                                          // (B, 2S) or null
        var points = guides is null ? null : PointFeatures(observations, guides);                  // (B, 6) or null
        var x = stack(seeds.Select(s => Noise(s, h, a)).ToArray()).to(DType, Device).DetachFromDisposeScope(); // (B, H, A)
        // What does not depend on x (the time path, the conditioning's keys and values, the state token) is computed
        // once for all steps; it outlives this scope because the caller steps later.
        var prepared = Model.Expert.Prepare(tensor(Enumerable.Range(0, k).Select(i => 1.0 - (double)i / k).ToArray(), DType, Device), state, points, cond);
        var owned = prepared.Tensors().Select(t => t.DetachFromDisposeScope()).ToArray();
        var euler = new EulerDenoising((xt, i) => Model.Expert.Velocity(xt, i, prepared), x, k, owned);
        return new ActionSampling([(Enumerable.Range(0, observations.Count).ToArray(), euler)], stats, h, a, k);
    }

    /// <summary>One observation's action chunk <c>[H, action_dim]</c>.</summary>
    public ActionChunk SampleActions(Observation observation, long seed, int? steps = null) => SampleActions([observation], [seed], steps)[0];

    /// <summary>
    /// System 2's answers to the point and placement questions about each observation, as the guide System 1 reads
    /// (<see cref="PolicyConfig.PointGuidance"/>). Both questions of every observation go through one batched decode.
    /// </summary>
    public PointGuide[] GeneratePointGuides(IReadOnlyList<Observation> observations)
    {
        var answers = Generate([.. observations, .. observations],
            [.. observations.Select(_ => SpatialKind.Point), .. observations.Select(_ => SpatialKind.Placement)]);
        return [.. observations.Select((_, i) => new PointGuide(answers[i].Coordinates, answers[observations.Count + i].Coordinates))];
    }

    /// <summary>Standard normal noise of one sample from its own generator.</summary>
    internal static Tensor Noise(long seed, long h, long a)
    {
        using var generator = new Generator((ulong)seed);
        return randn([h, a], float32, CPU, generator: generator);
    }

    /// <summary>
    /// Asks the VLM for a point, box, trajectory or placement point about each observation's instruction and decodes
    /// greedily with a KV cache, allowing only coordinate tokens (and the end token where a trajectory may end),
    /// so every answer parses. Coordinates are pixels of each observation's first image, and the VLM sees only that image.
    /// </summary>
    /// <remarks>
    /// An InternVLA-M1 policy answers in text, as Qwen2.5-VL does: the question (the same as in training) after the first
    /// image, greedy decoding with the KV cache up to a length fitting the kind, then Qwen's JSON
    /// (<c>[{"bbox_2d": [x1, y1, x2, y2]}]</c>, <c>point_2d</c>, a trajectory's <c>[[x, y], …]</c>, in the resized
    /// image's pixels) parsed back into the camera's pixels. Its prediction keeps the text
    /// (<see cref="SpatialPrediction.Text"/>); text holding no answer of the kind gives empty coordinates.
    /// </remarks>
    public SpatialPrediction[] GenerateSpatial(IReadOnlyList<Observation> observations, SpatialKind kind)
    {
        if (observations.Count == 0) return [];
        return m1 is not null ? GenerateSpatialInternVlaM1(observations, kind) : Generate(observations, [.. observations.Select(_ => kind)]);
    }

    /// <summary><see cref="GenerateSpatial"/> with a question kind per observation, decoded in one batch.</summary>
    private SpatialPrediction[] Generate(IReadOnlyList<Observation> observations, IReadOnlyList<SpatialKind> kinds)
    {
        if (observations.Count == 0) return [];
        var b = observations.Count;
        var limits = kinds.Select(kind => FixedAnswerLength(kind) ?? 2 * Config.MaxTrajectoryPoints).ToArray();
        var maxTokens = limits.Max();
        var tokens = Enumerable.Range(0, b).Select(_ => new List<int>()).ToArray();
        var done = new bool[b];

        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        using var cache = new KvCache(Config.LmLayers);
        Model.eval();
        var (images, cameraCounts) = SpatialImages(observations.Select(o => o.Images));
        var text = observations.Select((o, i) => TextIds(SpatialPrompts.Question(kinds[i], o.Instruction))).ToList();
        var seq = Sequence(images, cameraCounts, text, withQueries: false);
        var hidden = Model.Lm.call(seq.Embeds, seq.Positions, seq.Mask, cache);          // (B, T, D)
        var keyMask = seq.KeyMask;                                                           // (B, 1, 1, T)
        var next = seq.Positions[.., -1] + 1;                                                // (B)
        var last = hidden[.., -1];                                                           // (B, D)

        var (textVocab, vocab) = (Tokenizer.TextVocabSize, Tokenizer.VocabSize);
        for (var step = 0; step < maxTokens && !done.All(d => d); step++)
        {
            // Constrained greedy decoding on the device: only the coordinate tokens [textVocab, vocab) and, where an answer
            // may end, EOS compete. The argmax runs over that slice where the logits are, and 3 numbers per row come back
            // to the CPU instead of the (B, V) logits. Ties go to EOS, then to the lowest coordinate token, as before.
            var logits = Model.Lm.Logits(last).to(float32);                                 // (B, V)
            var (coordinateMax, coordinateAt) = logits.narrow(-1, textVocab, vocab - textVocab).max(-1);   // (B), (B)
            var eos = logits.narrow(-1, Tokenizer.EosId, 1).squeeze(-1);                     // (B)
            var picked = stack([coordinateMax, coordinateAt.to(float32), eos], -1).cpu().data<float>().ToArray(); // (B, 3)
            var chosen = new long[b];
            for (var i = 0; i < b; i++)
            {
                if (done[i]) { chosen[i] = Tokenizer.PadId; continue; }
                var count = tokens[i].Count;
                var mayEnd = kinds[i] == SpatialKind.Trajectory && count >= 2 && count % 2 == 0;
                var best = mayEnd ? Tokenizer.EosId : -1;
                var bestScore = mayEnd ? picked[i * 3 + 2] : float.NegativeInfinity;
                if (picked[i * 3] > bestScore) best = textVocab + (int)picked[i * 3 + 1];
                chosen[i] = best;
                if (best == Tokenizer.EosId) done[i] = true;
                else tokens[i].Add(best);
                if (tokens[i].Count == limits[i]) done[i] = true;
            }
            if (step == maxTokens - 1 || done.All(d => d)) break;
            var x = Model.Lm.Embed(tensor(chosen, device: Device).unsqueeze(1));              // (B, 1, D)
            keyMask = cat([keyMask, zeros([b, 1, 1, 1], DType, Device)], -1);
            var h = Model.Lm.call(x, next.unsqueeze(1), keyMask, cache);                 // (B, 1, D)
            last = h[.., -1];
            next = next + 1;
        }

        return observations.Select((o, i) =>
        {
            var ids = tokens[i].ToArray();
            if (kinds[i] == SpatialKind.Trajectory && ids.Length % 2 == 1) ids = ids[..^1];
            var first = o.Images[0];
            var coordinates = Tokenizer.DecodeCoordinates(ids, first.Width, first.Height);
            return new SpatialPrediction(kinds[i], kinds[i] == SpatialKind.Box ? OrderedBox(coordinates) : coordinates, ids);
        }).ToArray();
    }

    /// <summary>
    /// Coordinates in an answer of this kind: 2 for a point or a placement, 4 for a box; null for a trajectory, whose
    /// length varies. Training checks answers against it and generation stops at it.
    /// </summary>
    internal static int? FixedAnswerLength(SpatialKind kind) => kind switch
    {
        SpatialKind.Point or SpatialKind.Placement => 2,
        SpatialKind.Box => 4,
        _ => null,
    };

    /// <summary>
    /// A decoded box as [x1, y1, x2, y2] with x1 ≤ x2 and y1 ≤ y2: the model picks each corner coordinate separately
    /// and may give them in either order (an undertrained one often does), and callers expect a well-formed box.
    /// </summary>
    private static float[] OrderedBox(float[] c) =>
        c.Length == 4 ? [MathF.Min(c[0], c[2]), MathF.Min(c[1], c[3]), MathF.Max(c[0], c[2]), MathF.Max(c[1], c[3])] : c;
}
