using System.Diagnostics;
using System.Text.Json;
using TorchSharp;
using TorchSharp.Modules;
using VlaCloud.Policy;
using static TorchSharp.torch;

namespace VlaCloud.Training;

/// <summary>Metrics after one optimizer step.</summary>
/// <param name="Step">Steps done (1 after the first step).</param>
/// <param name="TotalSteps">Steps of the whole run.</param>
/// <param name="Loss">Total loss of the step.</param>
/// <param name="ActionLoss">Flow-matching loss of the step.</param>
/// <param name="SpatialLoss">Spatial cross-entropy of the step, null without spatial samples.</param>
/// <param name="VlmLearningRate">VLM group's learning rate used in the step.</param>
/// <param name="ExpertLearningRate">Action expert group's learning rate used in the step.</param>
/// <param name="RestLearningRate">Queries and bridge group's learning rate used in the step.</param>
/// <param name="GradientNorm">Global gradient norm before clipping.</param>
/// <param name="SpatialSamples">Spatial samples in the step's batch.</param>
/// <param name="StepsPerSecond">Steps per second of this process since it started or resumed.</param>
/// <param name="Elapsed">Wall time of this process's part of the run.</param>
public sealed record TrainingProgress(
    int Step, int TotalSteps, double Loss, double? ActionLoss, double? SpatialLoss,
    double VlmLearningRate, double ExpertLearningRate, double RestLearningRate, double GradientNorm,
    int SpatialSamples, double StepsPerSecond, TimeSpan Elapsed);

/// <summary>A resumable checkpoint that was written.</summary>
/// <param name="Step">Steps done when it was saved.</param>
/// <param name="Directory">Its folder: <c>policy/</c> (a policy checkpoint), <c>optimizer.bin</c>, <c>options.json</c>, <c>trainer.json</c> (written last).</param>
public sealed record TrainingCheckpoint(int Step, string Directory)
{
    /// <summary>The policy checkpoint folder inside (loadable with <see cref="VlaPolicy.Load"/>).</summary>
    public string PolicyDirectory => Path.Combine(Directory, "policy");
}

/// <summary>The outcome of a run.</summary>
/// <param name="Policy">The trained policy; the caller disposes it.</param>
/// <param name="StartStep">Step the run started from (0, or the resumed checkpoint's step).</param>
/// <param name="Steps">Steps done at the end (= the options' steps).</param>
/// <param name="Elapsed">Wall time of this process's part of the run.</param>
/// <param name="Final">Metrics of the last step, null when the run resumed at its end.</param>
/// <param name="Checkpoints">Checkpoints written by this process.</param>
public sealed record CoTrainingResult(VlaPolicy Policy, int StartStep, int Steps, TimeSpan Elapsed, TrainingProgress? Final, IReadOnlyList<TrainingCheckpoint> Checkpoints);

/// <summary>
/// The spatially guided co-training loop (ST4VLA post-training) as a library: each step draws one
/// batch of action samples plus spatial questions at the configured ratio, computes the policy's
/// losses, clips the gradient norm and steps AdamW with per-part learning rates on a warm-up +
/// cosine schedule. Deterministic given the options' seed; resumable from its checkpoints with the
/// same result as an uninterrupted run (up to float rounding). Runs on the calling thread.
/// </summary>
public static class CoTrainer
{
    private const string TrainerFile = "trainer.json";
    private const string OptimizerFile = "optimizer.bin";
    private const string OptionsFile = "options.json";
    private const int KeptCheckpoints = 2;

    /// <summary>
    /// A freshly initialised policy for a run: <paramref name="config"/> with the options' mode, gradient
    /// decay and spatial loss weight, weights from the options' seed, the data's normalisation statistics.
    /// </summary>
    public static VlaPolicy CreatePolicy(PolicyConfig config, TrainingData data, CoTrainingOptions options, string device = "cpu", string? tokenizerJson = null) =>
        VlaPolicy.Create(ConfigFor(config, options), new Dictionary<string, NormalizationStats> { [data.Embodiment] = data.Normalization }, options.Seed, device,
            tokenizerJson: tokenizerJson);

    /// <summary>
    /// Trains <paramref name="initial"/> (a base checkpoint or <see cref="CreatePolicy"/>'s result) on
    /// <paramref name="data"/>. With <paramref name="checkpointDirectory"/>, a checkpoint with optimizer
    /// state is written every <see cref="CoTrainingOptions.CheckpointInterval"/> steps and at the end, and a
    /// run finding one there resumes from the latest instead of starting from <paramref name="initial"/>
    /// (its options must be the saved ones). Cancellation is honoured between steps
    /// (<see cref="OperationCanceledException"/>). The returned policy is a new instance unless
    /// <paramref name="initial"/> already had the options' switches and an up-to-date vocabulary (see
    /// <see cref="PolicyTokenizer.GrownToBuiltInWords"/>) and the run did not resume.
    /// <paramref name="atCheckpoint"/>, when given, is called on the training thread with the step and the policy at
    /// every checkpoint step (each <see cref="CoTrainingOptions.CheckpointInterval"/> and the last step), whether or not
    /// a checkpoint directory is given, after the checkpoint is saved; it must not change the weights. It is for
    /// measurements along the run, such as <see cref="ConditionCheck.Measure"/>. A resumed run also calls it once, before
    /// its first step, with the step and policy it resumed from: a process that died between saving a checkpoint and the
    /// callback would otherwise leave that step unmeasured for good, so a caller that logs should skip steps it has.
    /// </summary>
    public static CoTrainingResult Train(
        VlaPolicy initial,
        TrainingData data,
        CoTrainingOptions options,
        string? checkpointDirectory = null,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default,
        Action<int, VlaPolicy>? atCheckpoint = null)
    {
        options.Validate();
        if (options.SpatialPretrainSteps > 0 && data.Spatial.Count == 0)
            throw new ArgumentException("spatial pre-training needs spatial records, and the training data has none");
        if ((options.PointGuidance || initial.Config.PointGuidance) && data.Episodes.Sum(e => e.Length - (e.Guides?.Count(g => g?.Target is not null) ?? 0)) is var unguided and > 0)
            throw new ArgumentException($"a point-guided policy trains on demonstrations whose frames have spatial annotations (the target's point); {unguided} of {data.Frames} frames have none");
        var resume = checkpointDirectory is null ? null : Latest(checkpointDirectory);
        VlaPolicy policy;
        if (resume is not null)
        {
            var saved = CoTrainingOptions.FromJson(File.ReadAllText(Path.Combine(resume.Directory, OptionsFile)));
            if (saved.ToJson() != options.ToJson())
                throw new ArgumentException($"{resume.Directory} was saved with other training options; resume with the same options");
            policy = VlaPolicy.Load(resume.PolicyDirectory, initial.DeviceName, initial.DTypeName);
        }
        else
        {
            policy = WithSwitches(initial, options);
        }
        policy.SetNormalization(data.Embodiment, data.Normalization);

        var checkpoints = new List<TrainingCheckpoint>();
        var startStep = resume?.Step ?? 0;
        var clock = Stopwatch.StartNew();
        TrainingProgress? last = null;
        try
        {
            using var optimizer = policy.CreateOptimizer(options.VlmLearningRate, options.ExpertLearningRate, options.RestLearningRate,
                options.WeightDecay, options.Beta1, options.Beta2);
            var helper = (OptimizerHelper)optimizer;
            if (resume is not null)
            {
                using var reader = new BinaryReader(File.OpenRead(Path.Combine(resume.Directory, OptimizerFile)));
                helper.load_state_dict(reader);
            }
            var groups = optimizer.ParamGroups.ToArray();
            var peaks = new[] { options.VlmLearningRate, options.ExpertLearningRate, options.RestLearningRate };
            var parameters = policy.Parameters().ToArray();
            var sampler = new BatchSampler(data, options, policy.Config.ChunkLength);
            // The checkpoint resumed from may never have been measured (a crash right after its save); the measurement
            // reseeds the global generator, which the first step reseeds anyway.
            if (resume is not null) atCheckpoint?.Invoke(startStep, policy);

            for (var step = startStep; step < options.Steps; step++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var rates = peaks.Select(p => LearningRateSchedule.At(step, p, options)).ToArray();
                for (var g = 0; g < groups.Length; g++) groups[g].LearningRate = rates[g];
                var batch = sampler.Sample(step);

                double total, gradNorm;
                double? action, spatial;
                using (NewDisposeScope())
                {
                    // Noise and flow times come from the global generator: seed it per step so a resumed run draws the same ones.
                    random.manual_seed(BatchSampler.StepSeed(options.Seed, step, 0xf10));
                    optimizer.zero_grad();
                    var loss = policy.ComputeLoss(batch);
                    loss.Total.backward();
                    gradNorm = nn.utils.clip_grad_norm_(parameters, options.GradientClip);
                    optimizer.step();
                    total = loss.Total.item<float>();
                    action = loss.Action?.item<float>();
                    spatial = loss.Spatial?.item<float>();
                }
                if (!double.IsFinite(total)) throw new InvalidOperationException($"the loss became {total} at step {step + 1}; lower the learning rates");

                var done = step + 1;
                var elapsed = clock.Elapsed;
                last = new TrainingProgress(done, options.Steps, total, action, spatial, rates[0], rates[1], rates[2], gradNorm,
                    batch.Spatial.Count, (done - startStep) / Math.Max(elapsed.TotalSeconds, 1e-9), elapsed);
                progress?.Report(last);

                var due = options.CheckpointInterval > 0 && done % options.CheckpointInterval == 0;
                if (checkpointDirectory is not null && (due || done == options.Steps))
                    checkpoints.Add(Save(checkpointDirectory, done, policy, helper, options, last));
                // After the save, so a measurement that fails does not lose the checkpoint. Measurements reseed the
                // global generator, which the next step reseeds anyway: the run's result does not change.
                if (due || done == options.Steps) atCheckpoint?.Invoke(done, policy);
            }
        }
        catch
        {
            if (!ReferenceEquals(policy, initial)) policy.Dispose();
            throw;
        }
        return new CoTrainingResult(policy, startStep, options.Steps, clock.Elapsed, last, checkpoints);
    }

    /// <summary>The latest complete checkpoint in <paramref name="checkpointDirectory"/>, or null.</summary>
    public static TrainingCheckpoint? Latest(string checkpointDirectory)
    {
        if (!Directory.Exists(checkpointDirectory)) return null;
        return Directory.EnumerateDirectories(checkpointDirectory, "step-*")
            .Where(d => File.Exists(Path.Combine(d, TrainerFile)))
            .Select(d => int.TryParse(Path.GetFileName(d)["step-".Length..], out var s) ? new TrainingCheckpoint(s, d) : null)
            .OfType<TrainingCheckpoint>()
            .MaxBy(c => c.Step);
    }

    /// <summary>
    /// The config a run's options call for: mode, gradient decay and spatial loss weight applied, point guidance added
    /// when asked for (never removed: that would drop trained weights).
    /// </summary>
    public static PolicyConfig ConfigFor(PolicyConfig config, CoTrainingOptions options) => config with
    {
        Vanilla = options.Mode == TrainingMode.Vanilla,
        GradientDecay = options.GradientDecay,
        SpatialLossWeight = options.SpatialLossWeight,
        PointGuidance = config.PointGuidance || options.PointGuidance,
    };

    /// <summary>
    /// The policy itself when its switches and vocabulary are current, else a copy with the options' switches, the
    /// current built-in word list (for a base saved with an older one) and the same weights. Parts the switches add
    /// (the point token) and the rows of words the base never had start from the options' seed.
    /// </summary>
    private static VlaPolicy WithSwitches(VlaPolicy initial, CoTrainingOptions options)
    {
        // Otherwise the base's own tokenizer, not the built-in one: a BPE or custom word list keeps the ids it was trained with.
        // Only the ST4VLA family has a growing word list; an InternVLA-M1 policy keeps Qwen's tokenizer as it is.
        var words = initial.Config.ModelFamily == PolicyFamily.St4Vla;
        var grown = words ? initial.Tokenizer.GrownToBuiltInWords() : null;
        var config = ConfigFor(initial.Config, options);
        if (words) config = config with { TextVocabSize = (grown ?? initial.Tokenizer).TextVocabSize };
        if (config == initial.Config) return initial;
        var copy = VlaPolicy.Create(config, initial.Normalization, options.Seed, initial.DeviceName, initial.DTypeName,
            grown?.Json ?? initial.TokenizerJson);
        using var rows = grown is null ? null : tensor(initial.Tokenizer.IdsIn(grown).Select(i => (long)i).ToArray(), device: copy.Device);
        var weights = initial.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        using (no_grad())
        {
            foreach (var (name, to) in copy.NamedParameters())
            {
                if (!weights.TryGetValue(name, out var from)) continue;
                // The token embedding (tied to the output head) is the one tensor with a row per token.
                if (rows is not null && from.shape[0] == initial.Config.VocabSize && to.shape[0] == config.VocabSize) to.index_copy_(0, rows, from);
                else to.copy_(from);
            }
        }
        copy.WeightsChanged(); // nothing can have sampled the copy yet; called so every write into weights is followed by it
        return copy;
    }

    private static TrainingCheckpoint Save(string root, int step, VlaPolicy policy, OptimizerHelper optimizer, CoTrainingOptions options, TrainingProgress metrics)
    {
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"step-{step:D8}");
        var temp = Path.Combine(root, $".tmp-step-{step:D8}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        policy.Save(Path.Combine(temp, "policy"));
        using (var writer = new BinaryWriter(File.Create(Path.Combine(temp, OptimizerFile)))) optimizer.save_state_dict(writer);
        File.WriteAllText(Path.Combine(temp, OptionsFile), options.ToJson());
        // trainer.json last: its presence marks a complete checkpoint.
        File.WriteAllText(Path.Combine(temp, TrainerFile), JsonSerializer.Serialize(new { step, metrics }, CoTrainingOptions.JsonOptions));
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(temp, final);
        foreach (var old in Directory.EnumerateDirectories(root, "step-*").Order(StringComparer.Ordinal).SkipLast(KeptCheckpoints))
            Directory.Delete(old, recursive: true);
        return new TrainingCheckpoint(step, final);
    }
}
