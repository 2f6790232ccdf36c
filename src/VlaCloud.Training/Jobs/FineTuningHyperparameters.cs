using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// A fine-tuning job's hyperparameters as the API takes them (snake_case JSON, all optional). A job stores them
/// with every default filled in, so a retried run trains with exactly the options of the first.
/// </summary>
public sealed record FineTuningHyperparameters
{
    /// <summary>Optimizer steps.</summary>
    public int? Steps { get; init; }
    /// <summary>Action samples per step.</summary>
    [JsonPropertyName("batch_size")] public int? BatchSize { get; init; }
    /// <summary>Peak learning rate of the action expert; the VLM and the bridge get the recipe's ratios of it (0.3×, 0.5×).</summary>
    [JsonPropertyName("learning_rate")] public double? LearningRate { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    [JsonPropertyName("warmup_steps")] public int? WarmupSteps { get; init; }
    /// <summary>Spatial samples per action sample (st4vla).</summary>
    [JsonPropertyName("spatial_ratio")] public double? SpatialRatio { get; init; }
    /// <summary>Factor on the action loss's gradient into the VLM.</summary>
    [JsonPropertyName("gradient_decay")] public double? GradientDecay { get; init; }
    /// <summary>Spatial prompt on instructions (must match the mode: on for st4vla, off for vanilla).</summary>
    [JsonPropertyName("spatial_prompt")] public bool? SpatialPrompt { get; init; }
    /// <summary>Seed of data order, noise and flow times.</summary>
    public long? Seed { get; init; }
    /// <summary>Save a resumable training state every this many steps.</summary>
    [JsonPropertyName("checkpoint_interval")] public int? CheckpointInterval { get; init; }
    /// <summary><c>st4vla</c> or <c>vanilla</c>.</summary>
    public string? Mode { get; init; }

    /// <summary>The largest step count a job may ask for.</summary>
    public const int MaxSteps = 1_000_000;

    /// <summary>The co-training options these ask for, defaults filled in; the errors per field when they are invalid.</summary>
    public CoTrainingOptions ToOptions(out Dictionary<string, string[]> errors)
    {
        errors = [];
        var mode = Mode?.ToLowerInvariant() switch
        {
            null or "st4vla" => TrainingMode.St4Vla,
            "vanilla" => TrainingMode.Vanilla,
            _ => (TrainingMode?)null,
        };
        if (mode is null) errors["hyperparameters.mode"] = ["mode must be st4vla or vanilla."];
        var defaults = new CoTrainingOptions();
        var steps = Steps ?? 100;
        if (steps is < 1 or > MaxSteps) errors["hyperparameters.steps"] = [$"steps must be between 1 and {MaxSteps}."];
        if (BatchSize is < 1 or > 1024) errors["hyperparameters.batch_size"] = ["batch_size must be between 1 and 1024."];
        if (LearningRate is not null && !(LearningRate > 0 && LearningRate < 1)) errors["hyperparameters.learning_rate"] = ["learning_rate must be in (0, 1)."];
        if (WarmupSteps is < 0) errors["hyperparameters.warmup_steps"] = ["warmup_steps must not be negative."];
        if (SpatialRatio is not null && !(SpatialRatio >= 0 && SpatialRatio <= 16)) errors["hyperparameters.spatial_ratio"] = ["spatial_ratio must be between 0 and 16."];
        if (GradientDecay is not null && !(GradientDecay >= 0 && GradientDecay <= 1)) errors["hyperparameters.gradient_decay"] = ["gradient_decay must be within [0, 1]."];
        if (CheckpointInterval is < 0) errors["hyperparameters.checkpoint_interval"] = ["checkpoint_interval must not be negative."];
        var vanilla = mode == TrainingMode.Vanilla;
        if (SpatialPrompt is { } prompt && prompt == vanilla)
            errors["hyperparameters.spatial_prompt"] = [vanilla ? "vanilla mode has no spatial prompt." : "st4vla mode always uses the spatial prompt."];
        var expert = LearningRate ?? defaults.ExpertLearningRate;
        var options = new CoTrainingOptions
        {
            Steps = steps,
            BatchSize = BatchSize ?? 8,
            ExpertLearningRate = expert,
            VlmLearningRate = expert * 0.3,
            RestLearningRate = expert * 0.5,
            WarmupSteps = Math.Min(WarmupSteps ?? Math.Min(defaults.WarmupSteps, steps / 10), steps),
            SpatialRatio = vanilla ? 0 : SpatialRatio ?? defaults.SpatialRatio,
            GradientDecay = GradientDecay ?? defaults.GradientDecay,
            SpatialPrompt = !vanilla,
            Seed = Seed ?? 0,
            CheckpointInterval = CheckpointInterval ?? Math.Max(1, Math.Min(500, steps / 4)),
            Mode = mode ?? TrainingMode.St4Vla,
        };
        return options;
    }

    /// <summary>The stored form: every field set, as the job will train.</summary>
    public static FineTuningHyperparameters From(CoTrainingOptions o) => new()
    {
        Steps = o.Steps, BatchSize = o.BatchSize, LearningRate = o.ExpertLearningRate, WarmupSteps = o.WarmupSteps,
        SpatialRatio = o.SpatialRatio, GradientDecay = o.GradientDecay, SpatialPrompt = o.SpatialPrompt, Seed = o.Seed,
        CheckpointInterval = o.CheckpointInterval, Mode = o.Mode == TrainingMode.Vanilla ? "vanilla" : "st4vla",
    };

    /// <summary>JSON of the stored form.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>Reads <see cref="ToJson"/>'s output.</summary>
    public static FineTuningHyperparameters FromJson(string json) =>
        JsonSerializer.Deserialize<FineTuningHyperparameters>(json, Json) ?? throw new InvalidDataException("hyperparameters are empty");

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
}
