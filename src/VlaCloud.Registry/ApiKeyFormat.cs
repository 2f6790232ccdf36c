using System.Security.Cryptography;
using System.Text;

namespace VlaCloud.Registry;

/// <summary>
/// The shape of an API key string: <c>vlc_{prefix}_{secret}</c>. The prefix (12 base32 chars)
/// is stored in clear for lookup; the whole string is stored only as a SHA-256 hash.
/// A hash without a slow KDF is right here because the secret has 160 random bits.
/// </summary>
public static class ApiKeyFormat
{
    private const string Scheme = "vlc";
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>Creates a fresh random key; returns the full string and its lookup prefix.</summary>
    public static (string Key, string Prefix) Generate()
    {
        var prefix = RandomText(12);
        var secret = RandomText(32);
        return ($"{Scheme}_{prefix}_{secret}", prefix);
    }

    /// <summary>Extracts the lookup prefix from a presented key, or null when it is malformed.</summary>
    public static string? TryGetPrefix(string presented)
    {
        var parts = presented.Split('_');
        return parts.Length == 3 && parts[0] == Scheme && parts[1].Length == 12 && parts[2].Length == 32
            ? parts[1]
            : null;
    }

    /// <summary>SHA-256 of the key string.</summary>
    public static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));

    /// <summary>Constant-time comparison of a presented key with a stored hash.</summary>
    public static bool Matches(string presented, byte[] storedHash) =>
        CryptographicOperations.FixedTimeEquals(Hash(presented), storedHash);

    private static string RandomText(int length)
    {
        Span<byte> bytes = stackalloc byte[length];
        RandomNumberGenerator.Fill(bytes);
        var chars = new char[length];
        for (var i = 0; i < length; i++) chars[i] = Alphabet[bytes[i] & 31];
        return new string(chars);
    }
}
