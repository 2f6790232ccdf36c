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
        latencies.Sort();
        report.Add("requests", latencies.Count);
        report.Add("errors", errors);
        report.Add("seconds", seconds);
        report.Add("p50_ms", latencies.Count == 0 ? double.NaN : latencies[latencies.Count / 2]);
        report.Add("p99_ms", latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))]);
    }

    /// <summary>Runs this program's <c>loadgen-ws</c> suite as a child process and reads its figures.</summary>
    public static async Task<LoadGeneratorSuite.Result> RunChildAsync(Uri socketAddress, string authorization, TimeSpan duration, string bodyFile, bool binary, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(StreamLoadGeneratorSuite).Assembly.Location);
        foreach (var argument in new[] { "loadgen-ws", socketAddress.ToString(), authorization, duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), bodyFile, binary ? "binary" : "text" })
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0) throw new InvalidOperationException($"WebSocket load generator exited {process.ExitCode}: {await errors}");
        var figures = (await output).Split('\n').Select(l => l.Split(": ", 2)).Where(p => p.Length == 2 && !p[0].StartsWith('#'))
            .ToDictionary(p => p[0], p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        return new LoadGeneratorSuite.Result((int)figures["requests"], (int)figures["errors"], figures["seconds"], figures["p50_ms"], figures["p99_ms"]);
    }
}
