using System.Text.Json;
using VlaCloud.Contracts;
using VlaCloud.Contracts.Wire;

namespace VlaCloud.Api.Acting;

/// <summary>
/// The <c>/v1/stream</c> framing on the server's side. Text frames carry JSON, binary frames MessagePack; both carry
/// the same maps, which <see cref="StreamWire"/> turns into the typed messages the SDK writes and reads. Frames are
/// decoded into plain maps first, so one reader serves both encodings and rejects what it does not know with a reason.
/// The close codes are <see cref="StreamCloseCodes"/>, named here too for the server's code.
/// </summary>
public static class StreamMessages
{
    /// <summary>Close code: the frame was not valid JSON/MessagePack of a known message (RFC 6455 1007).</summary>
    public const int InvalidPayload = StreamCloseCodes.InvalidPayload;

    /// <summary>Close code: a text frame on a MessagePack session or a binary frame on a JSON one (1003).</summary>
    public const int UnsupportedData = StreamCloseCodes.UnsupportedData;

    /// <summary>Close code: a message larger than <see cref="MaxMessageBytes"/> (1009).</summary>
    public const int MessageTooBig = StreamCloseCodes.MessageTooBig;

    /// <summary>Close code: a well-formed frame the endpoint cannot act on, e.g. an openpi observation that does not fit (1008).</summary>
    public const int PolicyViolation = StreamCloseCodes.PolicyViolation;


    /// <summary>Close code: an unexpected server error (1011).</summary>
    public const int InternalError = StreamCloseCodes.InternalError;

    /// <summary>Close code: try again later (RFC 6455 1013): the server is overloaded, or it lost the session's stream slot; reconnect.</summary>
    public const int TryAgainLater = StreamCloseCodes.TryAgainLater;

    /// <summary>Close code: the API key was revoked or expired during the session (sent within a second of the revocation).</summary>
    public const int KeyRevoked = StreamCloseCodes.KeyRevoked;

    /// <summary>Close code: the tenant's compute quota ran out during the session.</summary>
    public const int QuotaExhausted = StreamCloseCodes.QuotaExhausted;

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
}
