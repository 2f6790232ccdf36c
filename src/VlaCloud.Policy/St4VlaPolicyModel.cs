using TorchSharp;
using VlaCloud.Policy.Modules;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// The ST4VLA family (<see cref="PolicyConfig.St4VlaFamily"/>): its model and the composition of its forward passes,
/// the VLM sequence (<c>St4VlaPolicyModel.Inputs.cs</c>), the flow-matching and answer losses, Euler sampling and the
/// constrained decoding of spatial answers.
/// </summary>
internal sealed partial class St4VlaPolicyModel(VlaPolicy policy, St4VlaModel model) : PolicyModel(policy)
{
    /// <summary>The ViT, the language model, the latent queries, the bridge and the action expert.</summary>
    public St4VlaModel Model { get; } = model;
    public override nn.Module Module => Model;
    private PolicyTokenizer Tokenizer => Policy.Tokenizer;

    /// <summary>The VLM (ViT + decoder), the action expert (the DiT) and the rest (latent queries + bridge).</summary>
    public override PolicyParameterGroups ParameterGroups() => new(
        Model.Vision.parameters().Concat(Model.Lm.parameters()).ToList(),
        Model.Expert.parameters().ToList(),
        Model.Bridge.parameters().Prepend(Model.Queries).ToList());

    public override IEnumerable<nn.Module> LayoutModules(bool action, bool state)
    {
        var modules = new List<nn.Module>();
        if (action) modules.AddRange(Model.Expert.ActionLayoutModules);
        if (state) modules.AddRange(Model.Expert.StateLayoutModules);
        return modules;
    }

    /// <summary>Euler steps of the flow from each sample's seeded noise, the DiT conditioned on the VLM's latent queries.</summary>
    public override ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps,
        IReadOnlyList<PointGuide?>? guides, double? cfgScale, IReadOnlyList<string?>? sessions = null)
    {
        var k = steps ?? Config.InferenceSteps;
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(steps), "at least one Euler step");
        var stats = observations.Select(o => StatsFor(o.Embodiment)).ToArray();
        var (h, a) = (Config.ChunkLength, Config.MaxActionDim);
        if (guides is not null && !Config.PointGuidance) throw new ArgumentException("this policy has no point guidance to read the guides with");
        if (Config.PointGuidance) guides ??= GeneratePointGuides(observations);

        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        Model.eval();
        var cond = CachedPrefix(observations, sessions, o => Condition(o, 1.0));                   // (B, Q, De)
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

    /// <summary>
    /// System 2's answers to the point and placement questions about each observation, as the guide System 1 reads
    /// (<see cref="PolicyConfig.PointGuidance"/>). Both questions of every observation go through one batched decode.
    /// </summary>
    public override PointGuide[] GeneratePointGuides(IReadOnlyList<Observation> observations)
    {
        var answers = Generate([.. observations, .. observations],
            [.. observations.Select(_ => SpatialKind.Point), .. observations.Select(_ => SpatialKind.Placement)]);
        return [.. observations.Select((_, i) => new PointGuide(answers[i].Coordinates, answers[observations.Count + i].Coordinates))];
    }

    /// <summary>Constrained greedy decoding of coordinate tokens (<see cref="VlaPolicy.GenerateSpatial"/>).</summary>
    public override SpatialPrediction[] GenerateSpatial(IReadOnlyList<Observation> observations, SpatialKind kind) =>
        Generate(observations, [.. observations.Select(_ => kind)]);

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

    protected override Tensor ActionLoss(IReadOnlyList<ActionSample> samples)
    {
        using var scope = NewDisposeScope();
        var (b, h, a) = (samples.Count, Config.ChunkLength, Config.MaxActionDim);
        var target = new float[b, h, a];
        var weight = new float[b, h, a];
        for (var i = 0; i < b; i++)
        {
            var s = samples[i];
            var stats = CheckedStats(i, s, h);
            for (var step = 0; step < h; step++)
            {
                if (s.Valid is { } valid && !valid[step]) continue;
                var normed = stats.NormalizeAction(s.Actions[step]);
                for (var d = 0; d < normed.Length; d++)
                {
                    target[i, step, d] = normed[d];
                    weight[i, step, d] = 1f;
                }
            }
        }
        var observations = samples.Select(s => s.Observation).ToList();
        // Each sample's VLM pass is shared by ActionRepeats noise/time draws.
        var r = Math.Max(1, Config.ActionRepeats);
        var cond = Condition(observations, Config.GradientDecay).repeat_interleave(r, 0);    // (B·r, Q, De)
        var state = States(observations)?.repeat_interleave(r, 0);
        var points = PointFeatures(observations, [.. samples.Select(s => s.Guide)])?.repeat_interleave(r, 0);
        var actions = tensor(target, device: Device).to(DType).repeat_interleave(r, 0);       // (B·r, H, A)
        var mask = tensor(weight, device: Device).to(DType).repeat_interleave(r, 0);
        b *= r;
        var noise = randn_like(actions);
        // Flow times from Beta(1.5, 1) (as π0): more weight on noisy times, where the velocity is learnable.
        var t = (rand(b, DType, Device).pow(1 / 1.5) * 0.999 + 0.001).view(b, 1, 1);            // (B, 1, 1)
        var xt = t * noise + (1 - t) * actions;
        var velocity = Model.Expert.call(xt, t.view(b), state, points, cond);              // (B, H, A)
        var error = (velocity - (noise - actions)).pow(2) * mask;
        return (error.sum() / mask.sum().clamp_min(1)).to(float32).MoveToOuterDisposeScope();
    }

    protected override Tensor SpatialLoss(IReadOnlyList<SpatialSample> samples)
    {
        using var scope = NewDisposeScope();
        var texts = new List<int[]>();
        var answerStarts = new List<int>();
        foreach (var s in samples)
        {
            var expected = FixedAnswerLength(s.Kind);
            if ((expected is not null && s.Coordinates.Length != expected) || s.Coordinates.Length < 2 || s.Coordinates.Length % 2 != 0)
                throw new ArgumentException($"a {s.Kind} answer cannot have {s.Coordinates.Length} coordinates");
            var question = TextIds(s.Question);
            var coords = s.Kind == SpatialKind.Trajectory && s.Coordinates.Length > 2 * Config.MaxTrajectoryPoints
                ? s.Coordinates[..(2 * Config.MaxTrajectoryPoints)] : s.Coordinates;
            var answer = Tokenizer.EncodeCoordinates(coords, s.Images[0].Width, s.Images[0].Height);
            answerStarts.Add(question.Length);
            texts.Add([.. question, .. answer, Tokenizer.EosId]);
        }
        var (images, cameraCounts) = SpatialImages(samples.Select(s => s.Images));
        var seq = Sequence(images, cameraCounts, texts, withQueries: false);
        var hidden = Model.Lm.call(seq.Embeds, seq.Positions, seq.Mask, null);                  // (B, T, D)

        // Each answer token is predicted from the position before it.
        var rows = new List<long>();
        var targets = new List<long>();
        var total = hidden.shape[1];
        for (var i = 0; i < samples.Count; i++)
        {
            for (var j = answerStarts[i]; j < texts[i].Length; j++)
            {
                rows.Add(i * total + seq.TextStart[i] + j - 1);
                targets.Add(texts[i][j]);
            }
        }
        var picked = hidden.flatten(0, 1).index_select(0, tensor(rows.ToArray(), device: Device)); // (N, D)
        var logits = Model.Lm.Logits(picked).to(float32);                                          // (N, V)
        return nn.functional.cross_entropy(logits, tensor(targets.ToArray(), device: Device)).MoveToOuterDisposeScope();
    }
}
