using System.Security.Cryptography;

namespace VlaCloud.Registry.Artifacts;

/// <summary>
/// A read-only view of a stored blob (<see cref="IArtifactStore.OpenStoredAsync"/>) that hashes the bytes as they are
/// read: once every byte from the start has been read in order, it throws <see cref="ArtifactCorruptedException"/> from
/// the read that delivers the last bytes if the blob does not hash to the registry's SHA-256, so a whole download of a
/// corrupted blob fails instead of completing, without reading the blob twice. After a seek anywhere else (a range
/// request) the bytes pass unchecked: a part cannot be checked against the whole's hash, its client checks the whole.
/// </summary>
public sealed class Sha256CheckingStream : Stream
{
    private readonly Stream inner;
    private readonly string sha256;
    private readonly IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long hashed;
    private bool checking = true;

    /// <summary>Wraps <paramref name="inner"/> (seekable, at its start), whose bytes should hash to <paramref name="sha256"/>.</summary>
    public Sha256CheckingStream(Stream inner, string sha256)
    {
        if (!inner.CanSeek) throw new ArgumentException("the blob's stream must be seekable", nameof(inner));
        this.inner = inner;
        this.sha256 = sha256.ToLowerInvariant();
    }

    /// <inheritdoc />
    public override bool CanRead => true;
    /// <inheritdoc />
    public override bool CanSeek => true;
    /// <inheritdoc />
    public override bool CanWrite => false;
    /// <inheritdoc />
    public override long Length => inner.Length;

    /// <inheritdoc />
    public override long Position
    {
        get => inner.Position;
        set => Seek(value, SeekOrigin.Begin);
    }

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin)
    {
        var position = inner.Seek(offset, origin);
        if (position != hashed) checking = false;
        return position;
    }

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Check(buffer[..read]);
        return read;
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Check(buffer.Span[..read]);
        return read;
    }

    private void Check(ReadOnlySpan<byte> bytes)
    {
        if (!checking) return;
        hash.AppendData(bytes);
        hashed += bytes.Length;
        if (hashed < inner.Length && bytes.Length > 0) return;
        checking = false;
        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (actual != sha256) throw new ArtifactCorruptedException(sha256, actual, (inner as FileStream)?.Name ?? "");
    }

    /// <inheritdoc />
    public override void Flush() { }
    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            hash.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        hash.Dispose();
        await base.DisposeAsync();
    }
}
