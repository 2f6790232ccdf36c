namespace VlaCloud.Registry.Uploads;

/// <summary>
/// A stream read once from start to end (a blob from the store, parts one after another): it cannot seek, be written
/// or tell its length, so a subclass implements only reading and disposal.
/// </summary>
public abstract class ReadOnlyForwardStream : Stream
{
    /// <inheritdoc />
    public sealed override bool CanRead => true;
    /// <inheritdoc />
    public sealed override bool CanSeek => false;
    /// <inheritdoc />
    public sealed override bool CanWrite => false;
    /// <inheritdoc />
    public sealed override long Length => throw new NotSupportedException();
    /// <inheritdoc />
    public sealed override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    /// <inheritdoc />
    public sealed override void Flush() { }
    /// <inheritdoc />
    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    /// <inheritdoc />
    public sealed override void SetLength(long value) => throw new NotSupportedException();
    /// <inheritdoc />
    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
