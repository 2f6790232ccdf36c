using System.Globalization;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// The entry point of this test assembly when it is run as a program (<c>dotnet exec VlaCloud.Policy.Tests.dll …</c>):
/// tests whose code may kill the process run it in such a child (the test runner does not use this entry point).
/// </summary>
public static class Program
{
    /// <summary>
    /// <c>scalar-stress ITERATIONS [ELEMENTS] [no-collector]</c>: <see cref="ScalarLifetimeStress"/>, figures on stdout
    /// (<c>no-collector</c> times the loop without the collecting thread).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args is not ["scalar-stress", var count, .. var rest])
        {
            Console.Error.WriteLine("usage: scalar-stress ITERATIONS [ELEMENTS] [no-collector]");
            return 2;
        }
        var elements = rest is [var e, ..] ? int.Parse(e, CultureInfo.InvariantCulture) : 64;
        var collect = !rest.Contains("no-collector");
        var outcome = ScalarLifetimeStress.Run(int.Parse(count, CultureInfo.InvariantCulture), elements, collect);
        Console.WriteLine($"iterations: {outcome.Iterations}");
        Console.WriteLine($"errors: {outcome.Errors}");
        Console.WriteLine($"wrong_results: {outcome.WrongResults}");
        Console.WriteLine($"collections: {outcome.Collections}");
        Console.WriteLine($"elapsed_s: {outcome.Elapsed.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)}");
        if (outcome.FirstError is not null) Console.WriteLine($"first_error: {outcome.FirstError.Split(" (most recent call first)")[0].ReplaceLineEndings(" ")}");
        return outcome.Errors == 0 && outcome.WrongResults == 0 ? 0 : 1;
    }
}
