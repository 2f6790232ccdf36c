using System.Diagnostics;

namespace VlaCloud.Testing;

/// <summary>
/// A throwaway S3-compatible server (s3rver, from npm, installed by <c>bash .ci/tools</c>) on a free loopback port
/// with one empty bucket, so the S3 artifact and upload-part stores are tested against a real HTTP S3 API (signed
/// requests, path-style buckets, list pagination) rather than a mock of the SDK. A missing s3rver fails the test
/// with the command that installs it: a storage check that silently skips checks nothing.
/// </summary>
public sealed class LocalS3Server : IAsyncDisposable
{
    /// <summary>s3rver's fixed credentials (it accepts only these).</summary>
    public const string AccessKey = "S3RVER";

    /// <inheritdoc cref="AccessKey"/>
    public const string SecretKey = "S3RVER";

    private readonly Process process;
    private readonly string directory;

    private LocalS3Server(Process process, string directory, int port, string bucket)
    {
        this.process = process;
        this.directory = directory;
        Port = port;
        Bucket = bucket;
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>The bucket created at start.</summary>
    public string Bucket { get; }

    /// <summary>The endpoint to give the AWS SDK as its service URL.</summary>
    public string ServiceUrl => $"http://127.0.0.1:{Port}";

    /// <summary>Where <c>bash .ci/tools</c> installs s3rver, or <c>VLACLOUD_S3RVER</c>.</summary>
    public static string Executable
    {
        get
        {
            var path = Environment.GetEnvironmentVariable("VLACLOUD_S3RVER") is { Length: > 0 } configured
                ? configured
                : System.IO.Path.Combine(RepositoryRoot.Path, ".local", "tools", "bin", "s3rver");
            if (!File.Exists(path))
                throw new InvalidOperationException(
                    $"s3rver is not installed at {path}. Install the test tools with `bash .ci/tools` (`bash .ci/test` does it), " +
                    "or point VLACLOUD_S3RVER at an s3rver executable.");
            return path;
        }
    }

    /// <summary>Starts a server with an empty bucket <paramref name="bucket"/> and waits until it accepts connections.</summary>
    public static async Task<LocalS3Server> StartAsync(string bucket = "vlacloud-test")
    {
        var executable = Executable;
        var port = LocalRedisServer.FreePort();
        var directory = Directory.CreateTempSubdirectory("vlacloud-s3rver-").FullName;
        var start = new ProcessStartInfo(executable,
            ["-d", directory, "-a", "127.0.0.1", "-p", port.ToString(), "--silent", "--configure-bucket", bucket])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(start) ?? throw new InvalidOperationException("s3rver did not start.");
        // Drain its output so it never blocks on a full pipe.
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new LocalS3Server(process, directory, port, bucket);
        if (await LocalRedisServer.AcceptsConnectionsAsync(port, TimeSpan.FromSeconds(30), process)) return server;
        await server.DisposeAsync();
        throw new InvalidOperationException($"s3rver did not listen on port {port} within 30 s.");
    }

    /// <summary>Kills the server and deletes its data.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
    }
}
