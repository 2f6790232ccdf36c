using System.Security.Cryptography;

namespace VlaCloud.Registry.Artifacts;

/// <summary>Hashing helpers shared by the stores.</summary>
public static class Sha256Hex
{
    /// <summary>Whether <paramref name="value"/> is 64 hex characters.</summary>
    public static bool IsValid(string? value) =>
        value is { Length: 64 } && value.All(char.IsAsciiHexDigit);

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/>, hashing on the way; returns (hex, bytes).</summary>
    public static async Task<(string Sha256, long Size)> CopyAsync(Stream source, Stream destination, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        long size = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            size += read;
        }
        return (Convert.ToHexStringLower(hash.GetHashAndReset()), size);
    }

    /// <summary>The SHA-256 of a stream's remaining bytes.</summary>
    public static async Task<string> OfAsync(Stream source, CancellationToken cancellationToken) =>
        Convert.ToHexStringLower(await SHA256.HashDataAsync(source, cancellationToken));

    /// <summary>A hex SHA-256 as the base64 of its 32 bytes, the form of S3's <c>x-amz-checksum-sha256</c>.</summary>
    public static string ToBase64(string sha256Hex) => Convert.ToBase64String(Convert.FromHexString(sha256Hex));
}
