using System.Text.Json;
using System.Text.Json.Serialization;
using VlaCloud.Policy;

namespace VlaCloud.Training;

/// <summary>Which recipe a run follows.</summary>
public enum TrainingMode
{
    /// <summary>Spatially guided: action batches co-trained with spatial grounding, spatial prompt on, gradient decay into the VLM.</summary>
    St4Vla,
    /// <summary>The paper's baseline: action loss only, no spatial data, no spatial prompt.</summary>
    Vanilla,
}

/// <summary>
/// Hyperparameters of one co-training run. The defaults are the paper's post-training recipe
/// (REFERENCES.md) except the step counts and learning rates, which are sized for the tiny config on a CPU.
/// Everything here is plain data: it is saved with every training checkpoint, and a resumed run
/// must pass the same values.
/// </summary>
public sealed record CoTrainingOptions
{
    /// <summary>Optimizer steps of the whole run (a resumed run ends at the same step).</summary>
    public int Steps { get; init; } = 1000;
    /// <summary>Action samples per step.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Peak learning rate of the VLM (ViT + decoder). Paper: 1e-5 (at 3 B parameters).</summary>
    public double VlmLearningRate { get; init; } = 3e-4;
    /// <summary>Peak learning rate of the action expert. Paper: 1e-4.</summary>
    public double ExpertLearningRate { get; init; } = 1e-3;
    /// <summary>Peak learning rate of the latent queries and the bridge. Paper: 5e-5.</summary>
    public double RestLearningRate { get; init; } = 5e-4;
    /// <summary>Learning rate at the end of the cosine (never above a group's peak). Paper: 5e-7.</summary>
    public double MinLearningRate { get; init; } = 1e-5;
    /// <summary>Steps of linear warm-up from 0 to the peak rates.</summary>
    public int WarmupSteps { get; init; } = 50;
    /// <summary>AdamW weight decay. Paper: 1e-8.</summary>
    public double WeightDecay { get; init; } = 1e-8;
    /// <summary>AdamW β1. Paper: 0.9.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>AdamW β2. Paper: 0.95.</summary>
    public double Beta2 { get; init; } = 0.95;
    /// <summary>Global gradient-norm clip. Paper: 1.0.</summary>
    public double GradientClip { get; init; } = 1.0;
    /// <summary>
    /// Spatial samples per action sample in each step (st4vla only). 1.0 is the paper's loop: one
    /// spatial batch per action batch. Fractions are spread exactly over steps.
    /// </summary>
    public double SpatialRatio { get; init; } = 1.0;
    /// <summary>
    /// Steps at the start of the run that train spatial grounding alone (st4vla only), each on
    /// <see cref="BatchSize"/> spatial questions and no action samples: the paper's stage 1, spatial
    /// grounding pre-training of the VLM, before spatially guided action post-training. They count in
    /// <see cref="Steps"/> and share its learning-rate schedule. Paper: a separate run on 3 M samples.
    /// </summary>
    public int SpatialPretrainSteps { get; init; }
    /// <summary>
    /// Kinds of spatial question a batch draws from, uniformly (st4vla only). Default: all three, like the paper's
    /// grounding data. Points alone are the cheapest (3 answer tokens, against up to 17 for a trajectory), and with
    /// them the tiny VLM learned to find the objects in new scenes (README, experiment).
    /// </summary>
    public IReadOnlyList<SpatialKind> SpatialKinds { get; init; } = [SpatialKind.Point, SpatialKind.Box, SpatialKind.Trajectory];
    /// <summary>Factor on the action loss's gradient into the VLM (identity forward). Paper: 0.5.</summary>
    public double GradientDecay { get; init; } = 0.5;
    /// <summary>Weight of the spatial cross-entropy in the total loss. Paper: 0.1.</summary>
    public double SpatialLossWeight { get; init; } = 0.1;
    /// <summary>
    /// Whether instructions carry the spatial prompt in action training. The policy ties it to the
    /// mode (st4vla: on, vanilla: off); <see cref="Validate"/> refuses other combinations.
    /// </summary>
    public bool SpatialPrompt { get; init; } = true;
    /// <summary>Fixes the initial weights (fresh policies), the data order, the noise and the flow times.</summary>
    public long Seed { get; init; }
    /// <summary>Save a resumable checkpoint every this many steps (0: only at the end).</summary>
    public int CheckpointInterval { get; init; } = 500;
    /// <summary>st4vla or vanilla.</summary>
    public TrainingMode Mode { get; init; } = TrainingMode.St4Vla;
    /// <summary>
    /// Gives the policy <see cref="PolicyConfig.PointGuidance"/> (a base without it gets a fresh point token; one with it
    /// keeps it either way). Its action samples are then teacher-forced with the demonstrations' labelled target and
    /// destination, so every demonstration frame needs a spatial annotation. st4vla only.
    /// </summary>
    public bool PointGuidance { get; init; }

    /// <summary>The vanilla baseline's options: no spatial data, no prompt.</summary>
    public CoTrainingOptions AsVanilla() => this with { Mode = TrainingMode.Vanilla, SpatialPrompt = false, SpatialRatio = 0, SpatialPretrainSteps = 0 };

    /// <summary>Whether step <paramref name="step"/> (0-based) belongs to spatial grounding pre-training.</summary>
    public bool IsSpatialPretraining(int step) => Mode == TrainingMode.St4Vla && step < SpatialPretrainSteps;

    /// <summary>Action samples drawn at step <paramref name="step"/> (0-based): none during spatial pre-training.</summary>
    public int ActionSamplesAt(int step) => IsSpatialPretraining(step) ? 0 : BatchSize;

    /// <summary>
    /// Spatial samples drawn at step <paramref name="step"/> (0-based): <see cref="BatchSize"/> during spatial
    /// pre-training, then the ratio spread exactly over the co-training steps.
    /// </summary>
    public int SpatialSamplesAt(int step)
    {
        if (IsSpatialPretraining(step)) return BatchSize;
        if (Mode == TrainingMode.Vanilla || SpatialRatio <= 0) return 0;
        var perStep = SpatialRatio * BatchSize;
        return (int)(Math.Floor((step + 1) * perStep + 1e-9) - Math.Floor(step * perStep + 1e-9));
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first bad field.</summary>
    public void Validate()
    {
        if (Steps < 1) throw new ArgumentException("Steps must be at least 1");
        if (BatchSize < 1) throw new ArgumentException("BatchSize must be at least 1");
        if (WarmupSteps < 0) throw new ArgumentException("WarmupSteps must not be negative");
        if (CheckpointInterval < 0) throw new ArgumentException("CheckpointInterval must not be negative");
        if (VlmLearningRate < 0 || ExpertLearningRate < 0 || RestLearningRate < 0 || MinLearningRate < 0)
            throw new ArgumentException("learning rates must not be negative");
        if (SpatialRatio < 0) throw new ArgumentException("SpatialRatio must not be negative");
        if (SpatialPretrainSteps < 0 || SpatialPretrainSteps >= Steps) throw new ArgumentException("SpatialPretrainSteps must be within [0, Steps)");
        if (SpatialPretrainSteps > 0 && Mode == TrainingMode.Vanilla) throw new ArgumentException("vanilla mode has no spatial data; set SpatialPretrainSteps = 0");
        if (SpatialKinds is null || SpatialKinds.Count == 0 || SpatialKinds.Distinct().Count() != SpatialKinds.Count || SpatialKinds.Any(k => !Enum.IsDefined(k)))
            throw new ArgumentException($"SpatialKinds must name {string.Join(", ", SpatialPrompts.WireNames)}, each at most once");
        if (PointGuidance && Mode == TrainingMode.Vanilla) throw new ArgumentException("point guidance reads System 2's spatial answers; vanilla mode trains none");
        if (GradientDecay is < 0 or > 1) throw new ArgumentException("GradientDecay must be within [0, 1]");
        if (GradientClip <= 0) throw new ArgumentException("GradientClip must be positive");
        if (SpatialPrompt != (Mode == TrainingMode.St4Vla))
            throw new ArgumentException(Mode == TrainingMode.St4Vla
                ? "the policy appends the spatial prompt in st4vla mode; SpatialPrompt = false is not supported there"
                : "vanilla mode has no spatial prompt; set SpatialPrompt = false");
    }

    /// <summary>JSON as saved in training checkpoints.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads <see cref="ToJson"/>'s output.</summary>
    public static CoTrainingOptions FromJson(string json) =>
        JsonSerializer.Deserialize<CoTrainingOptions>(json, JsonOptions) ?? throw new InvalidDataException("training options are empty");

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };
}

/// <summary>Linear warm-up to each group's peak, then a cosine down to the minimum at the last step.</summary>
public static class LearningRateSchedule
{
    /// <summary>The learning rate at step <paramref name="step"/> (0-based) for a group whose peak is <paramref name="peak"/>.</summary>
    public static double At(int step, double peak, CoTrainingOptions options)
    {
        var floor = Math.Min(options.MinLearningRate, peak);
        if (step < options.WarmupSteps) return peak * (step + 1) / options.WarmupSteps;
        var decaySteps = Math.Max(1, options.Steps - options.WarmupSteps - 1);
        var progress = Math.Clamp((double)(step - options.WarmupSteps) / decaySteps, 0, 1);
        return floor + (peak - floor) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
