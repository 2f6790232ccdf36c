using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Training.Jobs;

/// <summary>
/// What a fine-tuning job persists of its training options (the job row's <c>hyperparameters</c> column): every default
/// filled in, so a retried run trains with exactly the options of the first. Training owns this form, with its own JSON
/// names and a version, so the public REST record (<c>VlaCloud.Contracts.FineTuningHyperparameters</c>) can change
/// without breaking queued jobs; the API maps the request to <see cref="RequestedTrainingOptions"/> and resolves it here.
/// </summary>
public sealed record FineTuningJobSpec
{
    /// <summary>The version this code writes. Rows without a version are the form written before the spec existed.</summary>
    public const int CurrentVersion = 1;

    /// <summary>The largest step count a job may ask for.</summary>
    public const int MaxSteps = 1_000_000;

    /// <summary>Version of the stored form.</summary>
    [JsonPropertyName("version")] public int Version { get; init; } = CurrentVersion;
    /// <summary>Optimizer steps.</summary>
    [JsonPropertyName("steps")] public required int Steps { get; init; }
    /// <summary>Action samples per step.</summary>
    [JsonPropertyName("batch_size")] public required int BatchSize { get; init; }
    /// <summary>Peak learning rate of the action expert; the VLM and the bridge get fixed ratios of it.</summary>
    [JsonPropertyName("learning_rate")] public required double LearningRate { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    [JsonPropertyName("warmup_steps")] public required int WarmupSteps { get; init; }
    /// <summary>Spatial samples per action sample (0 in vanilla mode).</summary>
    [JsonPropertyName("spatial_ratio")] public required double SpatialRatio { get; init; }
    /// <summary>Factor on the action loss's gradient into the VLM.</summary>
    [JsonPropertyName("gradient_decay")] public required double GradientDecay { get; init; }
    /// <summary>Spatial prompt on instructions.</summary>
    [JsonPropertyName("spatial_prompt")] public required bool SpatialPrompt { get; init; }
    /// <summary>Seed of data order, noise and flow times.</summary>
    [JsonPropertyName("seed")] public required long Seed { get; init; }
    /// <summary>A resumable training state is saved every this many steps.</summary>
    [JsonPropertyName("checkpoint_interval")] public required int CheckpointInterval { get; init; }
    /// <summary>The training mode.</summary>
    [JsonPropertyName("mode"), JsonConverter(typeof(ModeConverter))] public required TrainingMode Mode { get; init; }

    /// <summary>
    /// The spec <paramref name="requested"/> resolves to, defaults filled in; the errors per field (keyed by the option's
    /// snake_case name) when it is invalid, and then the spec is not usable.
    /// </summary>
    public static FineTuningJobSpec Resolve(RequestedTrainingOptions requested, out Dictionary<string, string[]> errors)
    {
        var h = requested;
        errors = [];
        var mode = h.Mode?.ToLowerInvariant() switch
        {
            null or "st4vla" => TrainingMode.St4Vla,
            "vanilla" => TrainingMode.Vanilla,
            _ => (TrainingMode?)null,
        };
        if (mode is null) errors["mode"] = ["mode must be st4vla or vanilla."];
        var defaults = new CoTrainingOptions();
        var steps = h.Steps ?? 100;
        if (steps is < 1 or > MaxSteps) errors["steps"] = [$"steps must be between 1 and {MaxSteps}."];
        if (h.BatchSize is < 1 or > 1024) errors["batch_size"] = ["batch_size must be between 1 and 1024."];
        if (h.LearningRate is not null && !(h.LearningRate > 0 && h.LearningRate < 1)) errors["learning_rate"] = ["learning_rate must be in (0, 1)."];
        if (h.WarmupSteps is < 0) errors["warmup_steps"] = ["warmup_steps must not be negative."];
        if (h.SpatialRatio is not null && !(h.SpatialRatio >= 0 && h.SpatialRatio <= 16)) errors["spatial_ratio"] = ["spatial_ratio must be between 0 and 16."];
        if (h.GradientDecay is not null && !(h.GradientDecay >= 0 && h.GradientDecay <= 1)) errors["gradient_decay"] = ["gradient_decay must be within [0, 1]."];
        if (h.CheckpointInterval is < 0) errors["checkpoint_interval"] = ["checkpoint_interval must not be negative."];
        var vanilla = mode == TrainingMode.Vanilla;
        if (h.SpatialPrompt is { } prompt && prompt == vanilla)
            errors["spatial_prompt"] = [vanilla ? "vanilla mode has no spatial prompt." : "st4vla mode always uses the spatial prompt."];
        return new FineTuningJobSpec
        {
            Steps = steps,
            BatchSize = h.BatchSize ?? 8,
            LearningRate = h.LearningRate ?? defaults.ExpertLearningRate,
            WarmupSteps = Math.Min(h.WarmupSteps ?? Math.Min(defaults.WarmupSteps, steps / 10), steps),
            SpatialRatio = vanilla ? 0 : h.SpatialRatio ?? defaults.SpatialRatio,
            GradientDecay = h.GradientDecay ?? defaults.GradientDecay,
            SpatialPrompt = !vanilla,
            Seed = h.Seed ?? 0,
            CheckpointInterval = h.CheckpointInterval ?? Math.Max(1, Math.Min(500, steps / 4)),
            Mode = mode ?? TrainingMode.St4Vla,
        };
    }

    /// <summary>The co-training options the job trains with.</summary>
    public CoTrainingOptions ToOptions() => new()
    {
        Steps = Steps,
        BatchSize = BatchSize,
        ExpertLearningRate = LearningRate,
        VlmLearningRate = LearningRate * 0.3,
        RestLearningRate = LearningRate * 0.5,
        WarmupSteps = WarmupSteps,
        SpatialRatio = SpatialRatio,
        GradientDecay = GradientDecay,
        SpatialPrompt = SpatialPrompt,
        Seed = Seed,
        CheckpointInterval = CheckpointInterval,
        Mode = Mode,
    };

    /// <summary>The stored form.</summary>
    public string ToJson() => JsonSerializer.Serialize(this);

    /// <summary>
    /// Reads a job row's stored form: <see cref="ToJson"/>'s, or the unversioned one jobs stored before (the public
    /// request record with its defaults filled in), which resolves exactly as it did then.
    /// </summary>
    public static FineTuningJobSpec FromJson(string json)
    {
        using var document = JsonDocument.Parse(json);
        if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException("the stored hyperparameters are not a JSON object");
        if (!document.RootElement.TryGetProperty("version", out var version))
        {
            var legacy = document.RootElement.Deserialize<LegacyStoredHyperparameters>() ?? throw new InvalidDataException("the stored hyperparameters are empty");
            var spec = Resolve(legacy.ToRequested(), out var errors);
            if (errors.Count > 0) throw new InvalidDataException($"the stored hyperparameters are invalid: {string.Join(" ", errors.Values.SelectMany(e => e))}");
            return spec;
        }
        if (!version.TryGetInt32(out var number) || number != CurrentVersion)
            throw new InvalidDataException($"the stored hyperparameters are of version {version}; this trainer reads version {CurrentVersion} (a newer server wrote them).");
        return document.RootElement.Deserialize<FineTuningJobSpec>() ?? throw new InvalidDataException("the stored hyperparameters are empty");
    }

    /// <summary>The stored names of the modes, spelled out so renaming an enum member cannot change them.</summary>
    private sealed class ModeConverter : JsonConverter<TrainingMode>
    {
        public override TrainingMode Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString() switch
        {
            "st4vla" => TrainingMode.St4Vla,
            "vanilla" => TrainingMode.Vanilla,
            var other => throw new JsonException($"unknown training mode '{other}'"),
        };

        public override void Write(Utf8JsonWriter writer, TrainingMode value, JsonSerializerOptions options) => writer.WriteStringValue(value switch
        {
            TrainingMode.St4Vla => "st4vla",
            TrainingMode.Vanilla => "vanilla",
            _ => throw new JsonException($"training mode {value} has no stored name"),
        });
    }

    /// <summary>
    /// The form rows had before the spec was versioned: <c>VlaCloud.Contracts.FineTuningHyperparameters</c> serialised
    /// without a naming policy, so the properties without a JSON name kept their C# name. Frozen here so a change to the
    /// public record cannot change how those rows read.
    /// </summary>
    private sealed record LegacyStoredHyperparameters(
        [property: JsonPropertyName("Steps")] int? Steps,
        [property: JsonPropertyName("batch_size")] int? BatchSize,
        [property: JsonPropertyName("learning_rate")] double? LearningRate,
        [property: JsonPropertyName("warmup_steps")] int? WarmupSteps,
        [property: JsonPropertyName("spatial_ratio")] double? SpatialRatio,
        [property: JsonPropertyName("gradient_decay")] double? GradientDecay,
        [property: JsonPropertyName("spatial_prompt")] bool? SpatialPrompt,
        [property: JsonPropertyName("Seed")] long? Seed,
        [property: JsonPropertyName("checkpoint_interval")] int? CheckpointInterval,
        [property: JsonPropertyName("Mode")] string? Mode)
    {
        public RequestedTrainingOptions ToRequested() => new()
        {
            Steps = Steps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupSteps = WarmupSteps, SpatialRatio = SpatialRatio,
            GradientDecay = GradientDecay, SpatialPrompt = SpatialPrompt, Seed = Seed, CheckpointInterval = CheckpointInterval, Mode = Mode,
        };
    }
}

/// <summary>
/// Training options as a client asked for them, each optional (omitted ones get defaults); what the API maps a create
/// request's <c>hyperparameters</c> to before <see cref="FineTuningJobSpec.Resolve"/>. Never stored.
/// </summary>
public sealed record RequestedTrainingOptions
{
    /// <summary>Optimizer steps (default 100).</summary>
    public int? Steps { get; init; }
    /// <summary>Action samples per step (default 8).</summary>
    public int? BatchSize { get; init; }
    /// <summary>Peak learning rate of the action expert.</summary>
    public double? LearningRate { get; init; }
    /// <summary>Linear warm-up steps.</summary>
    public int? WarmupSteps { get; init; }
    /// <summary>Spatial samples per action sample (st4vla).</summary>
    public double? SpatialRatio { get; init; }
    /// <summary>Factor on the action loss's gradient into the VLM.</summary>
    public double? GradientDecay { get; init; }
    /// <summary>Spatial prompt on instructions; must agree with the mode.</summary>
    public bool? SpatialPrompt { get; init; }
    /// <summary>Seed of data order, noise and flow times (default 0).</summary>
    public long? Seed { get; init; }
    /// <summary>Save a resumable training state every this many steps.</summary>
    public int? CheckpointInterval { get; init; }
    /// <summary><c>st4vla</c> or <c>vanilla</c>, case-insensitive (default st4vla).</summary>
    public string? Mode { get; init; }
}
