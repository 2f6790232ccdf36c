using VlaCloud.Contracts;
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
    /// <summary>Longest accepted instruction, characters.</summary>
    public const int MaxInstructionLength = 2000;

    /// <summary>How far an image's aspect ratio may be from its camera's before <c>options.resize</c> must say what to do.</summary>
    public const double AspectTolerance = 0.05;

    /// <summary><c>options.resize</c>: centre the image on black borders to its camera's aspect ratio.</summary>
    public const string Pad = "pad";

    /// <summary><c>options.resize</c>: leave the image as it is; the model stretches it to its input size.</summary>
    public const string Stretch = "stretch";

    /// <summary>Spatial kinds by their wire names.</summary>
    public static readonly IReadOnlyDictionary<string, SpatialKind> SpatialKinds =
        Enum.GetValues<SpatialKind>().ToDictionary(SpatialPrompts.WireName, StringComparer.Ordinal);

    /// <summary>
    /// The model input for <paramref name="input"/>, or null with <paramref name="errors"/> filled. Images may be at
    /// most their camera's size (and <see cref="ImageLimits.MaxSide"/>): an encoded image is measured from its header
    /// and refused before any pixel is decoded. <paramref name="resize"/> is the request's <c>options.resize</c>.
    /// </summary>
    public static Observation? Bind(ObservationInput? input, Embodiment embodiment, string normalizationKey, Dictionary<string, string[]> errors,
        string? resize = null, string prefix = "observation")
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
            else if (Decode(image, camera, resize, path, errors) is { } decoded)
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
        if (options.CfgScale is { } cfg && !(cfg >= 0 && cfg <= 100)) errors[$"{prefix}.cfg_scale"] = ["cfg_scale must be between 0 and 100."];
        if (options.TimeoutMs is < 1 or > 120_000) errors[$"{prefix}.timeout_ms"] = ["The timeout must be between 1 and 120000 ms."];
        if (options.Resize is not (null or Pad or Stretch)) errors[$"{prefix}.resize"] = [$"resize must be {Pad} or {Stretch} (or absent, to refuse images of another aspect ratio than their camera's)."];
        if (options.Spatial is null) return null;
        if (SpatialKinds.TryGetValue(options.Spatial, out var kind)) return kind;
        errors[$"{prefix}.spatial"] = [$"Spatial must be one of {string.Join(", ", SpatialPrompts.WireNames)}."];
        return null;
    }

    private static CameraImage? Decode(ImageInput image, EmbodimentCamera camera, string? resize, string path, Dictionary<string, string[]> errors)
    {
        if (image.Data is not { Length: > 0 })
        {
            errors[path] = ["The image has no data."];
            return null;
        }
        var (maxWidth, maxHeight) = (Math.Min(camera.Width, ImageLimits.MaxSide), Math.Min(camera.Height, ImageLimits.MaxSide));
        switch (image.Format)
        {
            case "png" or "jpeg" or "jpg":
                var decoding = RgbImage.Decode(image.Data, maxWidth, maxHeight);
                switch (decoding.Status)
                {
                    case ImageDecodeStatus.NotAnImage:
                        errors[path] = [$"The data is not a readable {image.Format.ToUpperInvariant()} image."];
                        return null;
                    case ImageDecodeStatus.TooLarge:
                        // Refused from the header: nothing was decoded.
                        errors[path] = [TooLarge(decoding.Header!.Width, decoding.Header.Height, camera, maxWidth, maxHeight)];
                        return null;
                    case ImageDecodeStatus.Unreadable:
                        errors[path] = [$"The {decoding.Header!.Format.ToUpperInvariant()} image's pixels cannot be decoded."];
                        return null;
                }
                var decoded = decoding.Image!;
                return Fit(decoded.Pixels, decoded.Width, decoded.Height, camera, resize, path, errors);
            case "raw":
                if (image.Shape is not [var height, var width, 3])
                {
                    errors[path] = ["A raw image needs shape [height, width, 3] (uint8 RGB, HWC)."];
                    return null;
                }
                if (width < 1 || height < 1 || width > maxWidth || height > maxHeight)
                {
                    errors[path] = [TooLarge(width, height, camera, maxWidth, maxHeight)];
                    return null;
                }
                if (image.Data.Length != height * width * 3)
                {
                    errors[path] = [$"A raw {height}×{width}×3 image needs {height * width * 3} bytes, got {image.Data.Length}."];
                    return null;
                }
                return Fit(image.Data, width, height, camera, resize, path, errors);
            default:
                errors[path] = [$"Image format '{image.Format}' is not one of png, jpeg, raw."];
                return null;
        }
    }

    private static string TooLarge(int width, int height, EmbodimentCamera camera, int maxWidth, int maxHeight) =>
        $"The image is {width}×{height}; camera '{camera.Name}' takes at most {maxWidth}×{maxHeight} (its size, {camera.Width}×{camera.Height}, "
        + $"and at most {ImageLimits.MaxSide} pixels per side) and at least {ImageLimits.MinSide} pixels per side.";

    /// <summary>The image as the model gets it: its size checked, its aspect ratio matched to the camera's or resized as asked.</summary>
    private static CameraImage? Fit(byte[] rgb, int width, int height, EmbodimentCamera camera, string? resize, string path, Dictionary<string, string[]> errors)
    {
        var minSide = Math.Min(ImageLimits.MinSide, Math.Min(camera.Width, camera.Height));
        if (width < minSide || height < minSide)
        {
            errors[path] = [$"The image is {width}×{height}; each side must be at least {minSide} pixels."];
            return null;
        }
        var cameraAspect = (double)camera.Width / camera.Height;
        if (Math.Abs((double)width / height / cameraAspect - 1) <= AspectTolerance || resize == Stretch) return new CameraImage(rgb, width, height);
        if (resize == Pad) return PadToAspect(rgb, width, height, cameraAspect);
        errors[path] = [$"The image is {width}×{height}, an aspect ratio {(double)width / height:0.###} more than {AspectTolerance:P0} from camera '{camera.Name}''s "
                        + $"{camera.Width}×{camera.Height} ({cameraAspect:0.###}); send options.resize = \"{Pad}\" or \"{Stretch}\" to have it resized."];
        return null;
    }

    /// <summary>Centres the image on black borders, so that its aspect ratio is <paramref name="aspect"/> (never larger than the camera on either side).</summary>
    private static CameraImage PadToAspect(byte[] rgb, int width, int height, double aspect)
    {
        var (paddedWidth, paddedHeight) = (double)width / height > aspect
            ? (width, Math.Max(height, (int)Math.Round(width / aspect)))
            : (Math.Max(width, (int)Math.Round(height * aspect)), height);
        var padded = new byte[paddedWidth * paddedHeight * 3];
        var (left, top) = ((paddedWidth - width) / 2, (paddedHeight - height) / 2);
        for (var y = 0; y < height; y++)
            rgb.AsSpan(y * width * 3, width * 3).CopyTo(padded.AsSpan(((top + y) * paddedWidth + left) * 3));
        return new CameraImage(padded, paddedWidth, paddedHeight);
    }
}
