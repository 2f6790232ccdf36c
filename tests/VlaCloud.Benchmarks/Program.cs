using VlaCloud.Benchmarks;

var suites = typeof(IBenchmarkSuite).Assembly.GetTypes()
    .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IBenchmarkSuite).IsAssignableFrom(t))
    .Select(t => (IBenchmarkSuite)Activator.CreateInstance(t)!)
    .OrderBy(s => s.Name)
    .ToDictionary(s => s.Name, StringComparer.OrdinalIgnoreCase);

if (args.Length == 0 || !suites.TryGetValue(args[0], out var suite))
{
    Console.Error.WriteLine("usage: dotnet run -c Release --project tests/VlaCloud.Benchmarks -- <suite> [args]");
    foreach (var s in suites.Values) Console.Error.WriteLine($"  {s.Name,-10} {s.Description}");
    return args.Length == 0 ? 0 : 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
var report = new Report(Console.Out);
report.Note($"suite {suite.Name} on {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
await suite.RunAsync(report, args[1..], cancel.Token);
return report.Failed ? 1 : 0;
