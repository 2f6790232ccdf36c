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
}
