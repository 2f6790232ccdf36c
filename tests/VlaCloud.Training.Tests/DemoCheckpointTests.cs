using VlaCloud.Policy;
using VlaCloud.Sim;

namespace VlaCloud.Training.Tests;

public sealed class DemoCheckpointTests
{
    /// <summary>The shipped demo checkpoint, found from the checkout the tests were built from.</summary>
    private static string DemoPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VlaCloud.sln"))) return Path.Combine(dir.FullName, "src", "VlaCloud.Sim", "Demo", "sim-tabletop-st4vla.tar");
        throw new InvalidOperationException("VlaCloud.sln not found above the test binaries");
    }

    [Fact]
    public void The_demo_checkpoint_is_a_small_st4vla_policy_for_the_sim_embodiment()
    {
        var path = DemoPath();
        Assert.True(new FileInfo(path).Length < 5_000_000, "the demo checkpoint should stay a few MB");
        using var policy = VlaPolicy.Load(path);
        Assert.False(policy.Config.Vanilla);
        // The eighth round's policy: System 1 reads System 2's point and placement answers.
        Assert.True(policy.Config.PointGuidance);
        // The current built-in word list, which knows every word of the simulator's instructions (the seventh round's
        // demo read "diamond" as <unk>).
        Assert.Equal(PolicyTokenizer.CreateWords(policy.Config.LocationBins).Json, policy.Tokenizer.Json);
        Assert.True(policy.Normalization.ContainsKey(SimEmbodiment.Tabletop.Name));
    }

    [Fact]
    public void The_demo_checkpoint_answers_simulator_observations_with_action_chunks()
    {
        using var policy = VlaPolicy.Load(DemoPath());
        var result = Evaluator.EvaluateSplit(new PolicyController(policy, SimEmbodiment.Tabletop), SimSplits.Seen,
            new EvaluationOptions(EpisodesPerSplit: 2, ParallelEnvs: 2, ExecuteSteps: 8));
        Assert.Equal(2, result.Overall.Episodes);
        Assert.True(result.ControllerCalls > 0);
    }
}
