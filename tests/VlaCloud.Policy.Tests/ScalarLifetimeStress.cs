using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

/// <summary>
/// A loop of tensor ops that pass TorchSharp <see cref="Scalar"/>s made on the fly (<c>x * 0.5</c>, <c>x.add(1.0)</c>,
/// <c>x.eq(3)</c>, and <c>a + b</c>, whose alpha is a <c>1</c> TorchSharp converts itself) while another thread keeps
/// collecting garbage and running finalisers. TorchSharp 0.107 hands <c>scalar.Handle</c> to libtorch and keeps
/// nothing alive, so a collection during the native call may finalise the <see cref="Scalar"/> (deleting the
/// c10::Scalar) while libtorch still reads it: an "Unknown scalar type" error, a wrong result, or a dead process.
/// It runs in a child process (<see cref="Program"/>) because the last of those kills whoever runs it.
/// </summary>
public static class ScalarLifetimeStress
{
    /// <summary>The figures of one run (printed as <c>key: value</c> lines).</summary>
    public sealed record Outcome(int Iterations, int Errors, int WrongResults, int Collections, TimeSpan Elapsed, string? FirstError);

    /// <summary>
    /// Runs <paramref name="iterations"/> rounds of the loop with a collecting thread beside it (or without one, to
    /// time the loop alone).
    /// </summary>
    public static Outcome Run(int iterations, int elements, bool collect = true)
    {
        var x = ones(elements, dtype: float32);
        var stop = false;
        var collections = 0;
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                Interlocked.Increment(ref collections);
            }
        }) { IsBackground = true };
        var errors = 0;
        var wrong = 0;
        string? first = null;
        var watch = Stopwatch.StartNew();
        if (collect) collector.Start();
        for (var i = 0; i < iterations; i++)
        {
            try
            {
                using var scope = NewDisposeScope();
                var half = x * 0.5;                // Tensor * double: TorchSharp converts the double
                var shifted = half.add(1.0);       // add(Scalar) with our double, and its own alpha 1
                var sum = half + shifted;          // add(Tensor): TorchSharp's own alpha 1
                var quarter = shifted.div(2.0);    // 0.75
                var threes = (sum * 2).eq(4L);     // (0.5 + 1.5) * 2 == 4
                // Each result is checked: a freed Scalar whose memory was reused may still have a valid type tag.
                if (half[0].ToSingle() != 0.5f || shifted[0].ToSingle() != 1.5f || sum[0].ToSingle() != 2f
                    || quarter[0].ToSingle() != 0.75f || !threes.all().ToBoolean())
                    wrong++;
            }
            catch (ExternalException e)
            {
                errors++;
                first ??= e.Message;
            }
        }
        Volatile.Write(ref stop, true);
        if (collect) collector.Join();
        return new Outcome(iterations, errors, wrong, collections, watch.Elapsed, first);
    }
}
