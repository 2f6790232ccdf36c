using VlaCloud.Parity;
using static TorchSharp.torch;
using VlaCloud.Testing;

namespace VlaCloud.Policy.Tests;

/// <summary>A base rebuilt for an embodiment of another layout (<see cref="VlaPolicy.WithNewHead"/>), for both families.</summary>
public sealed class NewHeadTests
{
    private static readonly EmbodimentLayout Seven = new(7, 7, 1), Four = new(4, 3, 1);

    private static NormalizationStats Stats(int actions, int states) => TestPolicies.IdentityStats(actions, states);

    private static VlaPolicy Base(string family, EmbodimentLayout layout, int embodimentActions)
    {
        var m1 = family == PolicyConfig.InternVlaM1Family;
        // State on, so the state projection is part of both models.
        var config = (m1 ? TinyInternVlaM1.PolicyConfig() : PolicyConfig.Tiny).ForLayout(layout) with { UseState = true };
        return VlaPolicy.Create(config, new Dictionary<string, NormalizationStats> { ["base-arm"] = Stats(embodimentActions, layout.StateDim) }, seed: 3,
            tokenizerJson: m1 ? TinyInternVlaM1.TokenizerJson() : null);
    }

    public static TheoryData<string, string[]> Families => new()
    {
        { PolicyConfig.St4VlaFamily, ["expert.actionIn.weight", "expert.actionIn.bias", "expert.stateIn.weight", "expert.stateIn.bias", "expert.actionOut.weight", "expert.actionOut.bias"] },
        { PolicyConfig.InternVlaM1Family, [
            "action_model.net.history_embedder.linear.weight", "action_model.net.history_embedder.linear.bias",
            "action_model.net.x_embedder.linear.weight", "action_model.net.x_embedder.linear.bias",
            "action_model.net.final_layer.linear.weight", "action_model.net.final_layer.linear.bias",
            "state_projector.weight", "state_projector.bias"] },
    };

    [Theory]
    [MemberData(nameof(Families))]
    public void A_base_for_seven_actions_rebuilt_for_four_copies_every_tensor_of_the_same_name_and_shape_and_starts_the_action_and_state_layers_afresh(
        string family, string[] layoutTensors)
    {
        using var basePolicy = Base(family, Seven, 7);
        var head = basePolicy.WithNewHead(Seven, Four, seed: 11);
        using var policy = head.Policy;

        Assert.Equal(layoutTensors.Order(StringComparer.Ordinal), head.Reinitialised.Order(StringComparer.Ordinal));
        var before = basePolicy.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var after = policy.NamedParameters().ToList();
        Assert.Equal(after.Count - layoutTensors.Length, head.Copied);
        foreach (var (name, parameter) in after)
        {
            var same = before[name].shape.SequenceEqual(parameter.shape) && before[name].equal(parameter).all().item<bool>();
            if (!layoutTensors.Contains(name)) Assert.True(same, $"{name} was not copied from the base");
            // Weights are built for the new sizes; biases start afresh too, but a zero-initialised one equals the base's.
            else if (name.EndsWith(".weight", StringComparison.Ordinal)) Assert.False(same, $"{name} was copied from the base");
        }
        Assert.Equal((4, 3), (policy.Config.MaxActionDim, policy.Config.MaxStateDim));
        // It holds no statistics of the base's embodiment (another layout); with the new one's it acts in four dimensions.
        Assert.Empty(policy.Normalization);
        policy.SetNormalization("four-arm", Stats(4, 3));
        var side = policy.Config.ImageSize;
        var chunk = policy.SampleActions(new Observation([new CameraImage(new byte[side * side * 3], side, side)], "pick the red cube", [0.1f, 0.2f, 0.3f], "four-arm"), 1);
        Assert.Equal((policy.Config.ChunkLength, 4), (chunk.Horizon, chunk.ActionDim));
    }

    [Fact]
    public void Action_layers_start_afresh_when_the_action_size_differs_even_if_their_padded_shapes_match()
    {
        // A base padded to 8 action dims, trained for a 3-action robot; the new robot has 8 actions, the same state and cameras.
        var layout = new EmbodimentLayout(8, 3, 2);
        using var basePolicy = Base(PolicyConfig.St4VlaFamily, layout, embodimentActions: 3);
        var head = basePolicy.WithNewHead(new EmbodimentLayout(3, 3, 2), layout, seed: 11);
        using var policy = head.Policy;

        Assert.Equal(["expert.actionIn.bias", "expert.actionIn.weight", "expert.actionOut.bias", "expert.actionOut.weight"], head.Reinitialised.Order(StringComparer.Ordinal));
        var before = basePolicy.NamedParameters().ToDictionary(p => p.Name, p => p.Parameter);
        var actionIn = policy.NamedParameters().Single(p => p.Name == "expert.actionIn.weight").Parameter;
        Assert.Equal(before["expert.actionIn.weight"].shape, actionIn.shape);
        Assert.False(before["expert.actionIn.weight"].equal(actionIn).all().item<bool>());
    }
}
