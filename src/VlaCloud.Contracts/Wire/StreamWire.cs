using VlaCloud.Contracts;

namespace VlaCloud.Contracts.Wire;

/// <summary>
/// Every <c>/v1/stream</c> message as a wire map and back, in both directions: the server writes every reply through
/// <see cref="ToMap(StreamReply, object?)"/> and the SDK reads it through <see cref="FromMap"/>; the SDK writes every
/// request through <see cref="ToMap(StreamRequest)"/> and the server reads it through <see cref="RequestFromMap"/>. So a
/// field exists on both ends or on neither. The maps are what <see cref="MsgPack"/> encodes and what JSON text frames
/// carry (keys in snake_case; in JSON, image bytes are base64).
/// </summary>
public static class StreamWire
{
    /// <summary>The reply as the map sent on the wire.</summary>
    /// <param name="reply">The reply.</param>
    /// <param name="echoId">The id exactly as the client sent it (a client may use any JSON value); the reply's own <see cref="StreamReply.Id"/> when omitted.</param>
    public static Dictionary<string, object?> ToMap(StreamReply reply, object? echoId = null)
    {
        var id = echoId ?? reply.Id;
        switch (reply)
        {
            case StreamActions actions:
                var map = new Dictionary<string, object?>
                {
                    ["type"] = "actions", ["id"] = id, ["actions"] = actions.Actions, ["seed"] = actions.Seed, ["timing"] = Timing(actions.Timing),
                };
                if (actions.Spatial is { } spatial)
                {
                    var answer = new Dictionary<string, object?> { ["kind"] = spatial.Kind, ["points"] = spatial.Points };
                    if (spatial.Text is { } text) answer["text"] = text;
                    map["spatial"] = answer;
                }
                if (actions.Guide is { } guide) map["guide"] = new Dictionary<string, object?> { ["target"] = guide.Target, ["destination"] = guide.Destination };
                return map;
            case StreamAction action:
                var one = new Dictionary<string, object?>
                {
                    ["type"] = "action", ["id"] = id, ["step"] = action.Step, ["replanned"] = action.Replanned, ["action"] = action.Action,
                };
                if (action.Timing is { } timing) one["timing"] = Timing(timing);
                return one;
            case StreamBusy busy:
                return new() { ["type"] = "busy", ["id"] = id, ["retry_after_ms"] = (long)busy.RetryAfter.TotalMilliseconds };
            case StreamError error:
                var e = new Dictionary<string, object?> { ["type"] = "error", ["id"] = id, ["status"] = error.Status, ["title"] = error.Title };
                if (error.Detail is not null) e["detail"] = error.Detail;
                if (error.Errors is not null) e["errors"] = error.Errors.ToDictionary(x => x.Key, x => (object?)x.Value);
                if (error.Code is not null) e["code"] = error.Code;
                if (error.RetryAfter is { } retry) e["retry_after_ms"] = (long)Math.Max(1, retry.TotalMilliseconds);
                return e;
            case StreamPong:
                return new() { ["type"] = "pong", ["id"] = id };
            case StreamResetDone:
                return new() { ["type"] = "reset", ["id"] = id, ["ok"] = true };
            default:
                throw new ArgumentException($"{reply.GetType().Name} is not a reply the server sends.", nameof(reply));
        }
    }

    /// <summary>
    /// A reply read from a decoded frame; null for a message type this version does not know (a newer server's), which
    /// a client skips.
    /// </summary>
    /// <exception cref="InvalidDataException">A known message without a field it must have, or a field of the wrong kind.</exception>
    public static StreamReply? FromMap(IReadOnlyDictionary<string, object?> message)
    {
        var id = message.GetValueOrDefault("id") is { } rawId && rawId is long or double ? Long(rawId) : (long?)null;
        switch (message.GetValueOrDefault("type") as string)
        {
            case "actions":
                SpatialOutput? spatial = null;
                if (message.GetValueOrDefault("spatial") is { } rawSpatial)
                {
                    var s = Map(rawSpatial);
                    spatial = new SpatialOutput(Text(s["kind"]), List(s["points"]).Select(Floats).ToArray(), s.GetValueOrDefault("text") as string);
                }
                GuideOutput? guide = null;
                if (message.GetValueOrDefault("guide") is { } rawGuide)
                {
                    var g = Map(rawGuide);
                    guide = new GuideOutput(OptionalFloats(g.GetValueOrDefault("target")), OptionalFloats(g.GetValueOrDefault("destination")));
                }
                return new StreamActions(id, List(message["actions"]).Select(Floats).ToArray(), Long(message["seed"]), Timing(message["timing"])!, spatial, guide);
            case "action":
                return new StreamAction(id, Long(message["step"]), message.GetValueOrDefault("replanned") is true, Floats(message["action"]), Timing(message.GetValueOrDefault("timing")));
            case "busy":
                return new StreamBusy(id, TimeSpan.FromMilliseconds(Double(message["retry_after_ms"])));
            case "error":
                var errors = message.GetValueOrDefault("errors") is { } rawErrors
                    ? Map(rawErrors).ToDictionary(e => e.Key, e => List(e.Value).Select(Text).ToArray())
                    : null;
                return new StreamError(id, (int)Long(message["status"]), Text(message["title"]), message.GetValueOrDefault("detail") as string, errors,
                    message.GetValueOrDefault("code") as string,
                    message.GetValueOrDefault("retry_after_ms") is { } retry ? TimeSpan.FromMilliseconds(Double(retry)) : null);
            case "pong":
                return new StreamPong(id);
            case "reset":
                return new StreamResetDone(id);
            default:
                return null;
        }
    }

    /// <summary>The first message of a session, as the map sent on the wire.</summary>
    public static Dictionary<string, object?> ToMap(StreamSessionInfo session) => new()
    {
        ["type"] = "session",
        ["session_id"] = session.SessionId,
        ["checkpoint"] = new Dictionary<string, object?>
        {
            ["id"] = session.Checkpoint.Id.ToString(), ["model"] = session.Checkpoint.Model, ["version"] = session.Checkpoint.Version,
            ["embodiment"] = session.Checkpoint.Embodiment,
        },
        ["embodiment"] = new Dictionary<string, object?>
        {
            ["name"] = session.Embodiment.Name,
            ["action_dim"] = session.Embodiment.ActionDim,
            ["state_dim"] = session.Embodiment.StateDim,
            ["action_names"] = session.Embodiment.ActionNames.ToList(),
            ["cameras"] = session.Embodiment.Cameras.Select(c => new Dictionary<string, object?> { ["name"] = c.Name, ["width"] = c.Width, ["height"] = c.Height }).ToList(),
            ["control_hz"] = session.Embodiment.ControlHz,
            ["chunk_length"] = session.Embodiment.ChunkLength,
        },
        ["encoding"] = session.Encoding,
        ["mode"] = session.Mode,
    };

    /// <summary>The session message read from a decoded frame.</summary>
    /// <exception cref="InvalidDataException">The message is not a session message, or lacks one of its fields.</exception>
    public static StreamSessionInfo SessionFromMap(IReadOnlyDictionary<string, object?> message)
    {
        if (message.GetValueOrDefault("type") as string != "session") throw new InvalidDataException("The server's first message was not a session message.");
        var checkpoint = Map(message["checkpoint"]);
        var embodiment = Map(message["embodiment"]);
        return new StreamSessionInfo(
            Text(message["session_id"]),
            new ResolvedCheckpoint(Guid.Parse(Text(checkpoint["id"]), System.Globalization.CultureInfo.InvariantCulture), Text(checkpoint["model"]),
                (int)Long(checkpoint["version"]), Text(checkpoint["embodiment"])),
            new StreamEmbodiment(Text(embodiment["name"]), (int)Long(embodiment["action_dim"]), (int)Long(embodiment["state_dim"]),
                List(embodiment.GetValueOrDefault("action_names") ?? new List<object?>()).Select(Text).ToList(),
                List(embodiment["cameras"]).Select(Map).Select(c => new CameraDto(Text(c["name"]), (int)Long(c["width"]), (int)Long(c["height"]))).ToList(),
                Double(embodiment["control_hz"]), (int)Long(embodiment["chunk_length"])),
            Text(message["encoding"]), Text(message["mode"]));
    }

    /// <summary>A client message as the map sent on the wire.</summary>
    public static Dictionary<string, object?> ToMap(StreamRequest request)
    {
        switch (request)
        {
            case StreamObservation { Observation: var observation, Options: var options }:
                var images = observation.Images.ToDictionary(i => i.Key, i =>
                {
                    var image = new Dictionary<string, object?> { ["format"] = i.Value.Format, ["data"] = i.Value.Data };
                    if (i.Value.Shape is { } shape) image["shape"] = shape;
                    return (object?)image;
                });
                var message = new Dictionary<string, object?> { ["type"] = "observation", ["id"] = request.Id, ["images"] = images, ["instruction"] = observation.Instruction };
                if (observation.State is { } state) message["state"] = state;
                if (options is not null)
                {
                    var o = new Dictionary<string, object?>();
                    if (options.Steps is { } steps) o["steps"] = steps;
                    if (options.Seed is { } seed) o["seed"] = seed;
                    if (options.Spatial is { } spatial) o["spatial"] = spatial;
                    if (options.TimeoutMs is { } timeoutMs) o["timeout_ms"] = timeoutMs;
                    if (options.Resize is { } resize) o["resize"] = resize;
                    if (options.CfgScale is { } cfg) o["cfg_scale"] = cfg;
                    message["options"] = o;
                }
                return message;
            case StreamPing:
                return new() { ["type"] = "ping", ["id"] = request.Id };
            case StreamReset:
                return new() { ["type"] = "reset", ["id"] = request.Id };
            case StreamClose:
                return new() { ["type"] = "close" };
            default:
                throw new ArgumentException($"{request.GetType().Name} is not a message a client sends.", nameof(request));
        }
    }

    /// <summary>
    /// A client message read from a decoded frame (the server's side). Lenient where the client chose (a missing
    /// instruction is empty), strict where a wrong value would be guessed at: every field that does not fit is named in
    /// <paramref name="errors"/> (e.g. <c>images.main</c>, <c>options.steps</c>) and the observation is then not to be acted on.
    /// </summary>
    /// <param name="message">The decoded frame.</param>
    /// <param name="errors">Receives the fields that do not fit.</param>
    /// <returns>The message; null for a type this version does not know (the server answers it with an error).</returns>
    public static StreamRequest? RequestFromMap(IReadOnlyDictionary<string, object?> message, Dictionary<string, string[]> errors)
    {
        var id = message.GetValueOrDefault("id");
        switch (message.GetValueOrDefault("type") as string)
        {
            case "ping":
                return new StreamPing(id);
            case "reset":
                return new StreamReset(id);
            case "close":
                return new StreamClose();
            case "observation":
                var (observation, options) = ReadObservation(message, errors);
                return new StreamObservation(id, observation, options);
            default:
                return null;
        }
    }

    private static (ObservationInput Observation, ActOptions? Options) ReadObservation(IReadOnlyDictionary<string, object?> message, Dictionary<string, string[]> errors)
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
            double? cfgScale = null;
            if (o.GetValueOrDefault("cfg_scale") is { } rawCfg)
            {
                if (rawCfg is long or double or float or ulong) cfgScale = Double(rawCfg);
                else errors["options.cfg_scale"] = ["cfg_scale must be a number."];
            }
            options = new ActOptions(
                Steps: Int32(o, "steps", errors),
                Seed: Integer(o.GetValueOrDefault("seed")),
                Spatial: o.GetValueOrDefault("spatial") as string,
                TimeoutMs: Int32(o, "timeout_ms", errors),
                Resize: o.GetValueOrDefault("resize") as string,
                CfgScale: cfgScale);
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

    private static Dictionary<string, object?> Timing(ActTiming timing) => new()
    {
        ["queue_ms"] = timing.QueueMs, ["compute_ms"] = timing.ComputeMs, ["total_ms"] = timing.TotalMs, ["batch_size"] = timing.BatchSize,
    };

    private static ActTiming? Timing(object? value)
    {
        if (value is null) return null;
        var t = Map(value);
        return new ActTiming(Double(t["queue_ms"]), Double(t["compute_ms"]), Double(t["total_ms"]), (int)Long(t["batch_size"]));
    }

    /// <summary>A map with string keys, as JSON or MessagePack decoding gives it.</summary>
    public static Dictionary<string, object?> Map(object? value) => value switch
    {
        Dictionary<string, object?> map => map,
        IDictionary<object, object?> map => map.Where(e => e.Key is string).ToDictionary(e => (string)e.Key, e => e.Value),
        _ => throw new InvalidDataException("Expected a map in the server's message."),
    };

    private static List<object?> List(object? value) => value as List<object?> ?? throw new InvalidDataException("Expected a list in the server's message.");

    private static float[] Floats(object? value) => List(value).Select(v => (float)Double(v)).ToArray();

    private static float[]? OptionalFloats(object? value) => value is null ? null : Floats(value);

    private static string Text(object? value) => value as string ?? throw new InvalidDataException("Expected a string in the server's message.");

    private static long Long(object? value) => value switch
    {
        long l => l,
        double d => (long)d,
        float f => (long)f,
        ulong u => (long)u,
        int i => i,
        _ => throw new InvalidDataException("Expected an integer in the server's message."),
    };

    private static double Double(object? value) => value switch
    {
        double d => d,
        float f => f,
        long l => l,
        ulong u => u,
        int i => i,
        _ => throw new InvalidDataException("Expected a number in the server's message."),
    };
}
