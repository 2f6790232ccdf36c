using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;
using VlaCloud.Registry.Entities;

namespace VlaCloud.Api.Acting;

/// <summary>
/// Maps an openpi observation dict onto an embodiment. openpi's robots name things their own way
/// (DROID: <c>observation/exterior_image_1_left</c>, <c>observation/joint_position</c> + <c>observation/gripper_position</c>;
/// LIBERO: <c>observation/image</c>, <c>observation/state</c>; ALOHA: <c>images: {cam_high: CHW}</c>, <c>state</c>), so:
/// <list type="bullet">
/// <item>a camera named c is the first of <c>observation/c</c>, <c>observation/c_image</c>, <c>observation/images/c</c>,
/// <c>images/c</c>, <c>c</c>; cameras still unmatched take the remaining image arrays in message order;</item>
/// <item>the state is <c>observation/state</c> or <c>state</c>, else the other numeric 1-D arrays under <c>observation/</c>
/// concatenated in message order (DROID's joints then gripper);</item>
/// <item>the instruction is <c>prompt</c>.</item>
/// </list>
/// Images may be HWC or CHW, uint8 or float in [0, 1].
/// </summary>
public static class OpenPiObservationMapper
{
    /// <summary>The observation, or null with <paramref name="errors"/> saying what is missing.</summary>
    public static ObservationInput? Map(Dictionary<object, object?> message, Embodiment embodiment, Dictionary<string, string[]> errors)
    {
        var flat = new List<(string Key, object? Value)>();
        Flatten(message, "", flat);
        var arrays = flat.Where(e => e.Value is NumpyArray).Select(e => (e.Key, Array: (NumpyArray)e.Value!)).ToList();
        var imageArrays = arrays.Where(a => IsImage(a.Array)).ToList();

        var images = new Dictionary<string, ImageInput>();
        var used = new HashSet<string>();
        foreach (var camera in embodiment.Cameras)
        {
            string[] candidates = [$"observation/{camera.Name}", $"observation/{camera.Name}_image", $"observation/images/{camera.Name}", $"images/{camera.Name}", camera.Name];
            var match = candidates.Select(c => imageArrays.FirstOrDefault(a => a.Key == c)).FirstOrDefault(a => a.Array is not null);
            if (match.Array is null) continue;
            images[camera.Name] = ToImage(match.Array, $"{match.Key}", errors) ?? new ImageInput("raw", []);
            used.Add(match.Key);
        }
        var spare = new Queue<(string Key, NumpyArray Array)>(imageArrays.Where(a => !used.Contains(a.Key)));
        foreach (var camera in embodiment.Cameras.Where(c => !images.ContainsKey(c.Name)))
        {
            if (spare.Count == 0)
            {
                errors[$"observation/{camera.Name}"] = [$"No image for camera '{camera.Name}': send it as 'observation/{camera.Name}' (uint8 HWC)."];
                continue;
            }
            var (key, array) = spare.Dequeue();
            images[camera.Name] = ToImage(array, key, errors) ?? new ImageInput("raw", []);
        }

        float[]? state = null;
        if (embodiment.StateDim > 0)
        {
            var named = arrays.FirstOrDefault(a => a.Key is "observation/state" or "state");
            if (named.Array is not null)
            {
                state = Floats(named.Array, named.Key, errors);
            }
            else
            {
                var parts = arrays.Where(a => a.Key.StartsWith("observation/", StringComparison.Ordinal) && !IsImage(a.Array) && a.Array.Shape.Length <= 1).ToList();
                state = parts.Count == 0 ? null : parts.SelectMany(p => Floats(p.Array, p.Key, errors) ?? []).ToArray();
            }
        }

        var prompt = flat.FirstOrDefault(e => e.Key == "prompt").Value as string;
        return errors.Count == 0 ? new ObservationInput(images, state, prompt ?? "") : null;
    }

    private static void Flatten(Dictionary<object, object?> map, string prefix, List<(string, object?)> into)
    {
        foreach (var (key, value) in map)
        {
            var name = prefix + (key is byte[] bytes ? System.Text.Encoding.UTF8.GetString(bytes) : key.ToString());
            if (value is Dictionary<object, object?> nested) Flatten(nested, name + "/", into);
            else into.Add((name, value));
        }
    }

    private static bool IsImage(NumpyArray array) =>
        array.Shape is [_, _, 3] or [3, _, _] && array.Dtype is "|u1" or "<f4" or "<f8" && array.Count >= 64 * 3;

    private static ImageInput? ToImage(NumpyArray array, string key, Dictionary<string, string[]> errors)
    {
        try
        {
            var bytes = array.ToImageBytes();
            if (array.Shape is [var h, var w, 3]) return new ImageInput("raw", bytes, [h, w, 3]);
            // CHW (as ALOHA sends): transpose to HWC.
            var (height, width) = (array.Shape[1], array.Shape[2]);
            var hwc = new byte[bytes.Length];
            for (var c = 0; c < 3; c++)
                for (var y = 0; y < height; y++)
                    for (var x = 0; x < width; x++)
                        hwc[(y * width + x) * 3 + c] = bytes[(c * height + y) * width + x];
            return new ImageInput("raw", hwc, [height, width, 3]);
        }
        catch (FormatException e)
        {
            errors[key] = [e.Message];
            return null;
        }
    }

    private static float[]? Floats(NumpyArray array, string key, Dictionary<string, string[]> errors)
    {
        try
        {
            return array.ToFloats();
        }
        catch (FormatException e)
        {
            errors[key] = [e.Message];
            return null;
        }
    }
}
