using System.Diagnostics;
using System.Net.WebSockets;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The control-loop client of the serving suite, in a process of its own so the host's process pays only for serving:
/// <c>loadgen-ws URL AUTHORIZATION SECONDS BODY_FILE text|binary</c> opens one WebSocket (with the given
/// <c>Authorization</c> header), reads the route's first message (the stream's hello, openpi's metadata), then sends the
/// body and reads the whole answer in a closed loop for SECONDS, and prints <c>requests</c>, <c>errors</c> (error frames:
/// a text answer on a binary route), <c>seconds</c>, <c>p50_ms</c> and <c>p99_ms</c>.
/// </summary>
internal sealed class StreamLoadGeneratorSuite : IBenchmarkSuite
{
    public string Name => "loadgen-ws";

    public string Description => "(used by serving) one closed-loop WebSocket control loop in a process of its own";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        if (args.Length != 5) throw new ArgumentException("loadgen-ws URL AUTHORIZATION SECONDS BODY_FILE text|binary");
        var duration = TimeSpan.FromSeconds(double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture));
        var body = await File.ReadAllBytesAsync(args[3], cancellationToken);
        var type = args[4] == "binary" ? WebSocketMessageType.Binary : WebSocketMessageType.Text;
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", args[1]);
        await socket.ConnectAsync(new Uri(args[0]), cancellationToken);
        var buffer = new byte[1 << 20];
        await ServingSuite.ReceiveWholeAsync(socket, buffer, cancellationToken);
        var latencies = new List<double>();
        var errors = 0;
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < duration && !cancellationToken.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            await socket.SendAsync(body, type, true, cancellationToken);
            var answer = await ServingSuite.ReceiveWholeAsync(socket, buffer, cancellationToken);
            if (answer == WebSocketMessageType.Close || type == WebSocketMessageType.Binary && answer != WebSocketMessageType.Binary) errors++;
            else latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (answer == WebSocketMessageType.Close) break;
        }
        var seconds = watch.Elapsed.TotalSeconds;
        if (socket.State == WebSocketState.Open) await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cancellationToken);
        LoadGeneratorSuite.AddFigures(report, latencies, errors, seconds);
    }

    /// <summary>Runs this program's <c>loadgen-ws</c> suite as a child process and reads its figures.</summary>
    public static Task<LoadGeneratorSuite.Result> RunChildAsync(Uri socketAddress, string authorization, TimeSpan duration, string bodyFile, bool binary, CancellationToken cancellationToken) =>
        LoadGeneratorSuite.RunSuiteChildAsync("WebSocket load generator",
            ["loadgen-ws", socketAddress.ToString(), authorization, duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), bodyFile, binary ? "binary" : "text"],
            cancellationToken);
}
