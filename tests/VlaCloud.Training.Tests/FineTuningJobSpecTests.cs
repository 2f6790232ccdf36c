using System.Text.Json.Nodes;
using VlaCloud.Training.Jobs;

namespace VlaCloud.Training.Tests;

/// <summary>
/// The job spec a fine-tuning job persists: its stored form is Training's own (fixed names, a version), and rows stored
/// before it existed (the public request record, serialised) still read as they trained.
/// </summary>
public sealed class FineTuningJobSpecTests
{
    // What jobs stored before the spec: Contracts.FineTuningHyperparameters with defaults filled in, serialised without a
    // naming policy (Steps, Seed and Mode had no JSON names).
    private const string LegacyRow =
        """{"Steps":6,"batch_size":2,"learning_rate":0.002,"warmup_steps":1,"spatial_ratio":0.5,"gradient_decay":0.25,"spatial_prompt":true,"Seed":7,"checkpoint_interval":3,"Mode":"st4vla"}""";

    private static readonly RequestedTrainingOptions LegacyRowAsRequested = new()
    {
        Steps = 6, BatchSize = 2, LearningRate = 0.002, WarmupSteps = 1, SpatialRatio = 0.5, GradientDecay = 0.25, SpatialPrompt = true, Seed = 7,
        CheckpointInterval = 3, Mode = "st4vla",
    };

    [Fact]
    public void The_stored_form_has_the_specs_own_literal_keys_and_a_version_whatever_the_rest_record_calls_them()
    {
        var spec = FineTuningJobSpec.Resolve(LegacyRowAsRequested, out var errors);

        Assert.Empty(errors);
        Assert.Equal(
            """{"version":1,"steps":6,"batch_size":2,"learning_rate":0.002,"warmup_steps":1,"spatial_ratio":0.5,"gradient_decay":0.25,"spatial_prompt":true,"seed":7,"checkpoint_interval":3,"mode":"st4vla"}""",
            spec.ToJson());
        // The record behind the stored form is Training's: no property of it is typed by the public contracts.
        Assert.DoesNotContain(typeof(FineTuningJobSpec).GetProperties(), p => p.PropertyType.Assembly.GetName().Name == "VlaCloud.Contracts");
        Assert.Equal(spec, FineTuningJobSpec.FromJson(spec.ToJson()));
    }

    [Fact]
    public void A_row_stored_in_the_old_unversioned_form_reads_as_the_options_it_was_created_with()
    {
        var read = FineTuningJobSpec.FromJson(LegacyRow);
        var created = FineTuningJobSpec.Resolve(LegacyRowAsRequested, out _);

        Assert.Equal(created, read);
        Assert.Equal(created.ToOptions().ToJson(), read.ToOptions().ToJson());
        Assert.Equal(6, read.Steps);
        Assert.Equal(7, read.Seed);
        Assert.Equal(TrainingMode.St4Vla, read.Mode);
        // Rewritten, it takes the current form.
        Assert.Equal(FineTuningJobSpec.CurrentVersion, (int)JsonNode.Parse(read.ToJson())!["version"]!);
    }

    [Fact]
    public void An_old_vanilla_row_and_an_old_empty_row_read_as_they_resolved_then()
    {
        var vanilla = FineTuningJobSpec.FromJson("""{"Steps":4,"spatial_ratio":0,"spatial_prompt":false,"Mode":"vanilla"}""");
        Assert.Equal(TrainingMode.Vanilla, vanilla.Mode);
        Assert.False(vanilla.ToOptions().SpatialPrompt);
        Assert.Equal(0, vanilla.ToOptions().SpatialRatio);

        var empty = FineTuningJobSpec.FromJson("{}");
        Assert.Equal(FineTuningJobSpec.Resolve(new RequestedTrainingOptions(), out _), empty);
        Assert.Equal(100, empty.Steps);
    }

    [Fact]
    public void A_row_of_an_unknown_version_is_refused_rather_than_trained_with_guessed_options()
    {
        var e = Assert.Throws<InvalidDataException>(() => FineTuningJobSpec.FromJson("""{"version":2,"steps":6}"""));
        Assert.Contains("version 2", e.Message);
    }

    [Fact]
    public void Invalid_requests_are_refused_per_option_by_its_snake_case_name()
    {
        FineTuningJobSpec.Resolve(new RequestedTrainingOptions { Steps = 0, Mode = "bogus", GradientDecay = 2 }, out var errors);

        Assert.Equal(["gradient_decay", "mode", "steps"], errors.Keys.Order());
    }
}
