using TorchSharp;
using VlaCloud.Policy.InternVla;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Text;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>
/// The InternVLA-M1 family (<see cref="PolicyConfig.InternVlaM1Family"/>): its model and the composition of its forward
/// passes, the DDPM and VLM losses, DDIM sampling with guidance and Qwen's text answers.
/// </summary>
internal sealed class InternVlaM1PolicyModel(VlaPolicy policy, InternVlaM1 m1) : PolicyModel(policy)
{
    /// <summary>Qwen2.5-VL, the Q-Former, DINO and its projection, the state projection and the DiT.</summary>
    public InternVlaM1 M1 { get; } = m1;
    public override nn.Module Module => M1;

    /// <summary>Qwen2.5-VL; the DiT; the Q-Former, DINO, its projection and the state and point projections.</summary>
    public override PolicyParameterGroups ParameterGroups()
    {
        var vlm = M1.named_parameters().Where(p => p.name.StartsWith("qwen_vl_interface.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        var expert = M1.named_parameters().Where(p => p.name.StartsWith("action_model.", StringComparison.Ordinal)).Select(p => p.parameter).ToList();
        var rest = M1.named_parameters().Where(p => !p.name.StartsWith("qwen_vl_interface.", StringComparison.Ordinal) && !p.name.StartsWith("action_model.", StringComparison.Ordinal))
            .Select(p => p.parameter).ToList();
        return new PolicyParameterGroups(vlm, expert, rest);
    }

    public override IEnumerable<nn.Module> LayoutModules(bool action, bool state)
    {
        var modules = new List<nn.Module>();
        if (action) modules.AddRange(M1.Heads.ActionModel.Net.ActionLayoutModules);
        if (state && M1.StateProjector is { } projector) modules.Add(projector);
        return modules;
    }

    /// <summary>
    /// <c>predict_action</c> for a batch, ready to step: each observation's cameras resized, the lower-cased instruction in
    /// the prompt, the condition, then DDIM (<paramref name="steps"/>, default the config's 10) with guidance
    /// (<paramref name="cfgScale"/>, default 1.5) from each sample's own seeded noise. Observations with different camera
    /// counts run as separate groups (DINO stacks a sample's views), each a chain stepped together. Under point guidance
    /// the guides (System 2's own when none are given, <see cref="GeneratePointGuides"/>) are one more condition token,
    /// appended after the prefix (the cached part), so a session hit still reads this call's guides.
    /// </summary>
    public override ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps,
        IReadOnlyList<PointGuide?>? guides, double? cfgScale, IReadOnlyList<string?>? sessions = null)
    {
        if (guides is not null && !Config.PointGuidance) throw new ArgumentException("this policy has no point guidance to read the guides with");
        if (guides is not null && guides.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {guides.Count} point guides");
        var action = M1.Config.Heads.ActionModel;
        var k = steps ?? Config.InferenceSteps;
        if (k < 1 || k > action.DiffusionSteps) throw new ArgumentOutOfRangeException(nameof(steps), $"DDIM steps must be between 1 and {action.DiffusionSteps}");
        if (cfgScale is { } g && (!double.IsFinite(g) || g < 0 || g > 100)) throw new ArgumentOutOfRangeException(nameof(cfgScale), "the guidance scale must be between 0 and 100");
        CheckCameras([.. observations.Select(o => o.Images)]);
        var stats = observations.Select(o => StatsFor(o.Embodiment)).ToArray();
        var (h, a) = (M1.Config.ChunkLength, M1.Config.ActionDim);
        if (Config.PointGuidance) guides ??= GeneratePointGuides(observations);

        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        M1.eval();
        var chains = new List<(int[], IDenoising)>();
        try
        {
            foreach (var group in Enumerable.Range(0, observations.Count).GroupBy(i => observations[i].Images.Count))
            {
                var members = group.ToArray();
                var batch = members.Select(i => observations[i]).ToList();
                var prefix = CachedPrefix(batch, sessions is null ? null : [.. members.Select(i => sessions[i])], Condition); // (B, Q, D)
                var condition = M1.WithPointToken(prefix, guides is null ? null : PointFeatures(batch, [.. members.Select(i => guides[i])])); // (B, Q [+ 1], D)
                var noise = stack(members.Select(i => Noise(seeds[i], h, a)).ToArray());            // (B, H, A)
                chains.Add((members, new DdimDenoising(M1.StartSampling(condition, noise, cfgScale, k))));
            }
        }
        catch
        {
            foreach (var (_, chain) in chains) chain.Dispose();
            throw;
        }
        return new ActionSampling(chains, stats, h, a, k);
    }

    /// <summary>
    /// The action condition of <c>predict_action</c> for observations with the same camera count: the cameras resized,
    /// the lower-cased instruction in the prompt, the state.
    /// </summary>
    internal Tensor Condition(IReadOnlyList<Observation> batch)
    {
        var views = M1.ResizeViews(batch.Select(o => o.Images));
        // predict_action lower-cases the instructions.
        var prompts = batch.Select(o => M1.ActionPrompt(o.Instruction.ToLowerInvariant())).ToList();
        return M1.Condition(views, prompts, States(batch));                                         // (B, Q, D)
    }

    /// <summary>
    /// The DDPM loss of the action samples: actions normalised, padded with zeros to the DiT's dimension, steps past an
    /// episode's end holding the last real action.
    /// </summary>
    protected override Tensor ActionLoss(IReadOnlyList<ActionSample> samples)
    {
        using var scope = NewDisposeScope();
        var (b, h, a) = (samples.Count, M1.Config.ChunkLength, M1.Config.ActionDim);
        var target = new float[b, h, a];
        for (var i = 0; i < b; i++)
        {
            var s = samples[i];
            var stats = CheckedStats(i, s, h);
            float[]? last = null;
            for (var step = 0; step < h; step++)
            {
                if (s.Valid is not { } valid || valid[step] || last is null) last = stats.NormalizeAction(s.Actions[step]);
                for (var d = 0; d < last.Length; d++) target[i, step, d] = last[d];
            }
        }
        var observations = samples.Select(s => s.Observation).ToList();
        CheckCameras([.. observations.Select(o => o.Images)]);
        var losses = new List<Tensor>();
        foreach (var group in Enumerable.Range(0, b).GroupBy(i => observations[i].Images.Count))
        {
            var members = group.ToList();
            var batch = members.Select(i => observations[i]).ToList();
            var condition = M1.Condition(M1.ResizeViews(batch.Select(o => o.Images)), [.. batch.Select(o => M1.ActionPrompt(o.Instruction))], States(batch));
            // Point guidance is teacher-forced: the samples' labelled guides, not System 2's answers.
            condition = M1.WithPointToken(condition, PointFeatures(batch, [.. members.Select(i => samples[i].Guide)]));
            var actions = tensor(target, device: Device).to(DType).index_select(0, tensor(members.Select(i => (long)i).ToArray(), device: Device));
            // Each group's mean weighted by its share of the batch: the mean over the whole batch.
            losses.Add(M1.ActionLoss(actions, condition).to(float32) * ((double)members.Count / b));
        }
        return stack(losses).sum().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The user message of a spatial question, in training (followed by the answer) and in generation (followed by the
    /// generation prompt): the first camera's image, then the question (<see cref="SpatialPrompts.Question"/>).
    /// </summary>
    private static ChatMessage SpatialQuestion(string question) => ChatMessage.User(question, 1);

    /// <summary>
    /// M1's spatial answers: each observation's first image and the question of <paramref name="kind"/> about its
    /// instruction, as in training; greedy decoding with the KV cache bounded by <see cref="AnswerTokens"/>;
    /// the text parsed as Qwen's JSON (<see cref="QwenSpatialAnswer.Parse(string?, SpatialKind, ImageCoordinateMap)"/>)
    /// into the first image's pixels.
    /// </summary>
    public override SpatialPrediction[] GenerateSpatial(IReadOnlyList<Observation> observations, SpatialKind kind) =>
        Generate(observations, [.. observations.Select(_ => kind)]);

    /// <summary>
    /// System 2's answers to the point question (the target) and the placement question (the destination) about each
    /// observation, in pixels of its first camera, as the guide the point token reads (<see cref="PolicyConfig.PointGuidance"/>);
    /// an answer without a point leaves that point unknown. Both questions of every observation go through one batched decode.
    /// </summary>
    public override PointGuide[] GeneratePointGuides(IReadOnlyList<Observation> observations)
    {
        if (observations.Count == 0) return [];
        var answers = Generate([.. observations, .. observations],
            [.. observations.Select(_ => SpatialKind.Point), .. observations.Select(_ => SpatialKind.Placement)]);
        static float[]? Point(SpatialPrediction p) => p.Coordinates.Length == 2 ? p.Coordinates : null;
        return [.. observations.Select((_, i) => new PointGuide(Point(answers[i]), Point(answers[observations.Count + i])))];
    }

    /// <summary><see cref="GenerateSpatial"/> with a question kind per observation, decoded in one batch (as many tokens as the longest kind may take).</summary>
    private SpatialPrediction[] Generate(IReadOnlyList<Observation> observations, IReadOnlyList<SpatialKind> kinds)
    {
        var images = observations.Select((o, i) => o.Images.Count > 0 ? o.Images[0] : throw new ArgumentException($"observation {i} has no image to ask about")).ToList();
        foreach (var image in images) image.Validate();
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        M1.eval();
        var answers = M1.GenerateAnswers([.. images.Select(i => (IReadOnlyList<CameraImage>)[i])],
            [.. observations.Select((o, i) => (IReadOnlyList<ChatMessage>)[SpatialQuestion(SpatialPrompts.Question(kinds[i], o.Instruction))])],
            kinds.Distinct().Max(k => AnswerTokens(k, Config.MaxTrajectoryPoints)));
        return [.. answers.Select((a, i) => ParseAnswer(kinds[i], a.Text, a.Ids, M1.CoordinateMap(images[i]), Config.MaxTrajectoryPoints))];
    }

    /// <summary>
    /// The most tokens an M1 answer of <paramref name="kind"/> may take: the characters of the longest answer training
    /// could write (one item with 4-digit coordinates, a trajectory of <paramref name="maxTrajectoryPoints"/>
    /// points) plus a 32-character label Qwen may add to a point or box, as if every character were a token (a
    /// byte-level vocabulary; Qwen's own takes fewer), and the end token.
    /// </summary>
    internal static int AnswerTokens(SpatialKind kind, int maxTrajectoryPoints)
    {
        var points = kind switch { SpatialKind.Trajectory => maxTrajectoryPoints, SpatialKind.Box => 2, _ => 1 };
        var label = kind == SpatialKind.Trajectory ? null : new string('x', 32);
        return QwenSpatialAnswer.Format([new SpatialItem(kind, [.. Enumerable.Repeat(9999f, 2 * points)], label)]).Length + 1;
    }

    /// <summary>
    /// A generated M1 answer as a prediction: the first item of <paramref name="kind"/> in the text, in the camera's
    /// pixels and clamped to its image, as the training targets are (a trajectory cut to
    /// <paramref name="maxTrajectoryPoints"/> points). Text without such an item gives empty coordinates
    /// (<see cref="SpatialPrediction.Answered"/> false); the text is kept either way.
    /// </summary>
    internal static SpatialPrediction ParseAnswer(SpatialKind kind, string text, int[] ids, ImageCoordinateMap map, int maxTrajectoryPoints)
    {
        var coordinates = QwenSpatialAnswer.Parse(text, kind, map).FirstOrDefault()?.Coordinates ?? [];
        if (kind == SpatialKind.Trajectory && coordinates.Length > 2 * maxTrajectoryPoints) coordinates = coordinates[..(2 * maxTrajectoryPoints)];
        for (var i = 0; i < coordinates.Length; i++) coordinates[i] = Math.Clamp(coordinates[i], 0, i % 2 == 0 ? map.SourceWidth : map.SourceHeight);
        return new SpatialPrediction(kind, coordinates, ids, text);
    }

    /// <summary>The cross-entropy of the spatial answers, written as Qwen JSON in the processor's pixels.</summary>
    protected override Tensor SpatialLoss(IReadOnlyList<SpatialSample> samples)
    {
        var images = new List<IReadOnlyList<CameraImage>>();
        var chats = new List<IReadOnlyList<ChatMessage>>();
        foreach (var s in samples)
        {
            if (s.Images.Count == 0) throw new ArgumentException("a spatial sample needs an image");
            // The coordinates are in the first image's pixels; the answer gives them in the processor's, as Qwen does.
            var image = s.Images[0];
            image.Validate();
            var answer = QwenSpatialAnswer.Format([new SpatialItem(s.Kind, s.Coordinates)], M1.CoordinateMap(image));
            images.Add([image]);
            chats.Add([SpatialQuestion(s.Question), ChatMessage.Assistant(answer)]);
        }
        return M1.VlmLoss(images, chats).to(float32);
    }
}
