using System.Diagnostics;
using System.Net.Http.Headers;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The load generator of the serving suite, run in a process of its own so the host's process pays only for serving:
/// <c>loadgen URL KEY CLIENTS SECONDS BODY_FILE</c> posts the JSON body to <c>/v1/act</c> from CLIENTS closed-loop
/// clients for SECONDS and prints <c>requests</c>, <c>errors</c>, <c>seconds</c>, <c>p50_ms</c> and <c>p99_ms</c>.
/// </summary>
internal sealed class LoadGeneratorSuite : IBenchmarkSuite
{
    public string Name => "loadgen";

    public string Description => "(used by serving) closed-loop /v1/act clients in a process of their own";

    public async Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        if (args.Length != 5) throw new ArgumentException("loadgen URL KEY CLIENTS SECONDS BODY_FILE");
        var (address, key, clients, duration) = (new Uri(args[0]), args[1], int.Parse(args[2]), TimeSpan.FromSeconds(double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture)));
        var body = await File.ReadAllBytesAsync(args[4], cancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var latencies = new List<double>[clients];
        var errors = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            latencies[c] = [];
            while (watch.Elapsed < duration && !cancellationToken.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await http.PostAsync("/v1/act", content, cancellationToken);
                if (response.IsSuccessStatusCode) latencies[c].Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                else Interlocked.Increment(ref errors);
            }
        }));
        AddFigures(report, latencies.SelectMany(l => l).ToList(), errors, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Prints the figures a load generator child reports (<see cref="RunSuiteChildAsync"/> reads them back).</summary>
    internal static void AddFigures(Report report, List<double> latencies, int errors, double seconds)
    {
        latencies.Sort();
        report.Add("requests", latencies.Count);
        report.Add("errors", errors);
        report.Add("seconds", seconds);
        report.Add("p50_ms", latencies.Count == 0 ? double.NaN : latencies[latencies.Count / 2]);
        report.Add("p99_ms", latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(latencies.Count * 0.99))]);
    }

    /// <summary>What one run of the load generator reported.</summary>
    public sealed record Result(int Requests, int Errors, double Seconds, double P50, double P99);

    /// <summary>Runs this program's <c>loadgen</c> suite as a child process and reads its figures.</summary>
    public static Task<Result> RunChildAsync(Uri address, string key, int clients, TimeSpan duration, string bodyFile, CancellationToken cancellationToken) =>
        RunSuiteChildAsync("load generator",
            ["loadgen", address.ToString(), key, clients.ToString(), duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), bodyFile],
            cancellationToken);

    /// <summary>Runs one of this program's load generator suites (its name first in <paramref name="arguments"/>) as a child process and reads its <see cref="AddFigures"/>.</summary>
    internal static async Task<Result> RunSuiteChildAsync(string what, IEnumerable<string> arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        // Under `dotnet VlaCloud.Benchmarks.dll` the process is the dotnet host; under the apphost it is the program.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(LoadGeneratorSuite).Assembly.Location);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var errors = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        if (process.ExitCode != 0) throw new InvalidOperationException($"{what} exited {process.ExitCode}: {await errors}");
        var figures = (await output).Split('\n').Select(l => l.Split(": ", 2)).Where(p => p.Length == 2 && !p[0].StartsWith('#'))
            .ToDictionary(p => p[0], p => double.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        return new Result((int)figures["requests"], (int)figures["errors"], figures["seconds"], figures["p50_ms"], figures["p99_ms"]);
    }
}
