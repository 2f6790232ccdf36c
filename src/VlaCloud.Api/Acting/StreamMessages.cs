using System.Text.Json;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Acting;

/// <summary>
/// The <c>/v1/stream</c> wire format. Text frames carry JSON, binary frames MessagePack; both carry the same
/// maps (in JSON, image bytes are base64). Messages are read into plain maps first, so one reader serves
/// both encodings and rejects what it does not know with a reason.
/// </summary>
public static class StreamMessages
{
    /// <summary>Close code: the frame was not valid JSON/MessagePack of a known message (RFC 6455 1007).</summary>
    public const int InvalidPayload = 1007;

    /// <summary>Close code: a text frame on a MessagePack session or a binary frame on a JSON one (1003).</summary>
    public const int UnsupportedData = 1003;

    /// <summary>Close code: a message larger than <see cref="MaxMessageBytes"/> (1009).</summary>
    public const int MessageTooBig = 1009;

    /// <summary>Close code: a well-formed frame the endpoint cannot act on, e.g. an openpi observation that does not fit (1008).</summary>
    public const int PolicyViolation = 1008;


    /// <summary>Close code: an unexpected server error (1011).</summary>
    public const int InternalError = 1011;

    /// <summary>Close code: try again later (RFC 6455 1013): the server is overloaded, or it lost the session's stream slot; reconnect.</summary>
    public const int TryAgainLater = 1013;

    /// <summary>Close code: the API key was revoked or expired during the session (sent within a second of the revocation).</summary>
    public const int KeyRevoked = 4401;

    /// <summary>Close code: the tenant's compute quota ran out during the session.</summary>
    public const int QuotaExhausted = 4429;

    /// <summary>Largest accepted message.</summary>
    public const int MaxMessageBytes = 16 << 20;

    /// <summary>
    /// How many times its size a frame may take once decoded (see <see cref="DecodeBudget"/>): images travel as bytes or
    /// base64, so only a frame made of long lists of numbers comes near it.
    /// </summary>
    public const int MaxExpansion = DecodeBudget.DefaultExpansion;

    /// <summary>
    /// Decodes a frame into a map with string keys; null and a reason when it is not one. Strict: a repeated key, an
    /// unpaired surrogate, or a frame that would take more than <see cref="MaxExpansion"/> times its size once decoded
    /// is refused like malformed input (the session closes with <see cref="InvalidPayload"/>).
    /// </summary>
    public static Dictionary<string, object?>? Decode(ReadOnlySpan<byte> frame, bool binary, out string? error)
    {
        error = null;
        try
        {
            var budget = DecodeBudget.ForMessage(frame.Length, MaxExpansion);
            var value = binary ? MsgPack.Deserialize(frame, budget) : JsonWire.Parse(frame, budget);
            if (value is Dictionary<object, object?> map && map.Keys.All(k => k is string))
                return map.ToDictionary(e => (string)e.Key, e => e.Value);
            if (value is Dictionary<string, object?> json) return json;
            error = "A message must be a map with string keys.";
        }
        catch (FormatException e)
        {
            error = $"The frame is not valid {(binary ? "MessagePack" : "JSON")}: {e.Message}";
        }
        return null;
    }

    /// <summary>Encodes a message as a text (JSON) or binary (MessagePack) frame.</summary>
    public static byte[] Encode(IReadOnlyDictionary<string, object?> message, bool binary) =>
        binary ? MsgPack.Serialize(message) : JsonSerializer.SerializeToUtf8Bytes(message);

    /// <summary>Reads an observation message's fields.</summary>
    public static (ObservationInput? Observation, ActOptions? Options) ReadObservation(Dictionary<string, object?> message, Dictionary<string, string[]> errors)
    {
        var images = new Dictionary<string, ImageInput>();
        if (message.GetValueOrDefault("images") is IDictionary<object, object?> or Dictionary<string, object?>)
        {
            foreach (var (name, value) in Entries(message["images"]))
            {
                if (ReadImage(value, out var image, out var reason)) images[name] = image!;
                else errors[$"images.{name}"] = [reason!];
            }
        }
        else errors["images"] = ["images must be a map of camera name to image."];

        float[]? state = null;
        if (message.GetValueOrDefault("state") is { } rawState)
        {
            state = Numbers(rawState);
            if (state is null) errors["state"] = ["state must be a list of numbers."];
        }
        var instruction = message.GetValueOrDefault("instruction") as string ?? "";

        ActOptions? options = null;
        if (message.GetValueOrDefault("options") is { } rawOptions)
        {
            var o = Entries(rawOptions).ToDictionary(e => e.Key, e => e.Value);
            options = new ActOptions(
                Steps: Int32(o, "steps", errors),
                Seed: Integer(o.GetValueOrDefault("seed")),
                Spatial: o.GetValueOrDefault("spatial") as string,
                TimeoutMs: Int32(o, "timeout_ms", errors),
                Resize: o.GetValueOrDefault("resize") as string);
        }
        return (new ObservationInput(images, state, instruction), options);
    }

    private static bool ReadImage(object? value, out ImageInput? image, out string? reason)
    {
        image = null;
        reason = null;
        var fields = Entries(value).ToDictionary(e => e.Key, e => e.Value);
        var format = fields.GetValueOrDefault("format") as string;
        byte[]? data = fields.GetValueOrDefault("data") switch
        {
            byte[] bytes => bytes,
            string base64 => TryBase64(base64),
            _ => null,
        };
        if (format is null || data is null)
        {
            reason = "An image needs format (png, jpeg or raw) and data (bytes, or base64 in JSON).";
            return false;
        }
        var shape = fields.GetValueOrDefault("shape") is { } rawShape ? Numbers(rawShape)?.Select(v => v is >= 0 and <= int.MaxValue ? (int)v : -1).ToArray() : null;
        image = new ImageInput(format, data, shape);
        return true;
    }

    private static byte[]? TryBase64(string text)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static IEnumerable<(string Key, object? Value)> Entries(object? map) => map switch
    {
        Dictionary<string, object?> s => s.Select(e => (e.Key, e.Value)),
        IDictionary<object, object?> o => o.Where(e => e.Key is string).Select(e => ((string)e.Key, e.Value)),
        _ => [],
    };

    private static float[]? Numbers(object? value) =>
        value is List<object?> list && list.All(v => v is long or double or float or ulong)
            ? list.Select(v => Convert.ToSingle(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()
            : null;

    /// <summary>An option that must be an int when given; a number past int's range is an error, not a wrapped value.</summary>
    private static int? Int32(Dictionary<string, object?> options, string name, Dictionary<string, string[]> errors)
    {
        if (options.GetValueOrDefault(name) is not { } raw) return null;
        if (Integer(raw) is { } value and >= int.MinValue and <= int.MaxValue) return (int)value;
        errors[$"options.{name}"] = [$"{name} must be an integer."];
        return null;
    }

    private static long? Integer(object? value) => value switch
    {
        long l => l,
        double d when d == Math.Floor(d) && Math.Abs(d) < 9e15 => (long)d,
        _ => null,
    };
}
