using System.Reflection;

namespace VlaCloud.Sim;

/// <summary>
/// The demo policy shipped with VlaCloud: a tiny ST4VLA checkpoint trained on this simulator
/// (<c>Demo/sim-tabletop-st4vla.tar</c>, embedded in this assembly; how it was trained is in the README's
/// experiment section). The host registers it as the public <c>sim-demo</c> model at start.
/// </summary>
public static class DemoCheckpoint
{
    private const string TarResource = "VlaCloud.Sim.Demo.sim-tabletop-st4vla.tar";
    private const string MetricsResource = "VlaCloud.Sim.Demo.sim-tabletop-st4vla.metrics.json";

    /// <summary>The checkpoint as a tar (the form <c>VlaPolicy.SaveTar</c> writes), or null in a build without it.</summary>
    public static Stream? Open() => Assembly.GetManifestResourceStream(TarResource);

    /// <summary>The checkpoint's measured closed-loop metrics as JSON (an empty object when none were recorded).</summary>
    public static string MetricsJson
    {
        get
        {
            using var stream = Assembly.GetManifestResourceStream(MetricsResource);
            return stream is null ? "{}" : new StreamReader(stream).ReadToEnd();
        }
    }

    private static Assembly Assembly => typeof(DemoCheckpoint).Assembly;
}
