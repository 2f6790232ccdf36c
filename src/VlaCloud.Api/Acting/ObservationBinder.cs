using VlaCloud.Client.Contracts;
using VlaCloud.Datasets;
using VlaCloud.Policy;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Checks an observation against the checkpoint's embodiment and turns it into the model's input. Every
/// surface (REST, WebSocket JSON and MessagePack, openpi) goes through here, so they validate alike; errors
/// are keyed by field path, ready for a problem-details <c>errors</c> member.
/// </summary>
public static class ObservationBinder
{
    /// <summary>Smallest accepted image side, pixels.</summary>
    public const int MinImageSide = 8;

    /// <summary>Largest accepted image side, pixels.</summary>
    public const int MaxImageSide = 2048;

    /// <summary>Longest accepted instruction, characters.</summary>
    public const int MaxInstructionLength = 2000;

    /// <summary>Spatial kinds by their wire names.</summary>
    public static readonly IReadOnlyDictionary<string, SpatialKind> SpatialKinds =
        Enum.GetValues<SpatialKind>().ToDictionary(SpatialPrompts.WireName, StringComparer.Ordinal);

    /// <summary>The model input for <paramref name="input"/>, or null with <paramref name="errors"/> filled.</summary>
    public static Observation? Bind(ObservationInput? input, Embodiment embodiment, string normalizationKey, Dictionary<string, string[]> errors, string prefix = "observation")
    {
        if (input is null)
        {
            errors[prefix] = ["The observation is required."];
            return null;
        }

        var images = new List<CameraImage>();
        var given = input.Images ?? new Dictionary<string, ImageInput>();
        foreach (var camera in embodiment.Cameras)
        {
            var path = $"{prefix}.images.{camera.Name}";
            if (!given.TryGetValue(camera.Name, out var image) || image is null)
                errors[path] = [$"Camera '{camera.Name}' of embodiment '{embodiment.Name}' needs an image."];
            else if (Decode(image, path, errors) is { } decoded)
                images.Add(decoded);
        }
        foreach (var unknown in given.Keys.Where(k => embodiment.Cameras.All(c => c.Name != k)))
            errors[$"{prefix}.images.{unknown}"] = [$"Embodiment '{embodiment.Name}' has no camera '{unknown}' (cameras: {string.Join(", ", embodiment.Cameras.Select(c => c.Name))})."];

        var state = input.State;
        if (embodiment.StateDim > 0)
        {
            if (state is null) errors[$"{prefix}.state"] = [$"Embodiment '{embodiment.Name}' needs a state of {embodiment.StateDim} values."];
            else if (state.Length != embodiment.StateDim) errors[$"{prefix}.state"] = [$"The state has {state.Length} values; embodiment '{embodiment.Name}' has {embodiment.StateDim}."];
            else if (state.Any(v => !float.IsFinite(v))) errors[$"{prefix}.state"] = ["The state contains NaN or infinity."];
        }
        else if (state is { Length: > 0 })
        {
            errors[$"{prefix}.state"] = [$"Embodiment '{embodiment.Name}' has no state; send none."];
        }

        if (string.IsNullOrWhiteSpace(input.Instruction)) errors[$"{prefix}.instruction"] = ["The instruction is required."];
        else if (input.Instruction.Length > MaxInstructionLength) errors[$"{prefix}.instruction"] = [$"The instruction is longer than {MaxInstructionLength} characters."];

        return errors.Count == 0 ? new Observation(images, input.Instruction, embodiment.StateDim > 0 ? state : null, normalizationKey) : null;
    }

    /// <summary>Validates options; returns the spatial kind asked for (or null).</summary>
    public static SpatialKind? BindOptions(ActOptions? options, Dictionary<string, string[]> errors, string prefix = "options")
    {
        if (options is null) return null;
        if (options.Steps is < 1 or > 100) errors[$"{prefix}.steps"] = ["Steps must be between 1 and 100."];
        if (options.TimeoutMs is < 1 or > 120_000) errors[$"{prefix}.timeout_ms"] = ["The timeout must be between 1 and 120000 ms."];
        if (options.Spatial is null) return null;
        if (SpatialKinds.TryGetValue(options.Spatial, out var kind)) return kind;
        errors[$"{prefix}.spatial"] = [$"Spatial must be one of {string.Join(", ", SpatialPrompts.WireNames)}."];
        return null;
    }

    private static CameraImage? Decode(ImageInput image, string path, Dictionary<string, string[]> errors)
    {
        if (image.Data is not { Length: > 0 })
        {
            errors[path] = ["The image has no data."];
            return null;
        }
        switch (image.Format)
        {
            case "png" or "jpeg" or "jpg":
                if (RgbImage.Decode(image.Data) is not { } decoded)
                {
                    errors[path] = [$"The data is not a readable {image.Format.ToUpperInvariant()} image."];
                    return null;
                }
                return CheckSize(decoded.Width, decoded.Height, path, errors) ? new CameraImage(decoded.Pixels, decoded.Width, decoded.Height) : null;
            case "raw":
                if (image.Shape is not [var height, var width, 3])
                {
                    errors[path] = ["A raw image needs shape [height, width, 3] (uint8 RGB, HWC)."];
                    return null;
                }
                if (!CheckSize(width, height, path, errors)) return null;
                if (image.Data.Length != height * width * 3)
                {
                    errors[path] = [$"A raw {height}×{width}×3 image needs {height * width * 3} bytes, got {image.Data.Length}."];
                    return null;
                }
                return new CameraImage(image.Data, width, height);
            default:
                errors[path] = [$"Image format '{image.Format}' is not one of png, jpeg, raw."];
                return null;
        }
    }

    private static bool CheckSize(int width, int height, string path, Dictionary<string, string[]> errors)
    {
        if (width is >= MinImageSide and <= MaxImageSide && height is >= MinImageSide and <= MaxImageSide) return true;
        errors[path] = [$"The image is {width}×{height}; each side must be {MinImageSide}–{MaxImageSide} pixels."];
        return false;
    }
}
