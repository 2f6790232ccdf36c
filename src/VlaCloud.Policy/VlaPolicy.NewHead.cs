using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

/// <summary>A policy built for another embodiment layout from a base: which of its tensors came from the base and which start fresh.</summary>
/// <param name="Policy">The new policy; the caller disposes it (the base stays the caller's too).</param>
/// <param name="Reinitialised">Names of the tensors freshly initialised (as in <c>model.safetensors</c>), in the model's order.</param>
/// <param name="Copied">How many tensors were copied from the base.</param>
public sealed record NewHead(VlaPolicy Policy, IReadOnlyList<string> Reinitialised, int Copied);

public sealed partial class VlaPolicy
{
    /// <summary>
    /// A policy for an embodiment of layout <paramref name="to"/>, made from this one (trained for <paramref name="from"/>):
    /// built with <see cref="PolicyConfig.ForLayout"/>, every tensor whose name and shape match copied from this policy,
    /// the rest initialised from <paramref name="seed"/>. The layers that read or write actions (or the state) are
    /// initialised afresh whenever the action (state) size differs, even when their padded shapes happen to match: their
    /// rows were trained for another robot's dimensions. The result holds no normalisation statistics (this policy's
    /// embodiments are of the other layout); the caller adds the new embodiment's.
    /// </summary>
    public NewHead WithNewHead(EmbodimentLayout from, EmbodimentLayout to, long seed)
    {
        var config = Config.ForLayout(to);
        var fresh = Create(config, new Dictionary<string, NormalizationStats>(), seed,
            DeviceName, DTypeName, TokenizerJson);
        try
        {
            var retrained = fresh.LayoutParameterNames(action: from.ActionDim != to.ActionDim, state: from.StateDim != to.StateDim);
            var weights = NamedParameters().ToDictionary(p => p.Name, p => p.Parameter, StringComparer.Ordinal);
            var reinitialised = new List<string>();
            var copied = 0;
            using (no_grad())
            {
                foreach (var (name, target) in fresh.NamedParameters())
                {
                    if (!retrained.Contains(name) && weights.TryGetValue(name, out var source) && source.shape.SequenceEqual(target.shape))
                    {
                        target.copy_(source);
                        copied++;
                    }
                    else reinitialised.Add(name);
                }
            }
            fresh.WeightsChanged(); // nothing can have sampled it yet; called so every write into weights is followed by it
            return new NewHead(fresh, reinitialised, copied);
        }
        catch
        {
            fresh.Dispose();
            throw;
        }
    }

    /// <summary>Checkpoint names of the parameters whose shapes follow the action size and/or the state size, for either family.</summary>
    internal IReadOnlySet<string> LayoutParameterNames(bool action, bool state)
    {
        var wanted = new HashSet<object>(family.LayoutModules(action, state), ReferenceEqualityComparer.Instance);
        return Module.named_modules().Where(m => wanted.Contains(m.module))
            .SelectMany(m => m.module.named_parameters().Select(p => $"{m.name}.{p.name}"))
            .ToHashSet(StringComparer.Ordinal);
    }
}
