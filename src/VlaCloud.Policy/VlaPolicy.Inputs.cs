using static TorchSharp.torch;

namespace VlaCloud.Policy;

// The inputs every family reads the same way: the cameras' checks, the statistics, the state.
public sealed partial class VlaPolicy
{
    /// <summary>Refuses an observation without images, more cameras than the model takes, or a malformed image.</summary>
    internal void CheckCameras(IReadOnlyList<IReadOnlyList<CameraImage>> perSample)
    {
        if (perSample.Any(s => s.Count == 0)) throw new ArgumentException("every observation needs at least one camera image");
        var cameras = perSample.Max(s => s.Count);
        if (cameras > Config.MaxCameras) throw new ArgumentException($"{cameras} cameras given; the model takes at most {Config.MaxCameras}");
        foreach (var image in perSample.SelectMany(s => s)) image.Validate();
    }

    internal NormalizationStats StatsFor(string? embodiment)
    {
        if (embodiment is null)
        {
            if (normalization.Count == 1) return normalization.Values.First();
            throw new ArgumentException($"the observation names no embodiment and the policy knows {normalization.Count}: {string.Join(", ", normalization.Keys)}");
        }
        return normalization.TryGetValue(embodiment, out var s) ? s
            : throw new ArgumentException($"unknown embodiment '{embodiment}'; the policy knows {string.Join(", ", normalization.Keys)}");
    }

    /// <summary>(B, 2·S) normalised state padded to MaxStateDim followed by its mask, or null when the config has no state.</summary>
    internal Tensor? States(IReadOnlyList<Observation> observations)
    {
        if (!Config.UseState) return null;
        var s = Config.MaxStateDim;
        var data = new float[observations.Count, 2 * s];
        for (var i = 0; i < observations.Count; i++)
        {
            var o = observations[i];
            if (o.State is null) continue; // no state: all masked
            var stats = StatsFor(o.Embodiment);
            var normed = stats.State is null ? o.State : stats.NormalizeState(o.State);
            if (normed.Length > s) throw new ArgumentException($"state has {normed.Length} dims; the model takes at most {s}");
            for (var d = 0; d < normed.Length; d++)
            {
                data[i, d] = normed[d];
                data[i, s + d] = 1f;
            }
        }
        return HostUpload.ToDevice(tensor(data), Device, DType);
    }
}
