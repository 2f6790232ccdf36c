using VlaCloud.Training.Jobs;

namespace VlaCloud.Training.Tests;

/// <summary>The promotion gate's comparison: closed-loop success first, action error only on a tie or off the simulator.</summary>
public sealed class PromotionDecisionTests
{
    [Fact]
    public void A_higher_success_rate_wins_even_with_a_worse_action_error_and_the_decision_names_success()
    {
        var candidate = new PolicyScore(0.30, 15, 50, ActionMse: 0.9);
        var incumbent = new PolicyScore(0.10, 5, 50, ActionMse: 0.1);

        var decision = candidate.Against(incumbent);

        Assert.Equal(new PromotionDecision(PromotionDecision.BySuccess, true, 0.30, 0.10), decision);
        Assert.Equal(new PromotionDecision(PromotionDecision.BySuccess, false, 0.10, 0.30), incumbent.Against(candidate));
        Assert.True(candidate.Beats(incumbent));
    }

    [Fact]
    public void Only_a_tie_on_success_leaves_it_to_the_action_error()
    {
        var candidate = new PolicyScore(0.2, 10, 50, ActionMse: 0.05);
        var incumbent = new PolicyScore(0.2, 10, 50, ActionMse: 0.07);

        Assert.Equal(new PromotionDecision(PromotionDecision.ByActionMse, true, 0.05, 0.07), candidate.Against(incumbent));
        Assert.Equal(new PromotionDecision(PromotionDecision.ByActionMse, false, 0.07, 0.05), incumbent.Against(candidate));
        // Equal on both: the incumbent stays.
        Assert.False(candidate.Against(candidate).Promoted);
    }

    [Fact]
    public void Off_the_simulator_the_action_error_decides()
    {
        var decision = new PolicyScore(null, 0, 0, ActionMse: 0.2).Against(new PolicyScore(null, 0, 0, ActionMse: 0.3));

        Assert.Equal(new PromotionDecision(PromotionDecision.ByActionMse, true, 0.2, 0.3), decision);
    }

    [Fact]
    public void The_decision_data_carries_the_criterion_both_values_and_the_episode_count()
    {
        var candidate = new PolicyScore(0.5, 2, 4, ActionMse: 0.3, SeedBase: 0);
        var incumbent = new PolicyScore(0.25, 1, 4, ActionMse: 0.2, SeedBase: 0);
        var holder = Guid.NewGuid();

        var json = System.Text.Json.JsonSerializer.SerializeToElement(candidate.Against(incumbent).ToData("production", holder, 4, candidate, incumbent));

        Assert.Equal("success", json.GetProperty("decided_by").GetString());
        Assert.Equal((0.5, 0.25), (json.GetProperty("candidate_value").GetDouble(), json.GetProperty("incumbent_value").GetDouble()));
        Assert.True(json.GetProperty("promoted").GetBoolean());
        Assert.Equal(4, json.GetProperty("evaluation_episodes").GetInt32());
        Assert.Equal(holder, json.GetProperty("incumbent_checkpoint_id").GetGuid());
        Assert.Equal(1, json.GetProperty("holder").GetProperty("successes").GetInt32());
    }
}
