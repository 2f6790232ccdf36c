using System.Buffers.Binary;
using System.Text;

namespace VlaCloud.Contracts.Wire;

/// <summary>
/// A numpy array as openpi's <c>msgpack_numpy</c> puts it on the wire: a map
/// <c>{b"__ndarray__": True, b"data": raw bytes, b"dtype": "&lt;f4", b"shape": [..]}</c> (keys are msgpack bin,
/// dtype a numpy type string, data C-ordered). Numpy scalars travel as <c>{b"__npgeneric__": True, b"data": x, b"dtype": ..}</c>.
/// </summary>
/// <param name="Dtype">Numpy dtype string, e.g. <c>&lt;f4</c>, <c>|u1</c>, <c>&lt;i8</c>, <c>|b1</c>.</param>
/// <param name="Shape">Dimensions.</param>
/// <param name="Data">The elements, C order, in the dtype's byte order.</param>
public sealed record NumpyArray(string Dtype, int[] Shape, byte[] Data)
{
    private static readonly byte[] NdArrayKey = "__ndarray__"u8.ToArray();
    private static readonly byte[] NpGenericKey = "__npgeneric__"u8.ToArray();
    private static readonly byte[] DataKey = "data"u8.ToArray();
    private static readonly byte[] DtypeKey = "dtype"u8.ToArray();
    private static readonly byte[] ShapeKey = "shape"u8.ToArray();

    /// <summary>Number of elements.</summary>
    /// <exception cref="OverflowException">The shape's product does not fit a long (only a hostile shape does that).</exception>
    public long Count => Shape.Aggregate(1L, (a, b) => checked(a * b));

    /// <summary>A float32 array (<c>&lt;f4</c>).</summary>
    public static NumpyArray FromFloats(ReadOnlySpan<float> values, params int[] shape)
    {
        if (shape.Aggregate(1L, (a, b) => a * b) != values.Length) throw new ArgumentException("shape does not match the number of values");
        var data = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), values[i]);
        return new NumpyArray("<f4", shape, data);
    }

    /// <summary>A float32 array from a 2-D array, e.g. an action chunk <c>[H, D]</c>.</summary>
    public static NumpyArray FromFloats(float[,] values)
    {
        var flat = new float[values.Length];
        Buffer.BlockCopy(values, 0, flat, 0, flat.Length * 4);
        return FromFloats(flat, values.GetLength(0), values.GetLength(1));
    }

    /// <summary>A uint8 array (<c>|u1</c>), e.g. an HWC image.</summary>
    public static NumpyArray FromBytes(byte[] values, params int[] shape) =>
        shape.Aggregate(1L, (a, b) => a * b) == values.Length ? new NumpyArray("|u1", shape, values) : throw new ArgumentException("shape does not match the number of values");

    /// <summary>The elements as float32, whatever numeric dtype they were sent in.</summary>
    /// <exception cref="FormatException">The dtype is not numeric or boolean, or the data has the wrong length.</exception>
    public float[] ToFloats()
    {
        var (kind, size, bigEndian) = ParseDtype();
        CheckLength(size);
        var result = new float[Count];
        var span = Data.AsSpan();
        for (var i = 0; i < result.Length; i++)
        {
            var e = span.Slice(i * size, size);
            result[i] = (kind, size) switch
            {
                ('f', 4) => bigEndian ? BinaryPrimitives.ReadSingleBigEndian(e) : BinaryPrimitives.ReadSingleLittleEndian(e),
                ('f', 8) => (float)(bigEndian ? BinaryPrimitives.ReadDoubleBigEndian(e) : BinaryPrimitives.ReadDoubleLittleEndian(e)),
                ('f', 2) => (float)(bigEndian ? BinaryPrimitives.ReadHalfBigEndian(e) : BinaryPrimitives.ReadHalfLittleEndian(e)),
                ('u', 1) or ('b', 1) => e[0],
                ('i', 1) => (sbyte)e[0],
                ('u', 2) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(e) : BinaryPrimitives.ReadUInt16LittleEndian(e),
                ('i', 2) => bigEndian ? BinaryPrimitives.ReadInt16BigEndian(e) : BinaryPrimitives.ReadInt16LittleEndian(e),
                ('u', 4) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(e) : BinaryPrimitives.ReadUInt32LittleEndian(e),
                ('i', 4) => bigEndian ? BinaryPrimitives.ReadInt32BigEndian(e) : BinaryPrimitives.ReadInt32LittleEndian(e),
                ('u', 8) => bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(e) : BinaryPrimitives.ReadUInt64LittleEndian(e),
                ('i', 8) => bigEndian ? BinaryPrimitives.ReadInt64BigEndian(e) : BinaryPrimitives.ReadInt64LittleEndian(e),
                _ => throw new FormatException($"numpy dtype '{Dtype}' is not a number type."),
            };
        }
        return result;
    }

    /// <summary>The elements as bytes of a uint8 array (images); float images in [0, 1] are scaled to 0..255.</summary>
    public byte[] ToImageBytes()
    {
        var (kind, size, _) = ParseDtype();
        if (kind == 'u' && size == 1)
        {
            CheckLength(1);
            return Data;
        }
        if (kind != 'f') throw new FormatException($"an image must be uint8 or float, not '{Dtype}'.");
        return ToFloats().Select(v => (byte)Math.Clamp(MathF.Round(v * 255f), 0f, 255f)).ToArray();
    }

    /// <summary>The wire form: a map with bin keys in the order numpy's packer writes them.</summary>
    public Dictionary<object, object?> ToWire() => new(MsgPack.KeyComparer.Instance)
    {
        [NdArrayKey] = true,
        [DataKey] = Data,
        [DtypeKey] = Dtype,
        [ShapeKey] = Shape.Select(d => (object?)(long)d).ToList(),
    };

    /// <summary>
    /// Replaces every ndarray map in a decoded msgpack tree with a <see cref="NumpyArray"/> and every numpy
    /// scalar map with its value; other values pass through. Accepts str or bin keys, as openpi's unpacker does.
    /// </summary>
    /// <exception cref="FormatException">An ndarray map is malformed.</exception>
    public static object? FromWireTree(object? value) => value switch
    {
        Dictionary<object, object?> map when Get(map, NdArrayKey) is true => FromWireMap(map),
        Dictionary<object, object?> map when Get(map, NpGenericKey) is true => Get(map, DataKey),
        Dictionary<object, object?> map => map.ToDictionary(e => e.Key, e => FromWireTree(e.Value), MsgPack.KeyComparer.Instance),
        List<object?> list => list.Select(FromWireTree).ToList(),
        _ => value,
    };

    /// <summary>Replaces every <see cref="NumpyArray"/> in a tree with its wire map, for <see cref="MsgPack.Serialize"/>.</summary>
    public static object? ToWireTree(object? value) => value switch
    {
        NumpyArray array => array.ToWire(),
        float[,] chunk => FromFloats(chunk).ToWire(),
        System.Collections.IDictionary map => MapToWire(map),
        string or byte[] => value,
        System.Collections.IEnumerable list => list.Cast<object?>().Select(ToWireTree).ToList(),
        _ => value,
    };

    private static Dictionary<object, object?> MapToWire(System.Collections.IDictionary map)
    {
        // Enumerated through IDictionary (DictionaryEntry), whatever the map's generic type is.
        var result = new Dictionary<object, object?>(map.Count, MsgPack.KeyComparer.Instance);
        var entries = map.GetEnumerator();
        while (entries.MoveNext()) result[entries.Key] = ToWireTree(entries.Value);
        return result;
    }

    private static NumpyArray FromWireMap(Dictionary<object, object?> map)
    {
        var data = Get(map, DataKey) as byte[] ?? throw new FormatException("ndarray 'data' must be bytes.");
        var dtype = Get(map, DtypeKey) switch
        {
            string s => s,
            byte[] b => Encoding.ASCII.GetString(b),
            _ => throw new FormatException("ndarray 'dtype' must be a string."),
        };
        var shape = Get(map, ShapeKey) is List<object?> dims
            ? dims.Select(d => d is long l and >= 0 and <= int.MaxValue ? (int)l : throw new FormatException("ndarray 'shape' must hold non-negative integers.")).ToArray()
            : throw new FormatException("ndarray 'shape' must be a list.");
        var array = new NumpyArray(dtype, shape, data);
        var (_, size, _) = array.ParseDtype();
        try
        {
            array.CheckLength(size);
        }
        catch (OverflowException)
        {
            throw new FormatException($"ndarray of shape ({string.Join(", ", shape)}) has more elements than any message can hold.");
        }
        return array;
    }

    private static object? Get(Dictionary<object, object?> map, byte[] key) =>
        map.TryGetValue(key, out var value) ? value : map.TryGetValue(Encoding.ASCII.GetString(key), out value) ? value : null;

    private (char Kind, int Size, bool BigEndian) ParseDtype()
    {
        if (Dtype.Length < 3 || Dtype[0] is not ('<' or '>' or '|' or '=') || !int.TryParse(Dtype.AsSpan(2), out var size) || size <= 0)
            throw new FormatException($"'{Dtype}' is not a numpy dtype string such as '<f4'.");
        return (Dtype[1], size, Dtype[0] == '>' || (Dtype[0] == '=' && !BitConverter.IsLittleEndian));
    }

    private void CheckLength(int elementSize)
    {
        if (Data.LongLength != checked(Count * elementSize))
            throw new FormatException($"ndarray of shape ({string.Join(", ", Shape)}) and dtype '{Dtype}' needs {Count * elementSize} bytes, got {Data.Length}.");
    }
}
