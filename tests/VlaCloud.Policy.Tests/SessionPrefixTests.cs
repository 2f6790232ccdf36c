namespace VlaCloud.Policy.Tests;

/// <summary>The per-session prefix cache (<see cref="VlaPolicy.SessionPrefixes"/>) of the ST4VLA family.</summary>
public sealed class SessionPrefixTests : IDisposable
{
    private readonly VlaPolicy policy = TestData.Tiny();

    public void Dispose() => policy.Dispose();

    private static Observation WithChangedPixel(Observation o)
    {
        var image = o.Images[0];
        var rgb = (byte[])image.Rgb.Clone();
        rgb[0] ^= 0x40;
        return o with { Images = [image with { Rgb = rgb }, .. o.Images.Skip(1)] };
    }

    [Fact]
    public void A_hit_gives_exactly_the_actions_of_the_miss_for_the_same_seed_and_is_counted()
    {
        var observation = TestData.Observation(0);
        var miss = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        Assert.Equal(0, policy.PrefixHits);
        var hit = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        Assert.Equal(1, policy.PrefixHits);
        Assert.Equal(miss[0], hit[0]);
        // And the same as sampling without a session.
        Assert.Equal(policy.SampleActions([observation], [7], steps: 4)[0], hit[0]);
    }

    [Fact]
    public void A_changed_image_misses_and_replaces_the_sessions_prefix()
    {
        var observation = TestData.Observation(0);
        policy.SampleActions([observation], [7], steps: 2, sessions: ["s"]);
        var changed = WithChangedPixel(observation);
        policy.SampleActions([changed], [7], steps: 2, sessions: ["s"]);
        Assert.Equal(0, policy.PrefixHits);
        Assert.Equal(1, policy.Prefixes.Count);
        policy.SampleActions([changed], [7], steps: 2, sessions: ["s"]);
        Assert.Equal(1, policy.PrefixHits);
    }

    [Fact]
    public void A_batch_mixing_hits_and_misses_gives_each_sample_its_actions()
    {
        var observations = Enumerable.Range(0, 4).Select(i => TestData.Observation(i, i == 2 ? TestData.Gripper : TestData.Arm)).ToArray();
        long[] seeds = [1, 2, 3, 4];
        var plain = policy.SampleActions(observations, seeds, steps: 3);
        // Sessions a and c are warm; b, d and the session-less one miss.
        policy.SampleActions([observations[0], observations[2]], [1, 3], steps: 3, sessions: ["a", "c"]);
        var mixed = policy.SampleActions(observations, seeds, steps: 3, sessions: ["a", "b", "c", null]);
        Assert.Equal(2, policy.PrefixHits);
        for (var i = 0; i < 4; i++)
            foreach (var (x, y) in plain[i].Values.ToArray().Zip(mixed[i].Values.ToArray())) Assert.Equal(x, y, 1e-4f);
        Assert.Equal(3, policy.Prefixes.Count);
    }

    [Fact]
    public void The_least_recently_used_session_is_evicted_at_the_limit()
    {
        policy.SessionPrefixes = 2;
        var o = Enumerable.Range(0, 3).Select(i => TestData.Observation(i)).ToArray();
        policy.SampleActions([o[0]], [1], steps: 1, sessions: ["a"]);
        policy.SampleActions([o[1]], [1], steps: 1, sessions: ["b"]);
        policy.SampleActions([o[0]], [1], steps: 1, sessions: ["a"]);   // hit: a is now the most recent
        policy.SampleActions([o[2]], [1], steps: 1, sessions: ["c"]);   // evicts b
        Assert.Equal(1, policy.PrefixHits);
        Assert.Equal(2, policy.Prefixes.Count);
        policy.SampleActions([o[1]], [1], steps: 1, sessions: ["b"]);   // miss, evicts a
        policy.SampleActions([o[2]], [1], steps: 1, sessions: ["c"]);   // hit
        Assert.Equal(2, policy.PrefixHits);
        policy.SampleActions([o[0]], [1], steps: 1, sessions: ["a"]);   // miss
        Assert.Equal(2, policy.PrefixHits);
    }

    [Fact]
    public void Zero_sessions_turns_the_cache_off()
    {
        policy.SessionPrefixes = 0;
        var observation = TestData.Observation(0);
        for (var i = 0; i < 3; i++) policy.SampleActions([observation], [7], steps: 1, sessions: ["s"]);
        Assert.Equal(0, policy.PrefixHits);
        Assert.Equal(0, policy.Prefixes.Count);
    }

    [Fact]
    public void Setting_statistics_or_computing_a_loss_empties_the_cache()
    {
        var observation = TestData.Observation(0);
        policy.SampleActions([observation], [7], steps: 1, sessions: ["s"]);
        Assert.Equal(1, policy.Prefixes.Count);
        policy.SetNormalization(TestData.Arm, policy.Normalization[TestData.Arm]);
        Assert.Equal(0, policy.Prefixes.Count);

        policy.SampleActions([observation], [7], steps: 1, sessions: ["s"]);
        Assert.Equal(1, policy.Prefixes.Count);
        using (TorchSharp.torch.NewDisposeScope())
            policy.ComputeLoss(new TrainingBatch([new ActionSample(observation, policy.SampleActions(observation, 1, 1))], []));
        Assert.Equal(0, policy.Prefixes.Count);
    }

    [Fact]
    public void After_an_optimizer_step_a_session_gets_the_prefix_of_the_new_weights()
    {
        var observation = TestData.Observation(0);
        var first = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        var batch = new TrainingBatch([new ActionSample(observation, policy.SampleActions(observation, 1, 1))],
            // A spatial answer too: the action expert's zero-initialised output keeps the first step's action gradient out of the VLM.
            [new SpatialSample([TestData.Image(10, 40, TestData.Red)], SpatialPrompts.Question(SpatialKind.Point, "pick the red cube"), SpatialKind.Point, [16, 46])]);
        using (var optimizer = policy.CreateOptimizer(vlmLr: 1e-2, expertLr: 1e-2, restLr: 1e-2, weightDecay: 0))
        using (TorchSharp.torch.NewDisposeScope())
        {
            optimizer.zero_grad();
            policy.ComputeLoss(batch).Total.backward();
            // Sampled between the loss and the step (a measurement, a request served by the same instance): this prefix
            // is of the weights the step is about to change. Clearing the cache in ComputeLoss alone kept it past the step.
            policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
            Assert.Equal(1, policy.Prefixes.Count);
            var version = policy.WeightsVersion;
            optimizer.step();
            Assert.NotEqual(version, policy.WeightsVersion);
        }
        var hits = policy.PrefixHits;
        var again = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        var fresh = policy.SampleActions([observation], [7], steps: 4);
        Assert.Equal(fresh[0], again[0]);
        Assert.NotEqual(first[0], again[0]);
        Assert.Equal(hits, policy.PrefixHits); // a miss: the prefix was computed with the new weights
        // And the new prefix is cached: the next sample of the session hits and gives the same actions.
        Assert.Equal(fresh[0], policy.SampleActions([observation], [7], steps: 4, sessions: ["s"])[0]);
        Assert.Equal(hits + 1, policy.PrefixHits);
    }

    [Fact]
    public void Weights_written_through_the_parameters_are_used_once_the_policy_is_told()
    {
        var observation = TestData.Observation(0);
        var first = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        // Added, not scaled: the action expert's output layer starts at zero, and would stay zero (and the actions blind
        // to the prefix).
        using (TorchSharp.torch.no_grad())
            foreach (var parameter in policy.Parameters()) parameter.add_(0.01);
        policy.WeightsChanged();
        var again = policy.SampleActions([observation], [7], steps: 4, sessions: ["s"]);
        Assert.Equal(0, policy.PrefixHits);
        Assert.Equal(policy.SampleActions([observation], [7], steps: 4)[0], again[0]);
        Assert.NotEqual(first[0], again[0]);
    }

    [Fact]
    public void A_prefix_computed_before_an_invalidation_is_not_stored()
    {
        using var cache = new SessionPrefixCache(4);
        var key = SessionPrefixCache.Key(TestData.Observation(0));
        using var prefix = TorchSharp.torch.zeros(1, 3);
        var before = cache.Generation;
        cache.Invalidate();
        cache.Put("s", key, prefix, before);
        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGet("s", key, out _));
        cache.Put("s", key, prefix, cache.Generation);
        Assert.True(cache.TryGet("s", key, out _));
    }
}
