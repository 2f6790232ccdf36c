using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Checkpoint;

/// <summary>Where one tensor of a <c>torch.save</c> archive lives: its storage entry and the view into it.</summary>
/// <param name="Name">Dotted name in the (flattened) state dict.</param>
/// <param name="DType">Element type.</param>
/// <param name="Shape">Sizes.</param>
/// <param name="Stride">Strides in elements.</param>
/// <param name="StorageOffset">First element of the view in its storage.</param>
/// <param name="StorageKey">Name of the storage's file under <c>data/</c> in the archive.</param>
/// <param name="StorageElements">Elements in the storage.</param>
public sealed record TorchTensorRef(string Name, ScalarType DType, long[] Shape, long[] Stride, long StorageOffset, string StorageKey, long StorageElements);

/// <summary>
/// A <c>torch.save</c> file (the zip format of PyTorch ≥ 1.6) read without executing anything from it. Its
/// <c>data.pkl</c> is interpreted by a small pickle machine that knows plain containers (dicts, lists, tuples, strings,
/// numbers) and exactly the globals PyTorch writes for tensors (<c>torch._utils._rebuild_tensor_v2</c>, typed storages,
/// <c>collections.OrderedDict</c>); any other global — a function, a class, a whole pickled <c>nn.Module</c> — is
/// refused with a <see cref="CheckpointException"/> naming it, before anything is called. Tensors are read lazily, one
/// at a time, so a multi-gigabyte checkpoint costs the memory of its largest tensor.
/// </summary>
/// <remarks>
/// TorchSharp.PyBridge's unpickler was tried first: it registers its constructors in Razorvine's process-wide table,
/// turns unknown globals into inert dictionaries instead of refusing them, drops non-tensor entries of ordered dicts
/// silently, and sizes a tensor's buffer from its shape rather than its storage, so views into shared storages (tied
/// weights) come out wrong. Refusing what is not a tensor needs an interpreter that knows exactly what it accepts.
/// </remarks>
public sealed class TorchArchive : IDisposable
{
    /// <summary>Largest <c>data.pkl</c> accepted (a 4-billion-parameter state dict's pickle is well under 1 MB).</summary>
    public const long MaxPickleBytes = 64L << 20;

    private readonly ZipArchive zip;
    private readonly Dictionary<string, ZipArchiveEntry> storages;
    private readonly Dictionary<string, TorchTensorRef> tensors;
    private readonly string fileName;

    private TorchArchive(ZipArchive zip, Dictionary<string, ZipArchiveEntry> storages, Dictionary<string, TorchTensorRef> tensors, string fileName)
    {
        this.zip = zip;
        this.storages = storages;
        this.tensors = tensors;
        this.fileName = fileName;
    }

    /// <summary>Tensors by their dotted state-dict name (nested dicts are joined with dots).</summary>
    public IReadOnlyDictionary<string, TorchTensorRef> Tensors => tensors;

    /// <summary>Opens and checks an archive; throws <see cref="CheckpointException"/> naming what is wrong.</summary>
    public static TorchArchive Open(string path)
    {
        var name = Path.GetFileName(path);
        var stream = File.OpenRead(path);
        ZipArchive zip;
        try
        {
            Span<byte> magic = stackalloc byte[4];
            if (stream.Read(magic) != 4 || magic[0] != 'P' || magic[1] != 'K')
                throw new CheckpointException($"{name} is not a torch.save zip archive (files from PyTorch older than 1.6 are not read; re-save with a current torch)");
            stream.Position = 0;
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw new CheckpointException($"{name} is not a readable zip archive ({e.Message})");
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        try
        {
            var pickles = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl").ToList();
            if (pickles.Count != 1) throw new CheckpointException($"{name} has {pickles.Count} data.pkl entries; a torch.save archive has one");
            var pickle = pickles[0];
            var prefix = pickle.FullName[..^"data.pkl".Length];
            if (pickle.Length > MaxPickleBytes) throw new CheckpointException($"{name}: data.pkl is {pickle.Length} bytes, more than the {MaxPickleBytes} accepted");
            var bytes = new byte[pickle.Length];
            using (var s = pickle.Open()) s.ReadExactly(bytes);
            var storages = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
                if (entry.FullName.StartsWith(prefix + "data/", StringComparison.Ordinal))
                    storages[entry.FullName[(prefix.Length + "data/".Length)..]] = entry;
            var root = new Machine(bytes, name).Run();
            var tensors = new Dictionary<string, TorchTensorRef>(StringComparer.Ordinal);
            Flatten(root, "", tensors, name, depth: 0);
            foreach (var t in tensors.Values) Check(t, storages, name);
            return new TorchArchive(zip, storages, tensors, name);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>Reads one tensor onto the CPU (contiguous, in its stored dtype). The caller owns the result.</summary>
    public Tensor Read(string name)
    {
        if (!tensors.TryGetValue(name, out var t)) throw new CheckpointException($"{fileName} has no tensor '{name}'");
        var elementSize = ElementSize(t.DType);
        var extent = Extent(t);
        using var storage = empty([extent], t.DType, CPU);
        if (extent > 0)
        {
            using var data = storages[t.StorageKey].Open();
            Skip(data, t.StorageOffset * elementSize);
            data.ReadExactly(storage.bytes);
        }
        using var view = storage.as_strided(t.Shape, t.Stride, 0);
        return view.contiguous();
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => zip.Dispose();

    /// <summary>Elements from the view's first to its last element (the part of the storage it needs).</summary>
    private static long Extent(TorchTensorRef t)
    {
        if (t.Shape.Any(s => s == 0)) return 0;
        var last = 0L;
        for (var i = 0; i < t.Shape.Length; i++) last = checked(last + (t.Shape[i] - 1) * t.Stride[i]);
        return last + 1;
    }

    private static void Check(TorchTensorRef t, Dictionary<string, ZipArchiveEntry> storages, string file)
    {
        if (!storages.TryGetValue(t.StorageKey, out var entry)) throw new CheckpointException($"{file}: tensor '{t.Name}' refers to storage '{t.StorageKey}', which the archive lacks");
        if (t.Shape.Length > 16 || t.Shape.Length != t.Stride.Length || t.Shape.Any(s => s < 0) || t.Stride.Any(s => s < 0) || t.StorageOffset < 0 || t.StorageElements < 0)
            throw new CheckpointException($"{file}: tensor '{t.Name}' has an invalid shape, stride or offset");
        try
        {
            var elementSize = ElementSize(t.DType);
            if (entry.Length != checked(t.StorageElements * elementSize))
                throw new CheckpointException($"{file}: storage '{t.StorageKey}' holds {entry.Length} bytes, not the {t.StorageElements} × {elementSize} its tensors declare");
            if (checked(t.StorageOffset + Extent(t)) > t.StorageElements)
                throw new CheckpointException($"{file}: tensor '{t.Name}' reaches past the end of its storage");
        }
        catch (OverflowException)
        {
            throw new CheckpointException($"{file}: tensor '{t.Name}' has sizes that overflow");
        }
    }

    private static void Skip(Stream stream, long bytes)
    {
        var buffer = new byte[Math.Min(bytes, 1 << 20)];
        while (bytes > 0)
        {
            var read = stream.Read(buffer, 0, (int)Math.Min(buffer.Length, bytes));
            if (read == 0) throw new EndOfStreamException();
            bytes -= read;
        }
    }

    private static int ElementSize(ScalarType type) => type switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    private static void Flatten(object? node, string prefix, Dictionary<string, TorchTensorRef> into, string file, int depth)
    {
        switch (node)
        {
            case TensorSpec spec:
                if (prefix.Length == 0) throw new CheckpointException($"{file} holds a single tensor, not a state dict");
                into[prefix] = spec.ToRef(prefix);
                break;
            case PickleDict dict when depth < 8:
                foreach (var (key, value) in dict.Items)
                {
                    if (key is not string k) throw new CheckpointException($"{file}: a state dict key is a {key?.GetType().Name ?? "None"}, not a string");
                    if (value is TensorSpec or PickleDict) Flatten(value, prefix.Length == 0 ? k : $"{prefix}.{k}", into, file, depth + 1);
                    // Other values (training step counters, strings, lists of numbers) carry no weights.
                }
                break;
            default:
                throw new CheckpointException($"{file} does not hold a state dict (a mapping of names to tensors)");
        }
    }

    /// <summary>A pickled dict in insertion order (a state dict's order is the module's parameter order).</summary>
    private sealed class PickleDict
    {
        private readonly Dictionary<object, int> index = [];

        public List<(object? Key, object? Value)> Items { get; } = [];

        public void Set(object? key, object? value)
        {
            if (key is null) throw new CheckpointException("a pickled dict has a None key");
            if (index.TryGetValue(key, out var i)) Items[i] = (key, value);
            else
            {
                index[key] = Items.Count;
                Items.Add((key, value));
            }
        }
    }

    private sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    private sealed record StorageSpec(ScalarType DType, string Key, long Elements);

    private sealed record TensorSpec(StorageSpec Storage, long Offset, long[] Shape, long[] Stride)
    {
        public TorchTensorRef ToRef(string name) => new(name, Storage.DType, Shape, Stride, Offset, Storage.Key, Storage.Elements);
    }

    private sealed class Mark
    {
        public static readonly Mark Instance = new();
    }

    /// <summary>The pickle opcodes torch.save writes (protocols 2–5), nothing that calls arbitrary code.</summary>
    private sealed class Machine(byte[] pickle, string file)
    {
        private const int MaxDepth = 100_000;
        private readonly List<object?> stack = [];
        private readonly Dictionary<long, object?> memo = [];
        private int position;

        public object? Run()
        {
            while (true)
            {
                if (position >= pickle.Length) throw Bad("ends without STOP");
                if (stack.Count > MaxDepth) throw Bad("nests too deeply");
                var op = pickle[position++];
                switch (op)
                {
                    case 0x80: position++; break;                                   // PROTO
                    case 0x95: Take(8); break;                                      // FRAME
                    case (byte)'.': return stack.Count == 1 ? stack[0] : throw Bad("leaves more than one object");
                    case (byte)'(': stack.Add(Mark.Instance); break;                // MARK
                    case (byte)'}': stack.Add(new PickleDict()); break;             // EMPTY_DICT
                    case (byte)']': stack.Add(new List<object?>()); break;          // EMPTY_LIST
                    case (byte)')': stack.Add(Array.Empty<object?>()); break;       // EMPTY_TUPLE
                    case (byte)'N': stack.Add(null); break;
                    case 0x88: stack.Add(true); break;
                    case 0x89: stack.Add(false); break;
                    case (byte)'K': stack.Add((long)Take(1)[0]); break;             // BININT1
                    case (byte)'M': stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case (byte)'J': stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case 0x8a: stack.Add(Long(Take(Take(1)[0]))); break;            // LONG1
                    case (byte)'G': stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                    case (byte)'X': stack.Add(Utf8(Take(Length(4)))); break;        // BINUNICODE
                    case 0x8c: stack.Add(Utf8(Take(Take(1)[0]))); break;            // SHORT_BINUNICODE
                    case (byte)'T': stack.Add(Encoding.Latin1.GetString(Take(Length(4)))); break; // BINSTRING
                    case (byte)'U': stack.Add(Encoding.Latin1.GetString(Take(Take(1)[0]))); break; // SHORT_BINSTRING
                    case (byte)'B': stack.Add(Take(Length(4)).ToArray()); break;    // BINBYTES
                    case (byte)'C': stack.Add(Take(Take(1)[0]).ToArray()); break;   // SHORT_BINBYTES
                    case (byte)'q': memo[Take(1)[0]] = Top(); break;                // BINPUT
                    case (byte)'r': memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Top(); break;
                    case 0x94: memo[memo.Count] = Top(); break;                     // MEMOIZE
                    case (byte)'h': stack.Add(Memo(Take(1)[0])); break;             // BINGET
                    case (byte)'j': stack.Add(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                    case (byte)'t': stack.Add(PopMark().ToArray()); break;          // TUPLE
                    case 0x85: stack.Add(new[] { Pop() }); break;                   // TUPLE1
                    case 0x86: { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; }
                    case (byte)'l': stack.Add(PopMark()); break;                    // LIST
                    case (byte)'a': { var v = Pop(); AsList(Top()).Add(v); break; } // APPEND
                    case (byte)'e': { var items = PopMark(); AsList(Top()).AddRange(items); break; }
                    case (byte)'d': { var items = PopMark(); var d = new PickleDict(); SetItems(d, items); stack.Add(d); break; }
                    case (byte)'s': { var v = Pop(); var k = Pop(); AsDict(Top()).Set(k, v); break; }
                    case (byte)'u': { var items = PopMark(); SetItems(AsDict(Top()), items); break; }
                    case (byte)'c': stack.Add(Allowed(new Global(Line(), Line()))); break;  // GLOBAL
                    case 0x93: { var n = Pop(); var m = Pop(); stack.Add(Allowed(new Global(Text(m), Text(n)))); break; } // STACK_GLOBAL
                    case (byte)'Q': stack.Add(PersistentLoad(Pop())); break;        // BINPERSID
                    case (byte)'R': { var args = Pop(); var f = Pop(); stack.Add(Call(f, args)); break; } // REDUCE
                    case (byte)'b': { var state = Pop(); Build(Top(), state); break; } // BUILD
                    default: throw Bad($"uses pickle opcode 0x{op:x2}, which a state dict does not need");
                }
            }
        }

        private Global Allowed(Global g)
        {
            var ok = (g.Module, g.Name) switch
            {
                ("collections", "OrderedDict") => true,
                ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_tensor" or "_rebuild_parameter") => true,
                ("torch", _) when StorageType(g.Name) is not null => true,
                _ => false,
            };
            return ok ? g : throw new CheckpointException(
                $"{file} refers to the Python global '{g}', which is not a tensor or a plain container; it is refused (loading it with pickle would run code)");
        }

        private static ScalarType? StorageType(string name) => name switch
        {
            "DoubleStorage" => ScalarType.Float64,
            "FloatStorage" => ScalarType.Float32,
            "HalfStorage" => ScalarType.Float16,
            "BFloat16Storage" => ScalarType.BFloat16,
            "LongStorage" => ScalarType.Int64,
            "IntStorage" => ScalarType.Int32,
            "ShortStorage" => ScalarType.Int16,
            "CharStorage" => ScalarType.Int8,
            "ByteStorage" => ScalarType.Byte,
            "BoolStorage" => ScalarType.Bool,
            _ => null,
        };

        private object PersistentLoad(object? pid)
        {
            // torch.save's persistent id: ('storage', storage_type, key, location, numel).
            if (pid is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global type || StorageType(type.Name) is not { } dtype
                || t[2] is not string key || t[4] is not long elements)
                throw Bad("has a persistent id that is not a tensor storage");
            return new StorageSpec(dtype, key, elements);
        }

        private object? Call(object? function, object? arguments)
        {
            if (function is not Global g || arguments is not object?[] args) throw Bad("calls something that is not an allowed global");
            switch (g.Name)
            {
                case "OrderedDict" when args.Length == 0:
                    return new PickleDict();
                case "_rebuild_tensor_v2" or "_rebuild_tensor" when args.Length >= 4 && args[0] is StorageSpec storage && args[1] is long offset:
                    return new TensorSpec(storage, offset, Longs(args[2], "size"), Longs(args[3], "stride"));
                case "_rebuild_parameter" when args.Length >= 1 && args[0] is TensorSpec tensor:
                    return tensor;
                default:
                    throw Bad($"calls {g} with arguments a state dict does not have");
            }
        }

        private void Build(object? target, object? state)
        {
            // An OrderedDict's attributes (state_dict's `_metadata` of module versions) arrive as BUILD state; they carry no weights.
            if (target is PickleDict && state is PickleDict or null) return;
            throw Bad("sets the state of an object that is not a dict");
        }

        private long[] Longs(object? value, string what) =>
            value is object?[] items && items.All(i => i is long) ? [.. items.Cast<long>()] : throw Bad($"has a tensor {what} that is not a tuple of integers");

        private static string Text(object? value) => value as string ?? throw new CheckpointException("a pickled global's name is not a string");

        private void SetItems(PickleDict dict, List<object?> items)
        {
            if (items.Count % 2 != 0) throw Bad("has a dict with an odd number of items");
            for (var i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
        }

        private PickleDict AsDict(object? o) => o as PickleDict ?? throw Bad("sets items on something that is not a dict");

        private List<object?> AsList(object? o) => o as List<object?> ?? throw Bad("appends to something that is not a list");

        private object? Memo(long key) => memo.TryGetValue(key, out var v) ? v : throw Bad($"reads memo slot {key}, which was never written");

        private object? Top() => stack.Count > 0 && stack[^1] is not Mark ? stack[^1] : throw Bad("reads an empty stack");

        private object? Pop()
        {
            var top = Top();
            stack.RemoveAt(stack.Count - 1);
            return top;
        }

        private List<object?> PopMark()
        {
            var mark = stack.FindLastIndex(o => o is Mark);
            if (mark < 0) throw Bad("closes a mark it never opened");
            var items = stack.GetRange(mark + 1, stack.Count - mark - 1);
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }

        private ReadOnlySpan<byte> Take(int count)
        {
            if (count < 0 || position + count > pickle.Length) throw Bad("ends in the middle of an opcode");
            var span = pickle.AsSpan(position, count);
            position += count;
            return span;
        }

        private int Length(int bytes)
        {
            var n = BinaryPrimitives.ReadUInt32LittleEndian(Take(bytes));
            return n <= (uint)(pickle.Length - position) ? (int)n : throw Bad("declares a string longer than the pickle");
        }

        private string Line()
        {
            var end = Array.IndexOf(pickle, (byte)'\n', position);
            if (end < 0 || end - position > 256) throw Bad("has a malformed global name");
            var text = Encoding.ASCII.GetString(pickle, position, end - position);
            position = end + 1;
            return text;
        }

        private static string Utf8(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

        private object Long(ReadOnlySpan<byte> bytes)
        {
            if (bytes.Length > 8) throw Bad("has an integer wider than 64 bits");
            long value = 0;
            for (var i = bytes.Length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
            if (bytes.Length is > 0 and < 8 && (bytes[^1] & 0x80) != 0) value -= 1L << (8 * bytes.Length);
            return value;
        }

        private CheckpointException Bad(string what) => new($"{file}: data.pkl {what}");
    }
}
