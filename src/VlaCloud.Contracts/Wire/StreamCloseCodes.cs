namespace VlaCloud.Contracts.Wire;

/// <summary>
/// The close codes a <c>/v1/stream</c> or <c>/v1/openpi</c> session ends with (docs/acting.md), shared by the server
/// that sends them and the SDK that turns them into errors. 1xxx are RFC 6455's; 4xxx are VlaCloud's, shaped after the
/// HTTP status they stand for.
/// </summary>
public static class StreamCloseCodes
{
    /// <summary>The client or the server ended the session as agreed (1000).</summary>
    public const int Normal = 1000;

    /// <summary>A text frame on a MessagePack session or a binary frame on a JSON one (1003).</summary>
    public const int UnsupportedData = 1003;

    /// <summary>The frame was not valid JSON/MessagePack of a known message (1007).</summary>
    public const int InvalidPayload = 1007;

    /// <summary>A well-formed frame the endpoint cannot act on, e.g. an openpi observation that does not fit (1008).</summary>
    public const int PolicyViolation = 1008;

    /// <summary>A message larger than the server accepts (1009).</summary>
    public const int MessageTooBig = 1009;

    /// <summary>An unexpected server error (1011).</summary>
    public const int InternalError = 1011;

    /// <summary>Try again later (1013): the server is overloaded, or it lost the session's stream slot; reconnect.</summary>
    public const int TryAgainLater = 1013;

    /// <summary>The API key was revoked or expired during the session (sent within a second of the revocation).</summary>
    public const int KeyRevoked = 4401;

    /// <summary>The tenant's compute quota ran out during the session.</summary>
    public const int QuotaExhausted = 4429;
}
