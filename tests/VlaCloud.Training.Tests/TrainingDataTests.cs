using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class TrainingDataTests(SimDataFixture fixture)
{
    [Fact]
    public void Demonstrations_are_decoded_into_memory_with_both_cameras_and_the_datasets_q01_q99()
    {
        var data = fixture.Data;
        Assert.Equal(6, data.Episodes.Count);
        var first = data.Episodes[0].Observations[0];
        Assert.Equal(2, first.Images.Count);
        Assert.All(first.Images, i => Assert.Equal(64 * 64 * 3, i.Rgb.Length));
        Assert.Equal(SimTrainingSets.Embodiment, first.Embodiment);
        Assert.Equal(3, data.Normalization.ActionDim);
        // The expert moves at full speed, so the step quantiles sit near ±MaxStep.
        Assert.InRange(data.Normalization.Action.Q99[0], 0.02f, (float)Physics.MaxStep + 1e-6f);
        Assert.Equal([2], data.Normalization.BinaryActionDims!);
    }

    [Fact]
    public void Spatial_questions_are_drawn_from_the_configured_kinds_and_the_kinds_survive_a_checkpoints_options()
    {
        var all = SimDataFixture.Options(1) with { SpatialRatio = 4 };
        var drawn = Enumerable.Range(0, 20).SelectMany(step => new BatchSampler(fixture.Data, all, chunkLength: 8).Sample(step).Spatial).Select(q => q.Kind).ToHashSet();
        Assert.Equal([SpatialKind.Point, SpatialKind.Box, SpatialKind.Trajectory], drawn.Order());

        var points = all with { SpatialKinds = [SpatialKind.Point] };
        var questions = Enumerable.Range(0, 20).SelectMany(step => new BatchSampler(fixture.Data, points, chunkLength: 8).Sample(step).Spatial).ToList();
        Assert.NotEmpty(questions);
        Assert.All(questions, q => Assert.Equal((SpatialKind.Point, 2), (q.Kind, q.Coordinates.Length)));

        Assert.Equal([SpatialKind.Point], CoTrainingOptions.FromJson(points.ToJson()).SpatialKinds);
        Assert.Throws<ArgumentException>(() => (all with { SpatialKinds = [] }).Validate());
        Assert.Throws<ArgumentException>(() => (all with { SpatialKinds = [SpatialKind.Box, SpatialKind.Box] }).Validate());
    }

    [Fact]
    public void Action_chunks_near_an_episodes_end_are_masked_past_it()
    {
        var data = fixture.Data;
        var sampler = new BatchSampler(data, SimDataFixture.Options(1), chunkLength: 8);
        var episode = data.Episodes[0];
        var lastFrame = episode.Length - 1;
        var sample = sampler.ActionAt(lastFrame);
        Assert.Equal([true, false, false, false, false, false, false, false], sample.Valid!);
        Assert.Equal(episode.Actions[lastFrame][0], sample.Actions[0, 0]);
        var full = sampler.ActionAt(0);
        Assert.All(full.Valid!, Assert.True);
        Assert.Equal(episode.Actions[7][1], full.Actions[7, 1]);
    }

    [Fact]
    public void Every_demonstration_frame_carries_its_labelled_target_and_destination_as_the_guide_of_its_action_sample()
    {
        var data = fixture.Data;
        var labels = File.ReadLines(Path.Combine(fixture.TrainFolder, "meta", "spatial_annotations.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .ToDictionary(e => (e.GetProperty("episode_index").GetInt32(), e.GetProperty("frame_index").GetInt32()),
                e => (Target: e.GetProperty("target").GetProperty("point").EnumerateArray().Select(v => v.GetSingle()).ToArray(),
                      Destination: e.GetProperty("destination").GetProperty("point").EnumerateArray().Select(v => v.GetSingle()).ToArray()));
        var sampler = new BatchSampler(data, SimDataFixture.Options(1), chunkLength: 8);
        var globalFrame = 0;
        foreach (var episode in data.Episodes)
        {
            Assert.NotNull(episode.Guides);
            for (var t = 0; t < episode.Length; t++, globalFrame++)
            {
                var (target, destination) = labels[(episode.Index, t)];
                var guide = sampler.ActionAt(globalFrame).Guide!;
                Assert.Equal(target, guide.Target);
                Assert.Equal(destination, guide.Destination);
            }
        }
        // The vanilla baseline's data drops the spatial records, not the frames' guides (its policies have no point token to read them).
        Assert.Same(data.Episodes, data.WithoutSpatial().Episodes);
    }

    [Fact]
    public void Grounding_records_cover_objects_held_out_of_the_demonstrations()
    {
        var data = fixture.Data;
        var demoInstructions = data.Episodes.SelectMany(e => e.Observations.Select(o => o.Instruction)).ToHashSet();
        Assert.DoesNotContain(demoInstructions, i => SimSplits.HeldOutKinds.Any(k => i.Contains(k, StringComparison.Ordinal)));
        var grounding = data.Spatial.Where(r => r.Source == "grounding").ToList();
        Assert.NotEmpty(grounding);
        Assert.Contains(data.Spatial, r => r.Source == "train");
        Assert.All(grounding, r =>
        {
            Assert.Equal(2, r.Point.Length);
            Assert.Equal(4, r.Box.Length);
            Assert.True(r.Trajectory.Length >= 2 && r.Trajectory.Length % 2 == 0);
        });
        Assert.Contains(grounding, r => SimSplits.HeldOutKinds.Any(k => r.Instruction.Contains(k, StringComparison.Ordinal)));
    }

    [Fact]
    public void Spatial_questions_are_points_boxes_and_trajectories_in_the_policys_prompts()
    {
        var record = fixture.Data.Spatial[0];
        var box = BatchSampler.Question(record, SpatialKind.Box);
        Assert.Equal(SpatialPrompts.Question(SpatialKind.Box, record.Instruction), box.Question);
        Assert.Equal(record.Box, box.Coordinates);
        Assert.Equal(record.Trajectory, BatchSampler.Question(record, SpatialKind.Trajectory).Coordinates);
        var placement = BatchSampler.Question(record, SpatialKind.Placement);
        Assert.Equal(SpatialPrompts.Question(SpatialKind.Placement, record.Instruction), placement.Question);
        Assert.Equal(record.Placement, placement.Coordinates);
    }

    [Fact]
    public void Every_record_carries_its_destinations_centre_from_the_annotations_for_placement_questions()
    {
        static string Key(string instruction, IEnumerable<float> target, IEnumerable<float> destination) =>
            $"{instruction}|{string.Join(",", target)}|{string.Join(",", destination)}";
        var annotated = File.ReadLines(Path.Combine(fixture.TrainFolder, "meta", "spatial_annotations.jsonl"))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .Select(e => Key(e.GetProperty("instruction").GetString()!,
                e.GetProperty("target").GetProperty("point").EnumerateArray().Select(v => v.GetSingle()),
                e.GetProperty("destination").GetProperty("point").EnumerateArray().Select(v => v.GetSingle())))
            .ToHashSet();

        var fromTrain = fixture.Data.Spatial.Where(r => r.Source == "train").ToList();
        Assert.NotEmpty(fromTrain);
        Assert.All(fromTrain, r => Assert.Contains(Key(r.Instruction, r.Point, r.Placement!), annotated));
        // The destination is not the target: a placement answer differs from the point answer.
        Assert.Contains(fromTrain, r => !r.Placement!.SequenceEqual(r.Point));
    }

    [Fact]
    public void Placement_questions_are_refused_when_a_spatial_record_has_no_destination()
    {
        var withoutDestination = fixture.Data.Spatial[0] with { Placement = null, Source = "uploaded" };
        var data = new TrainingData(fixture.Data.Embodiment, fixture.Data.Normalization, fixture.Data.Episodes, [.. fixture.Data.Spatial, withoutDestination]);
        var options = SimDataFixture.Options(1) with { SpatialKinds = [SpatialKind.Point, SpatialKind.Placement] };

        var error = Assert.Throws<ArgumentException>(() => new BatchSampler(data, options, chunkLength: 8));
        Assert.Contains("1 of", error.Message);
        Assert.Contains("uploaded", error.Message);
        // Without placement questions the same data trains as before.
        _ = new BatchSampler(data, options with { SpatialKinds = [SpatialKind.Point] }, chunkLength: 8).Sample(0);
    }

    [Fact]
    public void Every_instruction_the_simulator_can_give_reaches_the_built_in_vocabulary_without_unknown_words()
    {
        // An unknown word is one shared <unk> embedding: "orange diamond" would reach the model as "orange <unk>".
        var words = PolicyTokenizer.CreateWords(PolicyConfig.Tiny.LocationBins);
        var destinations = Enum.GetValues<DestinationKind>()
            .SelectMany(kind => Catalog.DestinationColors.Select(color => new Destination(kind, color, default, 0)));
        var instructions = Instructions.Seen.Values.Concat(Instructions.Paraphrases.Values).SelectMany(t => t)
            .SelectMany(template => Catalog.AllKinds.SelectMany(kind => destinations.Select(d => Instructions.Render(template, kind, d))))
            .ToList();
        Assert.Contains(instructions, i => i.StartsWith("nudge the orange diamond", StringComparison.Ordinal));
        var unknown = instructions
            .SelectMany(i => new[] { i, SpatialPrompts.ForAction(i) }.Concat(Enum.GetValues<SpatialKind>().Select(k => SpatialPrompts.Question(k, i))))
            .SelectMany(text => text.ToLowerInvariant().Split([' ', '.', ',', '[', ']'], StringSplitOptions.RemoveEmptyEntries))
            .Distinct().Where(word => words.Encode(word).Contains(words.UnkId)).ToList();
        Assert.Empty(unknown);
    }
}
