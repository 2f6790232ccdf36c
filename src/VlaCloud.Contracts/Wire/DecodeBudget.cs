namespace VlaCloud.Contracts.Wire;

/// <summary>
/// A bound on the memory a decoded message may take, charged as its values are decoded. Every decoded value is an
/// object: a MessagePack integer of one byte, or a JSON <c>0,</c> of two, becomes some 32 bytes, so a frame of
/// tiny numbers would otherwise grow sixteen- to thirty-two-fold once decoded. Large data travels as bytes (an
/// ndarray, a raw or encoded image), which cost what they weigh.
/// </summary>
public sealed class DecodeBudget
{
    /// <summary>What a decoded value costs besides its content: an object header and the reference to it.</summary>
    public const int ValueCost = 32;

    /// <summary>The expansion a message is allowed by default: its decoded form may take this many times its size.</summary>
    public const int DefaultExpansion = 8;

    /// <summary>The budget of a small message, whatever its size: small maps cost more than they weigh and are harmless.</summary>
    public const long Floor = 64 * 1024;

    /// <summary>A budget of <paramref name="bytes"/>.</summary>
    public DecodeBudget(long bytes)
    {
        Limit = bytes;
        Remaining = bytes;
    }

    /// <summary>The budget of a message of <paramref name="messageBytes"/>: that many bytes × <paramref name="expansion"/>, at least <see cref="Floor"/>.</summary>
    public static DecodeBudget ForMessage(long messageBytes, int expansion = DefaultExpansion) => new(Math.Max(Floor, messageBytes * expansion));

    /// <summary>Bytes the decoded message may take.</summary>
    public long Limit { get; }

    /// <summary>What is left of it.</summary>
    public long Remaining { get; private set; }

    /// <summary>Charges <paramref name="bytes"/>.</summary>
    /// <exception cref="FormatException">The budget is spent.</exception>
    public void Charge(long bytes)
    {
        Remaining -= bytes;
        if (Remaining < 0)
            throw new FormatException($"the message would take more than {Limit} bytes once decoded; send large arrays as bytes (an ndarray, or an image), not as lists of numbers.");
    }
}
