using System.Text.Json.Nodes;
using TorchSharp;
using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

[Collection(SimDataCollection.Name)]
public sealed class CoTrainerTests(SimDataFixture fixture)
{
    private static List<TrainingProgress> Run(VlaPolicy initial, TrainingData data, CoTrainingOptions options, string? dir = null, CancellationToken token = default)
    {
        var reports = new List<TrainingProgress>();
        using var result = CoTrainer.Train(initial, data, options, dir, new Collect(reports), token).Policy;
        return reports;
    }

    [Fact]
    public void The_action_loss_goes_down_on_a_small_generated_dataset()
    {
        var options = SimDataFixture.Options(40) with { BatchSize = 8, ExpertLearningRate = 3e-3, RestLearningRate = 1e-3 };
        // A fixed held batch and fixed noise, so before and after differ only by the training.
        var held = new BatchSampler(fixture.Data, options with { Seed = 99 }, SimDataFixture.Micro.ChunkLength).Sample(0);
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var before = HeldLoss(policy, held);
        var result = CoTrainer.Train(policy, fixture.Data, options);
        using var trained = result.Policy;
        var after = HeldLoss(trained, held);
        Assert.True(after.Action < 0.9 * before.Action, $"action loss {before.Action:F3} → {after.Action:F3}");
        Assert.True(after.Spatial < before.Spatial, $"spatial loss {before.Spatial:F3} → {after.Spatial:F3}");
    }

    [Fact]
    public void The_schedule_warms_up_linearly_then_follows_a_cosine_down_to_the_minimum()
    {
        var options = new CoTrainingOptions { Steps = 101, WarmupSteps = 10, MinLearningRate = 1e-5 };
        const double peak = 1e-3;
        var rates = Enumerable.Range(0, 101).Select(s => LearningRateSchedule.At(s, peak, options)).ToArray();
        for (var s = 0; s < 10; s++) Assert.Equal(peak * (s + 1) / 10, rates[s], 12);
        Assert.Equal(peak, rates[10], 12);
        for (var s = 11; s < 101; s++) Assert.True(rates[s] < rates[s - 1], $"step {s}: {rates[s]} ≥ {rates[s - 1]}");
        Assert.Equal(1e-5, rates[100], 12);
        // Halfway through the decay (90 steps from 10 to 100) the cosine is at the midpoint between peak and minimum.
        Assert.Equal((peak + 1e-5) / 2, rates[55], 12);
        // A group whose peak is below the minimum stays at its peak.
        Assert.Equal(1e-6, LearningRateSchedule.At(100, 1e-6, options), 12);
    }

    [Fact]
    public void Each_step_trains_with_the_scheduled_learning_rate_of_each_part()
    {
        var options = SimDataFixture.Options(6) with { WarmupSteps = 3 };
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var reports = Run(policy, fixture.Data, options);
        for (var s = 0; s < 6; s++)
        {
            Assert.Equal(LearningRateSchedule.At(s, options.VlmLearningRate, options), reports[s].VlmLearningRate, 12);
            Assert.Equal(LearningRateSchedule.At(s, options.ExpertLearningRate, options), reports[s].ExpertLearningRate, 12);
            Assert.Equal(LearningRateSchedule.At(s, options.RestLearningRate, options), reports[s].RestLearningRate, 12);
        }
    }

    [Theory]
    [InlineData(0.5, 4, 2, 2)]
    [InlineData(0.25, 4, 1, 1)]
    [InlineData(0.3, 4, 1, 2)]
    public void The_spatial_ratio_is_honoured_exactly_over_the_run(double ratio, int batch, int min, int max)
    {
        var options = new CoTrainingOptions { Steps = 50, BatchSize = batch, SpatialRatio = ratio };
        var counts = Enumerable.Range(0, 50).Select(options.SpatialSamplesAt).ToArray();
        Assert.Equal((int)Math.Floor(50 * batch * ratio + 1e-9), counts.Sum());
        Assert.All(counts, c => Assert.InRange(c, min, max));
    }

    [Fact]
    public void Batches_carry_the_spatial_samples_the_ratio_asks_for()
    {
        var options = SimDataFixture.Options(4) with { SpatialRatio = 0.75 };
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var reports = Run(policy, fixture.Data, options);
        Assert.All(reports, r => Assert.Equal(3, r.SpatialSamples));
        Assert.All(reports, r => Assert.NotNull(r.SpatialLoss));
    }

    [Fact]
    public void Spatial_pretraining_steps_train_grounding_alone_then_co_training_takes_over()
    {
        var options = SimDataFixture.Options(5) with { SpatialPretrainSteps = 2 };
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var reports = Run(policy, fixture.Data, options);
        Assert.All(reports.Take(2), r =>
        {
            Assert.Null(r.ActionLoss);
            Assert.Equal(options.BatchSize, r.SpatialSamples);
            Assert.NotNull(r.SpatialLoss);
        });
        Assert.All(reports.Skip(2), r =>
        {
            Assert.NotNull(r.ActionLoss);
            Assert.Equal(2, r.SpatialSamples);
        });
        // The first steps are stage 1 for st4vla only: vanilla has no spatial data to pre-train on.
        Assert.Throws<ArgumentException>(() => (options with { Mode = TrainingMode.Vanilla, SpatialPrompt = false }).Validate());
        Assert.Equal(0, options.AsVanilla().SpatialPretrainSteps);
        Assert.Throws<ArgumentException>(() => CoTrainer.Train(policy, fixture.Data.WithoutSpatial(), options));
    }

    [Fact]
    public void Vanilla_mode_trains_without_spatial_loss_even_when_the_data_has_spatial_records()
    {
        var options = SimDataFixture.Options(3).AsVanilla();
        Assert.NotEmpty(fixture.Data.Spatial);
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        Assert.True(policy.Config.Vanilla);
        var reports = Run(policy, fixture.Data, options);
        Assert.All(reports, r =>
        {
            Assert.Null(r.SpatialLoss);
            Assert.Equal(0, r.SpatialSamples);
            Assert.Equal(r.ActionLoss!.Value, r.Loss, 6);
        });
    }

    /// <summary>Every weight of the policy, flattened, to compare two runs bit for bit.</summary>
    private static float[] Weights(VlaPolicy p) => [.. p.Parameters().SelectMany(x => x.detach().cpu().data<float>().ToArray())];

    [Fact]
    public void The_checkpoint_callback_sees_every_checkpoint_step_and_a_condition_check_in_it_leaves_the_run_unchanged()
    {
        var options = SimDataFixture.Options(6) with { CheckpointInterval = 4 };
        float[] plain;
        using (var initial = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options))
        using (var result = CoTrainer.Train(initial, fixture.Data, options).Policy)
            plain = Weights(result);

        var seen = new List<(int Step, double Gap)>();
        using var again = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        using var measured = CoTrainer.Train(again, fixture.Data, options,
            atCheckpoint: (step, policy) => seen.Add((step, ConditionCheck.Measure(policy, fixture.Data, batches: 1, batchSize: 2).Gap))).Policy;
        // Every interval and the last step, with or without a checkpoint folder.
        Assert.Equal([4, 6], seen.Select(s => s.Step));
        // The measurement reseeds the global generator, which each step reseeds anyway: the same weights to the bit.
        Assert.Equal(plain, Weights(measured));
    }

    [Fact]
    public void A_run_resumed_from_its_mid_run_checkpoint_ends_where_the_uninterrupted_run_ends()
    {
        var options = SimDataFixture.Options(8) with { CheckpointInterval = 4 };

        float[] straight;
        using (var initial = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options))
        {
            using var result = CoTrainer.Train(initial, fixture.Data, options, fixture.NewFolder("straight")).Policy;
            straight = Weights(result);
        }

        // The interrupted run stops after step 4 (as a crashed worker would, its checkpoint already written).
        var dir = fixture.NewFolder("resumed");
        using var cancel = new CancellationTokenSource();
        using (var initial = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options))
        {
            Assert.Throws<OperationCanceledException>(() => CoTrainer.Train(initial, fixture.Data, options, dir,
                new Collect([], p => { if (p.Step == 4) cancel.Cancel(); }), cancel.Token));
        }
        Assert.Equal(4, CoTrainer.Latest(dir)!.Step);

        // The restarted run gets a fresh initial policy, as a new process would; the checkpoint wins.
        using var fresh = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options with { });
        var steps = new List<TrainingProgress>();
        var measured = new List<int>();
        var resumed = CoTrainer.Train(fresh, fixture.Data, options, dir, new Collect(steps), atCheckpoint: (step, policy) =>
        {
            measured.Add(step);
            ConditionCheck.Measure(policy, fixture.Data, batches: 1, batchSize: 2);
        });
        using var resumedPolicy = resumed.Policy;
        Assert.Equal(4, resumed.StartStep);
        Assert.Equal([5, 6, 7, 8], steps.Select(s => s.Step));
        // The checkpoint it resumed from is offered to the callback too (the interrupted run never called back for it),
        // and measuring it does not change where the run ends (checked below).
        Assert.Equal([4, 8], measured);
        Assert.Equal(8, CoTrainer.Latest(dir)!.Step);
        var after = Weights(resumed.Policy);
        Assert.Equal(straight.Length, after.Length);
        var worst = straight.Zip(after, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-4, $"largest weight difference {worst}");
    }

    [Fact]
    public void Point_guidance_gives_a_base_a_fresh_point_token_and_keeps_every_weight_it_had()
    {
        // Learning rates of zero: the run changes no weight, so the copy can be compared with the base exactly.
        var options = SimDataFixture.Options(1) with { PointGuidance = true, VlmLearningRate = 0, ExpertLearningRate = 0, RestLearningRate = 0, MinLearningRate = 0 };
        using var unguided = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options with { PointGuidance = false });
        Assert.False(unguided.Config.PointGuidance);

        using var guided = CoTrainer.Train(unguided, fixture.Data, options).Policy;
        Assert.True(guided.Config.PointGuidance);
        var trained = guided.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Equal(["expert.pointsIn.bias", "expert.pointsIn.weight"], trained.Keys.Except(unguided.NamedParameters().Select(p => p.Name)).Order());
        foreach (var (name, weight) in unguided.NamedParameters())
            Assert.True(weight.allclose(trained[name], rtol: 0, atol: 0), $"{name} changed");

        // A guided policy stays guided when fine-tuned without asking again, and needs a guide on every frame.
        Assert.True(CoTrainer.ConfigFor(guided.Config, options with { PointGuidance = false }).PointGuidance);
        var unlabelled = new TrainingData(fixture.Data.Embodiment, fixture.Data.Normalization,
            [.. fixture.Data.Episodes.Select((e, i) => i == 0 ? e with { Guides = null } : e)], fixture.Data.Spatial);
        var error = Assert.Throws<ArgumentException>(() => CoTrainer.Train(guided, unlabelled, options with { PointGuidance = false }));
        Assert.Contains($"{fixture.Data.Episodes[0].Length} of {fixture.Data.Frames} frames", error.Message);
        Assert.Throws<ArgumentException>(() => options.AsVanilla().Validate());
    }

    [Fact]
    public void Point_guidance_gives_an_m1_base_a_fresh_point_token_keeps_its_weights_and_trains_on_the_labels()
    {
        var zero = SimDataFixture.Options(1) with { PointGuidance = true, VlmLearningRate = 0, ExpertLearningRate = 0, RestLearningRate = 0, MinLearningRate = 0 };
        using var unguided = CoTrainer.CreatePolicy(VlaCloud.Policy.InternVla.InternVlaM1Sizes.Tiny.ToPolicyConfig(), fixture.Data, zero with { PointGuidance = false },
            tokenizerJson: VlaCloud.Policy.InternVla.QwenByteTokenizer.Json());
        Assert.False(unguided.Config.PointGuidance);
        using var guided = CoTrainer.Train(unguided, fixture.Data, zero).Policy;
        Assert.True(guided.Config.PointGuidance);
        var weights = guided.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Equal(["action_model.net.point_position", "action_model.net.z_embedder.point_uncondition", "point_projector.bias", "point_projector.weight"],
            weights.Keys.Except(unguided.NamedParameters().Select(p => p.Name)).Order(StringComparer.Ordinal));
        foreach (var (name, weight) in unguided.NamedParameters())
            Assert.True(weight.allclose(weights[name], rtol: 0, atol: 0), $"{name} changed");

        // A short run with the labels teacher-forced: the point projection trains, and the policy acts on System 2's answers.
        // A copy: the run may train the policy it is given in place.
        using var before = weights["point_projector.weight"].detach().clone();
        var reports = new List<TrainingProgress>();
        using var trained = CoTrainer.Train(guided, fixture.Data, SimDataFixture.Options(3) with { PointGuidance = true }, progress: new Collect(reports)).Policy;
        Assert.NotEmpty(reports);
        Assert.All(reports, r => Assert.True(double.IsFinite(r.ActionLoss ?? double.NaN), "action loss"));
        var projector = trained.NamedParameters().Single(p => p.Name == "point_projector.weight").Parameter;
        Assert.False(projector.allclose(before, rtol: 0, atol: 0), "the point projection did not train");
        var observation = fixture.Data.Episodes[0].Observations[0];
        var chunk = trained.SampleActions([observation], [1])[0];
        Assert.All(chunk.Values.ToArray(), v => Assert.True(float.IsFinite(v)));
        Assert.Throws<ArgumentException>(() => CoTrainer.Train(trained, fixture.Data, zero.AsVanilla()));
    }

    [Fact]
    public void A_base_with_an_older_word_list_gets_the_words_added_since_and_keeps_every_weight_it_had()
    {
        var options = SimDataFixture.Options(1) with { VlmLearningRate = 0, ExpertLearningRate = 0, RestLearningRate = 0, MinLearningRate = 0 };
        var current = PolicyTokenizer.CreateWords(SimDataFixture.Micro.LocationBins);
        var words = JsonNode.Parse(current.Json)!["words"]!.AsArray().Select(n => (string)n!).Where(w => w is not ("diamond" or "nudge")).ToArray();
        var olderJson = new JsonObject { ["type"] = "vlacloud-words", ["words"] = new JsonArray([.. words.Select(w => (JsonNode)w!)]) }.ToJsonString();
        using var older = VlaPolicy.Create(CoTrainer.ConfigFor(SimDataFixture.Micro, options) with { TextVocabSize = words.Length },
            new Dictionary<string, NormalizationStats> { [fixture.Data.Embodiment] = fixture.Data.Normalization }, options.Seed, tokenizerJson: olderJson);

        using var grown = CoTrainer.Train(older, fixture.Data, options).Policy;
        Assert.Equal(current.Json, grown.Tokenizer.Json);
        Assert.Equal(current.TextVocabSize, grown.Config.TextVocabSize);
        Assert.NotEqual([grown.Tokenizer.UnkId], grown.Tokenizer.Encode("diamond"));

        // Every token the base had keeps its embedding row; every other weight is the base's.
        var ids = older.Tokenizer.IdsIn(grown.Tokenizer);
        var trained = grown.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        Assert.Equal(older.NamedParameters().Select(p => p.Name).Order(), trained.Keys.Order());
        foreach (var (name, weight) in older.NamedParameters())
        {
            var after = trained[name];
            if (weight.shape.SequenceEqual(after.shape)) Assert.True(weight.allclose(after, rtol: 0, atol: 0), $"{name} changed");
            else
            {
                Assert.Equal(older.Config.VocabSize, weight.shape[0]);
                Assert.Equal(grown.Config.VocabSize, after.shape[0]);
                using var moved = after.index_select(0, torch.tensor(ids.Select(i => (long)i).ToArray()));
                Assert.True(weight.allclose(moved, rtol: 0, atol: 0), $"{name}: a known token's row changed");
            }
        }

        // A base already on the built-in list is trained as it is.
        var again = CoTrainer.Train(grown, fixture.Data, options).Policy;
        Assert.Same(grown, again);
    }

    [Fact]
    public void The_point_guided_demo_fine_tunes_on_generated_demonstrations_as_the_readmes_job_does()
    {
        var tar = Path.Combine(fixture.NewFolder("demo"), "demo.tar");
        using (var file = File.Create(tar)) DemoCheckpoint.Open()!.CopyTo(file);
        using var demo = VlaPolicy.Load(tar);
        Assert.True(demo.Config.PointGuidance);

        var reports = Run(demo, fixture.Data, SimDataFixture.Options(2));
        Assert.Equal(2, reports.Count);
        Assert.All(reports, r => Assert.True(double.IsFinite(r.Loss)));
    }

    [Fact]
    public void Resuming_with_other_options_is_refused()
    {
        var options = SimDataFixture.Options(2) with { CheckpointInterval = 1 };
        var dir = fixture.NewFolder("other-options");
        using (var initial = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options))
        using (CoTrainer.Train(initial, fixture.Data, options, dir).Policy) { }
        using var again = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        var error = Assert.Throws<ArgumentException>(() => CoTrainer.Train(again, fixture.Data, options with { Steps = 3 }, dir));
        Assert.Contains("other training options", error.Message);
    }

    [Fact]
    public void Cancellation_stops_the_run_between_steps()
    {
        var options = SimDataFixture.Options(50);
        using var cancel = new CancellationTokenSource();
        var reports = new List<TrainingProgress>();
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        Assert.Throws<OperationCanceledException>(() => CoTrainer.Train(policy, fixture.Data, options, null,
            new Collect(reports, p => { if (p.Step == 2) cancel.Cancel(); }), cancel.Token));
        Assert.Equal(2, reports.Count);
    }

    [Fact]
    public void The_trained_policy_carries_the_datasets_statistics_for_the_embodiment()
    {
        var options = SimDataFixture.Options(1);
        using var policy = CoTrainer.CreatePolicy(SimDataFixture.Micro, fixture.Data, options);
        using var trained = CoTrainer.Train(policy, fixture.Data, options).Policy;
        var stats = trained.Normalization[SimTrainingSets.Embodiment];
        Assert.Equal(fixture.Data.Normalization.Action.Q01, stats.Action.Q01);
        Assert.Equal(fixture.Data.Normalization.Action.Q99, stats.Action.Q99);
    }

    private static (double Action, double Spatial) HeldLoss(VlaPolicy policy, TrainingBatch batch)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var noGrad = TorchSharp.torch.no_grad();
        TorchSharp.torch.random.manual_seed(1234);
        var loss = policy.ComputeLoss(batch);
        return (loss.Action!.item<float>(), loss.Spatial!.item<float>());
    }

    private sealed class Collect(List<TrainingProgress> into, Action<TrainingProgress>? also = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            into.Add(value);
            also?.Invoke(value);
        }
    }
}
