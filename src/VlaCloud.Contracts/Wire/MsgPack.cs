using System.Buffers.Binary;
using System.Text;

namespace VlaCloud.Contracts.Wire;

/// <summary>
/// A small MessagePack codec over plain .NET values, written to match Python's <c>msgpack</c> (1.x,
/// <c>use_bin_type=True</c>, <c>raw=False</c>) byte for byte: integers in their smallest encoding, floats
/// as float64 (<see cref="float"/> as float32), <see cref="string"/> as str, <see cref="byte"/>[] as bin,
/// maps in insertion order. Decoding yields <see cref="Dictionary{TKey,TValue}"/> of object keys (str keys
/// as <see cref="string"/>, bin keys as <see cref="byte"/>[]), <see cref="List{T}"/>, <see cref="long"/>
/// or <see cref="ulong"/>, <see cref="double"/>, <see cref="float"/>, <see cref="bool"/>, null.
/// No type is ever instantiated from the payload (unlike pickle), so untrusted input is safe to decode.
/// </summary>
public static class MsgPack
{
    /// <summary>Deepest nesting accepted when decoding; deeper input is refused rather than overflowing the stack.</summary>
    public const int MaxDepth = 64;

    /// <summary>Encodes <paramref name="value"/>.</summary>
    public static byte[] Serialize(object? value)
    {
        var writer = new Writer();
        writer.Write(value);
        return writer.ToArray();
    }

    /// <summary>Decodes one value that spans all of <paramref name="data"/>.</summary>
    /// <exception cref="FormatException">The bytes are not one well-formed MessagePack value.</exception>
    public static object? Deserialize(ReadOnlySpan<byte> data) => Deserialize(data, null);

    /// <summary>
    /// Decodes one value that spans all of <paramref name="data"/>, within <paramref name="budget"/> when one is given
    /// (a server decoding what a client sent gives one).
    /// </summary>
    /// <exception cref="FormatException">The bytes are not one well-formed MessagePack value, a map repeats a key, or the budget is spent.</exception>
    public static object? Deserialize(ReadOnlySpan<byte> data, DecodeBudget? budget)
    {
        var reader = new Reader(data, budget);
        var value = reader.Read(0);
        if (reader.Position != data.Length) throw new FormatException($"{data.Length - reader.Position} bytes follow the MessagePack value.");
        return value;
    }

    /// <summary>Key equality for decoded maps: bin keys compare by content, like Python's bytes.</summary>
    public sealed class KeyComparer : IEqualityComparer<object>
    {
        /// <summary>The shared instance.</summary>
        public static readonly KeyComparer Instance = new();

        /// <inheritdoc />
        public new bool Equals(object? x, object? y) => x is byte[] a && y is byte[] b ? a.AsSpan().SequenceEqual(b) : object.Equals(x, y);

        /// <inheritdoc />
        public int GetHashCode(object obj)
        {
            if (obj is not byte[] bytes) return obj.GetHashCode();
            var hash = new HashCode();
            hash.AddBytes(bytes);
            return hash.ToHashCode();
        }
    }

    private sealed class Writer
    {
        private byte[] buffer = new byte[256];
        private int length;

        public byte[] ToArray() => buffer.AsSpan(0, length).ToArray();

        public void Write(object? value)
        {
            switch (value)
            {
                case null: Byte(0xc0); break;
                case bool b: Byte(b ? (byte)0xc3 : (byte)0xc2); break;
                case string s: String(s); break;
                case byte[] bytes: Binary(bytes); break;
                case ReadOnlyMemory<byte> memory: Binary(memory.Span); break;
                case float f: Byte(0xca); BinaryPrimitives.WriteSingleBigEndian(Reserve(4), f); break;
                case double d: Byte(0xcb); BinaryPrimitives.WriteDoubleBigEndian(Reserve(8), d); break;
                case sbyte or short or int or long: Integer(Convert.ToInt64(value)); break;
                case byte or ushort or uint: Integer(Convert.ToInt64(value)); break;
                case ulong u: if (u <= long.MaxValue) Integer((long)u); else { Byte(0xcf); BinaryPrimitives.WriteUInt64BigEndian(Reserve(8), u); } break;
                case System.Collections.IDictionary map: Map(map); break;
                case System.Collections.IEnumerable list: Array(list); break;
                default: throw new ArgumentException($"MessagePack cannot encode a {value.GetType().Name}.");
            }
        }

        private void Integer(long v)
        {
            if (v >= 0)
            {
                if (v <= 0x7f) Byte((byte)v);
                else if (v <= byte.MaxValue) { Byte(0xcc); Byte((byte)v); }
                else if (v <= ushort.MaxValue) { Byte(0xcd); BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), (ushort)v); }
                else if (v <= uint.MaxValue) { Byte(0xce); BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), (uint)v); }
                else { Byte(0xcf); BinaryPrimitives.WriteUInt64BigEndian(Reserve(8), (ulong)v); }
            }
            else
            {
                if (v >= -32) Byte((byte)(sbyte)v);
                else if (v >= sbyte.MinValue) { Byte(0xd0); Byte((byte)(sbyte)v); }
                else if (v >= short.MinValue) { Byte(0xd1); BinaryPrimitives.WriteInt16BigEndian(Reserve(2), (short)v); }
                else if (v >= int.MinValue) { Byte(0xd2); BinaryPrimitives.WriteInt32BigEndian(Reserve(4), (int)v); }
                else { Byte(0xd3); BinaryPrimitives.WriteInt64BigEndian(Reserve(8), v); }
            }
        }

        private void String(string s)
        {
            var count = Encoding.UTF8.GetByteCount(s);
            if (count <= 31) Byte((byte)(0xa0 | count));
            else if (count <= byte.MaxValue) { Byte(0xd9); Byte((byte)count); }
            else if (count <= ushort.MaxValue) { Byte(0xda); BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), (ushort)count); }
            else { Byte(0xdb); BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), (uint)count); }
            Encoding.UTF8.GetBytes(s, Reserve(count));
        }

        private void Binary(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length <= byte.MaxValue) { Byte(0xc4); Byte((byte)bytes.Length); }
            else if (bytes.Length <= ushort.MaxValue) { Byte(0xc5); BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), (ushort)bytes.Length); }
            else { Byte(0xc6); BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), (uint)bytes.Length); }
            bytes.CopyTo(Reserve(bytes.Length));
        }

        private void Map(System.Collections.IDictionary map)
        {
            Header(map.Count, 0x80, 0xde, 0xdf);
            foreach (System.Collections.DictionaryEntry entry in map)
            {
                Write(entry.Key);
                Write(entry.Value);
            }
        }

        private void Array(System.Collections.IEnumerable list)
        {
            var items = list.Cast<object?>().ToList();
            Header(items.Count, 0x90, 0xdc, 0xdd);
            foreach (var item in items) Write(item);
        }

        private void Header(int count, byte fix, byte sixteen, byte thirtyTwo)
        {
            if (count <= 15) Byte((byte)(fix | count));
            else if (count <= ushort.MaxValue) { Byte(sixteen); BinaryPrimitives.WriteUInt16BigEndian(Reserve(2), (ushort)count); }
            else { Byte(thirtyTwo); BinaryPrimitives.WriteUInt32BigEndian(Reserve(4), (uint)count); }
        }

        private void Byte(byte b) => Reserve(1)[0] = b;

        private Span<byte> Reserve(int count)
        {
            if (length + count > buffer.Length) System.Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + count));
            var span = buffer.AsSpan(length, count);
            length += count;
            return span;
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data, DecodeBudget? budget)
    {
        private readonly ReadOnlySpan<byte> data = data;

        public int Position { get; private set; }

        public object? Read(int depth)
        {
            if (depth > MaxDepth) throw new FormatException($"MessagePack value nested deeper than {MaxDepth}.");
            budget?.Charge(DecodeBudget.ValueCost);
            var b = Take(1)[0];
            switch (b)
            {
                case <= 0x7f: return (long)b;
                case >= 0x80 and <= 0x8f: return ReadMap(b & 0x0f, depth);
                case >= 0x90 and <= 0x9f: return ReadArray(b & 0x0f, depth);
                case >= 0xa0 and <= 0xbf: return Text(Take(b & 0x1f));
                case >= 0xe0: return (long)(sbyte)b;
            }
            return b switch
            {
                0xc0 => null,
                0xc2 => false,
                0xc3 => true,
                0xc4 => Bytes(Take(Take(1)[0])),
                0xc5 => Bytes(Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2)))),
                0xc6 => Bytes(Take(Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4))))),
                0xca => BinaryPrimitives.ReadSingleBigEndian(Take(4)),
                0xcb => BinaryPrimitives.ReadDoubleBigEndian(Take(8)),
                0xcc => (long)Take(1)[0],
                0xcd => (long)BinaryPrimitives.ReadUInt16BigEndian(Take(2)),
                0xce => (long)BinaryPrimitives.ReadUInt32BigEndian(Take(4)),
                0xcf => BinaryPrimitives.ReadUInt64BigEndian(Take(8)) is var u && u <= long.MaxValue ? (long)u : u,
                0xd0 => (long)(sbyte)Take(1)[0],
                0xd1 => (long)BinaryPrimitives.ReadInt16BigEndian(Take(2)),
                0xd2 => (long)BinaryPrimitives.ReadInt32BigEndian(Take(4)),
                0xd3 => BinaryPrimitives.ReadInt64BigEndian(Take(8)),
                0xd9 => Text(Take(Take(1)[0])),
                0xda => Text(Take(BinaryPrimitives.ReadUInt16BigEndian(Take(2)))),
                0xdb => Text(Take(Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4))))),
                0xdc => ReadArray(BinaryPrimitives.ReadUInt16BigEndian(Take(2)), depth),
                0xdd => ReadArray(Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4))), depth),
                0xde => ReadMap(BinaryPrimitives.ReadUInt16BigEndian(Take(2)), depth),
                0xdf => ReadMap(Length(BinaryPrimitives.ReadUInt32BigEndian(Take(4))), depth),
                _ => throw new FormatException($"MessagePack type 0x{b:x2} is not supported (extension types are not accepted)."),
            };
        }

        private List<object?> ReadArray(int count, int depth)
        {
            // Every element takes at least one byte: a count past the remaining bytes is a lie, not a big array.
            if (count > data.Length - Position) throw new FormatException("MessagePack array is longer than the message.");
            budget?.Charge(sizeof(long) * (long)count);
            var list = new List<object?>(count);
            for (var i = 0; i < count; i++) list.Add(Read(depth + 1));
            return list;
        }

        private Dictionary<object, object?> ReadMap(int count, int depth)
        {
            if (count > (data.Length - Position) / 2) throw new FormatException("MessagePack map is longer than the message.");
            var map = new Dictionary<object, object?>(count, KeyComparer.Instance);
            for (var i = 0; i < count; i++)
            {
                var key = Read(depth + 1) ?? throw new FormatException("MessagePack map key is nil.");
                if (key is List<object?> or Dictionary<object, object?>) throw new FormatException("MessagePack map keys must be scalars.");
                // A repeated key has no one meaning (the first? the last?), so it is refused like malformed input.
                if (!map.TryAdd(key, Read(depth + 1))) throw new FormatException($"MessagePack map key '{key}' appears twice.");
            }
            return map;
        }

        private string Text(ReadOnlySpan<byte> utf8)
        {
            budget?.Charge(2L * utf8.Length);
            return Encoding.UTF8.GetString(utf8);
        }

        private byte[] Bytes(ReadOnlySpan<byte> bytes)
        {
            budget?.Charge(bytes.Length);
            return bytes.ToArray();
        }

        private static int Length(uint length) => length <= int.MaxValue ? (int)length : throw new FormatException("MessagePack length too large.");

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count > data.Length - Position) throw new FormatException("MessagePack message ends early.");
            var span = data.Slice(Position, count);
            Position += count;
            return span;
        }
    }
}
