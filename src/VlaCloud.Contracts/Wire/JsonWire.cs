using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace VlaCloud.Contracts.Wire;

/// <summary>A JSON message refused by <see cref="JsonWire"/>: the path of the offending value and why.</summary>
/// <param name="path">Where, e.g. <c>observation.images.front</c> or <c>cameras[0].name</c>; empty for the whole message.</param>
/// <param name="reason">What is wrong.</param>
public sealed class JsonWireException(string path, string reason)
    : FormatException(path.Length > 0 ? $"{path}: {reason}" : reason)
{
    /// <summary>Where the offending value is; empty for the whole message.</summary>
    public string Path { get; } = path;

    /// <summary>What is wrong with it.</summary>
    public string Reason { get; } = reason;
}

/// <summary>
/// JSON read strictly, into the plain values <see cref="MsgPack"/> decodes to: maps with <see cref="string"/> keys,
/// <see cref="List{T}"/>, <see cref="string"/>, <see cref="long"/>, <see cref="double"/>, <see cref="bool"/>, null.
/// A repeated key, a NUL character or an unpaired surrogate in a string, invalid UTF-8, a number out of range,
/// nesting deeper than <see cref="MaxDepth"/> or a tree past its <see cref="DecodeBudget"/> is refused with the
/// path of the value, as malformed JSON is: none of them has one meaning that every reader (or Postgres) agrees on.
/// </summary>
public static class JsonWire
{
    /// <summary>Deepest nesting accepted, as for MessagePack.</summary>
    public const int MaxDepth = MsgPack.MaxDepth;

    /// <summary>Decodes one JSON value that spans all of <paramref name="json"/>.</summary>
    /// <exception cref="JsonWireException">The JSON is malformed or breaks a rule above.</exception>
    public static object? Parse(ReadOnlySpan<byte> json, DecodeBudget budget) => Walk(json, budget, build: true);

    /// <summary>Checks <paramref name="json"/> by the same rules without building anything (for a body another deserializer reads).</summary>
    /// <exception cref="JsonWireException">The JSON is malformed or breaks a rule above.</exception>
    public static void Check(ReadOnlySpan<byte> json, DecodeBudget budget) => Walk(json, budget, build: false);

    private static object? Walk(ReadOnlySpan<byte> json, DecodeBudget budget, bool build)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
        var path = new List<string>();
        try
        {
            if (!reader.Read()) throw new JsonWireException("", "the message is empty.");
            var value = ReadValue(ref reader, budget, build, path);
            if (reader.Read()) throw new JsonWireException("", "more follows the JSON value.");
            return value;
        }
        catch (JsonException e)
        {
            throw new JsonWireException(PathOf(path), $"not valid JSON: {e.Message}");
        }
        catch (FormatException e) when (e is not JsonWireException)
        {
            // The budget's refusal, located.
            throw new JsonWireException(PathOf(path), e.Message);
        }
    }

    private static object? ReadValue(ref Utf8JsonReader reader, DecodeBudget budget, bool build, List<string> path)
    {
        budget.Charge(DecodeBudget.ValueCost);
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
            {
                var map = build ? new Dictionary<string, object?>(StringComparer.Ordinal) : null;
                var seen = build ? null : new HashSet<string>(StringComparer.Ordinal);
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var key = ReadString(ref reader, budget, path);
                    if (!(map?.TryAdd(key, null) ?? seen!.Add(key)))
                        throw new JsonWireException(PathOf(path), $"the key '{Clip(key)}' appears twice.");
                    path.Add(key);
                    reader.Read();
                    var value = ReadValue(ref reader, budget, build, path);
                    if (map is not null) map[key] = value;
                    path.RemoveAt(path.Count - 1);
                }
                return map;
            }
            case JsonTokenType.StartArray:
            {
                var list = build ? new List<object?>() : null;
                var index = 0;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    budget.Charge(sizeof(long));
                    path.Add($"[{index++}]");
                    var value = ReadValue(ref reader, budget, build, path);
                    list?.Add(value);
                    path.RemoveAt(path.Count - 1);
                }
                return list;
            }
            case JsonTokenType.String:
                return build ? ReadString(ref reader, budget, path) : CheckString(ref reader, budget, path);
            case JsonTokenType.Number:
                if (reader.TryGetInt64(out var integer)) return integer;
                if (reader.TryGetDouble(out var real) && double.IsFinite(real)) return real;
                throw new JsonWireException(PathOf(path), "the number is out of range.");
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            default:
                return null;
        }
    }

    private static string ReadString(ref Utf8JsonReader reader, DecodeBudget budget, List<string> path)
    {
        budget.Charge(2L * reader.ValueSpan.Length);
        string text;
        try
        {
            text = reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw new JsonWireException(PathOf(path), "the text is not valid UTF-8 or has an unpaired surrogate.");
        }
        CheckText(text, path);
        return text;
    }

    /// <summary>The checks of <see cref="ReadString"/> without keeping the text (base64 images can be megabytes).</summary>
    private static string? CheckString(ref Utf8JsonReader reader, DecodeBudget budget, List<string> path)
    {
        budget.Charge(2L * reader.ValueSpan.Length);
        if (!reader.ValueIsEscaped)
        {
            // Unescaped JSON text holds no control character, so only its UTF-8 needs a look.
            if (!Utf8.IsValid(reader.ValueSpan)) throw new JsonWireException(PathOf(path), "the text is not valid UTF-8.");
            return null;
        }
        var buffer = ArrayPool<char>.Shared.Rent(reader.ValueSpan.Length);
        try
        {
            int length;
            try
            {
                length = reader.CopyString(buffer);
            }
            catch (InvalidOperationException)
            {
                throw new JsonWireException(PathOf(path), "the text is not valid UTF-8 or has an unpaired surrogate.");
            }
            CheckText(buffer.AsSpan(0, length), path);
            return null;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(buffer);
        }
    }

    private static void CheckText(ReadOnlySpan<char> text, List<string> path)
    {
        if (text.Contains('\0')) throw new JsonWireException(PathOf(path), "the text contains a NUL character.");
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) throw new JsonWireException(PathOf(path), "the text has an unpaired surrogate.");
        }
    }

    private static string PathOf(List<string> path)
    {
        var text = new StringBuilder();
        foreach (var segment in path)
        {
            if (text.Length > 0 && !segment.StartsWith('[')) text.Append('.');
            text.Append(segment);
        }
        return text.ToString();
    }

    private static string Clip(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
