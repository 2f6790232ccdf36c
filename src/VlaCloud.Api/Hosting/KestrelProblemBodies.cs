using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;

namespace VlaCloud.Api.Hosting;

/// <summary>
/// Gives Kestrel's own error answers a problem-details body. A request Kestrel rejects before the application sees it
/// (a malformed request line or header, headers past the size limit: 400, 431, 414…) is answered by Kestrel itself with
/// an empty body, and no middleware runs for it. This connection middleware watches what Kestrel writes: a response that
/// is a 4xx status with <c>Content-Length: 0</c> and <c>Connection: close</c> in one flush, which only Kestrel's rejection
/// produces (every 4xx of the application carries a problem body), gets an <c>application/problem+json</c> body.
/// Everything else passes through unchanged.
/// </summary>
public static class KestrelProblemBodies
{
    /// <summary>Adds the rewriting to an endpoint's connections.</summary>
    public static ListenOptions UseKestrelProblemBodies(this ListenOptions listen)
    {
        listen.Use(next => async connection =>
        {
            var transport = connection.Transport;
            var watched = new RejectionWatcher(transport.Output);
            var output = PipeWriter.Create(watched, new StreamPipeWriterOptions(leaveOpen: true));
            connection.Transport = new DuplexPipe(transport.Input, output);
            try
            {
                await next(connection);
            }
            finally
            {
                await output.CompleteAsync();
                connection.Transport = transport;
            }
        });
        return listen;
    }

    /// <summary>The problem body for a rejected request's status.</summary>
    internal static byte[] ProblemBody(int status) => JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
    {
        ["title"] = ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Bad Request",
        ["status"] = status,
        ["detail"] = status switch
        {
            StatusCodes.Status431RequestHeaderFieldsTooLarge => "The request's headers are larger than the server accepts.",
            StatusCodes.Status414UriTooLong => "The request's target is longer than the server accepts.",
            StatusCodes.Status411LengthRequired => "The request has a body but no Content-Length or chunked Transfer-Encoding.",
            StatusCodes.Status413PayloadTooLarge => "The request's body is larger than the server accepts.",
            StatusCodes.Status408RequestTimeout => "The request did not arrive in time.",
            _ => "The server could not read the request: its request line, headers or framing are malformed.",
        },
    });

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }

    /// <summary>
    /// Holds the bytes of each flush while they may still be a rejection (they start with <c>HTTP/1.1 4</c> and are
    /// short); at the flush, a rejection is rewritten, anything else is written as it came.
    /// </summary>
    /// <remarks>
    /// Writes go into the transport's pipe without flushing it, and only <see cref="FlushAsync"/> flushes: each flush of
    /// the transport's pipe hands its bytes to the socket's sender, a thread-pool work item of its own (Kestrel's I/O
    /// queue) and a <c>send</c>. Through a stream over the pipe every write flushed, so a response whose head and body
    /// came in two segments cost two hand-offs and two sends (1.35 per <c>/v1/act</c> request, counted with
    /// dotnet-trace; docs/perf-issue-23-notes.md, Session 37), and the flush Kestrel makes at the end of each response,
    /// mostly with no bytes, woke the sender once more.
    /// </remarks>
    private sealed class RejectionWatcher(PipeWriter inner) : Stream
    {
        private const int MaxHeld = 4096;
        private static readonly byte[] Start = "HTTP/1.1 4"u8.ToArray();
        // Bytes written to the transport's pipe since its last flush, and how many may wait for the next one.
        private const int MaxUnflushed = 64 * 1024;
        private readonly MemoryStream held = new();
        private long unflushed;
        private bool passing;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!passing)
            {
                held.Write(buffer.Span);
                if (held.Length <= MaxHeld && MayBeRejection(held.GetBuffer().AsSpan(0, (int)held.Length))) return ValueTask.CompletedTask;
                passing = true;
                buffer = held.GetBuffer().AsMemory(0, (int)held.Length);
                held.SetLength(0);
            }
            inner.Write(buffer.Span);
            unflushed += buffer.Length;
            // A large body still flushes as it goes, so the pipe's back-pressure holds and memory stays bounded.
            return unflushed >= MaxUnflushed ? FlushInnerAsync(cancellationToken) : ValueTask.CompletedTask;
        }

        public override async Task FlushAsync(CancellationToken cancellationToken)
        {
            if (held.Length > 0)
            {
                var bytes = held.ToArray();
                held.SetLength(0);
                var response = Rewrite(bytes) ?? bytes;
                inner.Write(response);
                unflushed += response.Length;
            }
            passing = false;
            // Kestrel flushes again at the end of a response, mostly with nothing new; an empty flush of the pipe would
            // still wake its reader (the socket's sender) for nothing.
            if (unflushed > 0) await FlushInnerAsync(cancellationToken);
        }

        private async ValueTask FlushInnerAsync(CancellationToken cancellationToken)
        {
            unflushed = 0;
            await inner.FlushAsync(cancellationToken);
        }

        private static bool MayBeRejection(ReadOnlySpan<byte> bytes) =>
            bytes.Length < Start.Length ? Start.AsSpan(0, bytes.Length).SequenceEqual(bytes) : bytes.StartsWith(Start);

        /// <summary>The response with a problem body, when <paramref name="response"/> is exactly one bodiless 4xx that closes the connection.</summary>
        internal static byte[]? Rewrite(byte[] response)
        {
            var text = Encoding.Latin1.GetString(response);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end != text.Length - 4 || text.Length < 12 || !int.TryParse(text.AsSpan(9, 3), out var status) || status is < 400 or > 499) return null;
            var lines = text[..end].Split("\r\n").ToList();
            var contentLength = lines.FindIndex(l => l.Equals("Content-Length: 0", StringComparison.OrdinalIgnoreCase));
            if (contentLength < 0 || !lines.Any(l => l.Equals("Connection: close", StringComparison.OrdinalIgnoreCase))) return null;
            var body = ProblemBody(status);
            lines[contentLength] = $"Content-Length: {body.Length}";
            lines.Insert(contentLength, "Content-Type: application/problem+json");
            return [.. Encoding.Latin1.GetBytes(string.Join("\r\n", lines) + "\r\n\r\n"), .. body];
        }

        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) held.Dispose();
            base.Dispose(disposing);
        }
    }
}
