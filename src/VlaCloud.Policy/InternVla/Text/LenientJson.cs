using System.Globalization;
using System.Text;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// Reads the JSON-like values in what a model writes: prose and code fences around them are skipped, single quotes and
/// bare words are accepted, and a value cut off by the end of the text keeps what was read, marked as not closed. It
/// never throws on its input; it reads each character at most once, and nesting deeper than
/// <see cref="MaxDepth"/> ends the value there.
/// </summary>
internal static class LenientJson
{
    /// <summary>Deepest nesting read.</summary>
    public const int MaxDepth = 32;

    /// <summary>A value read from the text.</summary>
    public abstract record Node;

    /// <summary>An object; keys keep their order, repeats included.</summary>
    public sealed record ObjectNode(IReadOnlyList<(string Key, Node Value)> Members) : Node;

    /// <summary>An array; <see cref="Closed"/> is false when the text ended (or broke) inside it.</summary>
    public sealed record ArrayNode(IReadOnlyList<Node> Items, bool Closed) : Node;

    /// <summary>A finite number.</summary>
    public sealed record NumberNode(double Value) : Node;

    /// <summary>A string; <see cref="Closed"/> is false when the text ended inside it.</summary>
    public sealed record StringNode(string Value, bool Closed) : Node;

    /// <summary>A bare word (true, false, null, or anything else made of letters).</summary>
    public sealed record WordNode(string Value) : Node;

    /// <summary>The top-level arrays and objects found in the text, in order.</summary>
    public static List<Node> ReadAll(string text)
    {
        var values = new List<Node>();
        var reader = new Reader(text);
        while (reader.SkipTo('[', '{'))
        {
            var start = reader.Position;
            if (reader.Value(0) is { } value && value is ArrayNode or ObjectNode) values.Add(value);
            if (reader.Position == start) reader.Position++;
        }
        return values;
    }

    private sealed class Reader(string text)
    {
        public int Position;

        public bool SkipTo(char a, char b)
        {
            while (Position < text.Length && text[Position] != a && text[Position] != b) Position++;
            return Position < text.Length;
        }

        /// <summary>The value at the current position, or null when none starts there (the position is then unchanged).</summary>
        public Node? Value(int depth)
        {
            SkipSpace();
            if (Position >= text.Length) return null;
            var c = text[Position];
            if (c is '[' or '{')
            {
                if (depth >= MaxDepth) return null;
                return c == '[' ? Array(depth) : Object(depth);
            }
            if (c is '"' or '\'') return String();
            if (c is '-' or '+' or '.' || char.IsAsciiDigit(c)) return Number();
            if (char.IsLetter(c) || c == '_') return Word();
            return null;
        }

        private ArrayNode Array(int depth)
        {
            Position++;
            var items = new List<Node>();
            while (true)
            {
                SkipSpace();
                if (Position >= text.Length) return new ArrayNode(items, false);
                if (text[Position] == ']')
                {
                    Position++;
                    return new ArrayNode(items, true);
                }
                if (text[Position] == ',')
                {
                    Position++;
                    continue;
                }
                var item = Value(depth + 1);
                if (item is null) return new ArrayNode(items, false);
                items.Add(item);
            }
        }

        private ObjectNode Object(int depth)
        {
            Position++;
            var members = new List<(string, Node)>();
            while (true)
            {
                SkipSpace();
                if (Position >= text.Length) return new ObjectNode(members);
                var c = text[Position];
                if (c == '}')
                {
                    Position++;
                    return new ObjectNode(members);
                }
                if (c == ',')
                {
                    Position++;
                    continue;
                }
                string key;
                if (c is '"' or '\'') key = String().Value;
                else if (char.IsLetter(c) || c == '_') key = Word().Value;
                else return new ObjectNode(members);
                SkipSpace();
                if (Position >= text.Length || text[Position] != ':') return new ObjectNode(members);
                Position++;
                var value = Value(depth + 1);
                if (value is null) return new ObjectNode(members);
                members.Add((key, value));
            }
        }

        private StringNode String()
        {
            var quote = text[Position++];
            var value = new StringBuilder();
            while (Position < text.Length)
            {
                var c = text[Position++];
                if (c == quote) return new StringNode(value.ToString(), true);
                if (c != '\\' || Position >= text.Length)
                {
                    value.Append(c);
                    continue;
                }
                var escaped = text[Position++];
                switch (escaped)
                {
                    case 'n': value.Append('\n'); break;
                    case 't': value.Append('\t'); break;
                    case 'r': value.Append('\r'); break;
                    case 'b': value.Append('\b'); break;
                    case 'f': value.Append('\f'); break;
                    case 'u' when Position + 4 <= text.Length && ushort.TryParse(text.AsSpan(Position, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var code):
                        value.Append((char)code);
                        Position += 4;
                        break;
                    default: value.Append(escaped); break;
                }
            }
            return new StringNode(value.ToString(), false);
        }

        private Node? Number()
        {
            var start = Position;
            if (text[Position] is '-' or '+') Position++;
            while (Position < text.Length && (char.IsAsciiDigit(text[Position]) || text[Position] == '.')) Position++;
            if (Position < text.Length && text[Position] is 'e' or 'E')
            {
                var mark = Position++;
                if (Position < text.Length && text[Position] is '-' or '+') Position++;
                if (Position < text.Length && char.IsAsciiDigit(text[Position]))
                    while (Position < text.Length && char.IsAsciiDigit(text[Position])) Position++;
                else Position = mark;
            }
            var ok = double.TryParse(text.AsSpan(start, Position - start), NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number);
            // A number the text ends in may be cut short: it is read, but as a word, so it is never taken as a coordinate.
            if (!ok || Position >= text.Length) return Position > start ? new WordNode(text[start..Position]) : null;
            return new NumberNode(number);
        }

        private WordNode Word()
        {
            var start = Position;
            while (Position < text.Length && (char.IsLetterOrDigit(text[Position]) || text[Position] == '_')) Position++;
            return new WordNode(text[start..Position]);
        }

        private void SkipSpace()
        {
            while (Position < text.Length && char.IsWhiteSpace(text[Position])) Position++;
        }
    }
}
