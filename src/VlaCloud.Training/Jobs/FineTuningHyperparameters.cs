using System.Text.Json;
using System.Text.Json.Serialization;
using VlaCloud.Contracts;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// The training side of a job's hyperparameters (the record is the API contract,
/// <see cref="FineTuningHyperparameters"/>): validation, defaults, and the stored form. A job stores them with every
/// default filled in, so a retried run trains with exactly the options of the first.
/// </summary>
public static class FineTuningHyperparametersTraining
{
    /// <summary>The largest step count a job may ask for.</summary>
    public const int MaxSteps = 1_000_000;

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    extension(FineTuningHyperparameters h)
    {
        /// <summary>The co-training options these ask for, defaults filled in; the errors per field when they are invalid.</summary>
        public CoTrainingOptions ToOptions(out Dictionary<string, string[]> errors)
        {
            errors = [];
            var mode = h.Mode?.ToLowerInvariant() switch
            {
                null or "st4vla" => TrainingMode.St4Vla,
                "vanilla" => TrainingMode.Vanilla,
                _ => (TrainingMode?)null,
            };
            if (mode is null) errors["hyperparameters.mode"] = ["mode must be st4vla or vanilla."];
            var defaults = new CoTrainingOptions();
            var steps = h.Steps ?? 100;
            if (steps is < 1 or > MaxSteps) errors["hyperparameters.steps"] = [$"steps must be between 1 and {MaxSteps}."];
            if (h.BatchSize is < 1 or > 1024) errors["hyperparameters.batch_size"] = ["batch_size must be between 1 and 1024."];
            if (h.LearningRate is not null && !(h.LearningRate > 0 && h.LearningRate < 1)) errors["hyperparameters.learning_rate"] = ["learning_rate must be in (0, 1)."];
            if (h.WarmupSteps is < 0) errors["hyperparameters.warmup_steps"] = ["warmup_steps must not be negative."];
            if (h.SpatialRatio is not null && !(h.SpatialRatio >= 0 && h.SpatialRatio <= 16)) errors["hyperparameters.spatial_ratio"] = ["spatial_ratio must be between 0 and 16."];
            if (h.GradientDecay is not null && !(h.GradientDecay >= 0 && h.GradientDecay <= 1)) errors["hyperparameters.gradient_decay"] = ["gradient_decay must be within [0, 1]."];
            if (h.CheckpointInterval is < 0) errors["hyperparameters.checkpoint_interval"] = ["checkpoint_interval must not be negative."];
            var vanilla = mode == TrainingMode.Vanilla;
            if (h.SpatialPrompt is { } prompt && prompt == vanilla)
                errors["hyperparameters.spatial_prompt"] = [vanilla ? "vanilla mode has no spatial prompt." : "st4vla mode always uses the spatial prompt."];
            var expert = h.LearningRate ?? defaults.ExpertLearningRate;
            var options = new CoTrainingOptions
            {
                Steps = steps,
                BatchSize = h.BatchSize ?? 8,
                ExpertLearningRate = expert,
                VlmLearningRate = expert * 0.3,
                RestLearningRate = expert * 0.5,
                WarmupSteps = Math.Min(h.WarmupSteps ?? Math.Min(defaults.WarmupSteps, steps / 10), steps),
                SpatialRatio = vanilla ? 0 : h.SpatialRatio ?? defaults.SpatialRatio,
                GradientDecay = h.GradientDecay ?? defaults.GradientDecay,
                SpatialPrompt = !vanilla,
                Seed = h.Seed ?? 0,
                CheckpointInterval = h.CheckpointInterval ?? Math.Max(1, Math.Min(500, steps / 4)),
                Mode = mode ?? TrainingMode.St4Vla,
            };
            return options;
        }

        /// <summary>JSON of the stored form.</summary>
        public string ToJson() => JsonSerializer.Serialize(h, Json);
    }

    extension(FineTuningHyperparameters)
    {
        /// <summary>The stored form: every field set, as the job will train.</summary>
        public static FineTuningHyperparameters From(CoTrainingOptions o) => new()
        {
            Steps = o.Steps, BatchSize = o.BatchSize, LearningRate = o.ExpertLearningRate, WarmupSteps = o.WarmupSteps,
            SpatialRatio = o.SpatialRatio, GradientDecay = o.GradientDecay, SpatialPrompt = o.SpatialPrompt, Seed = o.Seed,
            CheckpointInterval = o.CheckpointInterval, Mode = o.Mode == TrainingMode.Vanilla ? "vanilla" : "st4vla",
        };

        /// <summary>Reads <c>ToJson</c>'s output.</summary>
        public static FineTuningHyperparameters FromJson(string json) =>
            JsonSerializer.Deserialize<FineTuningHyperparameters>(json, Json) ?? throw new InvalidDataException("hyperparameters are empty");
    }
}
