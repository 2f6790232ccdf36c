using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>
    /// The losses of a batch, in training mode, with autograd: call <c>Total.backward()</c>. Action
    /// samples give the flow-matching loss (their gradient into the VLM scaled by
    /// <see cref="PolicyConfig.GradientDecay"/>); spatial samples give the answer cross-entropy, skipped
    /// in vanilla mode. Noise and flow times come from the global generator (seed it with
    /// <c>torch.random.manual_seed</c> for reproducible runs). Run it inside the caller's dispose scope.
    /// </summary>
    public PolicyLoss ComputeLoss(TrainingBatch batch)
    {
        if (m1 is not null) return InternVlaM1Loss(batch);
        Model.train();
        var action = batch.Actions.Count > 0 ? ActionLoss(batch.Actions) : null;
        var spatial = batch.Spatial.Count > 0 && !Config.Vanilla ? SpatialLoss(batch.Spatial) : null;
        if (action is null && spatial is null) throw new ArgumentException(Config.Vanilla && batch.Spatial.Count > 0
            ? "a vanilla policy trains on action samples only and this batch has none"
            : "the batch is empty");
        var total = (action, spatial) switch
        {
            ({ } a, { } s) => a + s * Config.SpatialLossWeight,
            ({ } a, null) => a.alias(),
            _ => spatial! * Config.SpatialLossWeight,
        };
        return new PolicyLoss(total, action, spatial);
    }

    private Tensor ActionLoss(IReadOnlyList<ActionSample> samples)
    {
        using var scope = NewDisposeScope();
        var (b, h, a) = (samples.Count, Config.ChunkLength, Config.MaxActionDim);
        var target = new float[b, h, a];
        var weight = new float[b, h, a];
        for (var i = 0; i < b; i++)
        {
            var s = samples[i];
            var stats = StatsFor(s.Observation.Embodiment);
            if (s.Actions.Horizon != h || s.Actions.ActionDim != stats.ActionDim)
                throw new ArgumentException($"sample {i}: actions are [{s.Actions.Horizon}, {s.Actions.ActionDim}], expected [{h}, {stats.ActionDim}]");
            if (s.Valid is { } v && v.Length != h) throw new ArgumentException($"sample {i}: Valid has {v.Length} entries, expected {h}");
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

    private Tensor SpatialLoss(IReadOnlyList<SpatialSample> samples)
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
