using TorchSharp;
using VlaCloud.Actions;
using static TorchSharp.torch;

namespace VlaCloud.Policy;

public sealed partial class VlaPolicy
{
    /// <summary>
    /// Action chunks for a batch of observations, each <c>[H, action_dim]</c> in its embodiment's units.
    /// Each sample's noise comes from its own seed, so a sample's result does not depend on the batch
    /// it was served in (up to float rounding). <paramref name="steps"/> Euler steps (default from the config).
    /// A config with <see cref="PolicyConfig.PointGuidance"/> reads <paramref name="guides"/> when given (one per observation;
    /// the caller knows where the objects are) and otherwise asks System 2 first (<see cref="GeneratePointGuides"/>).
    /// </summary>
    /// <remarks>
    /// An InternVLA-M1 policy samples by DDIM: <paramref name="steps"/> DDIM steps (default the config's, 10 released) with
    /// classifier-free guidance of scale <paramref name="cfgScale"/> (default the config's, 1.5 released; 1 or less turns
    /// guidance off). The ST4VLA family has no guidance and ignores the scale.
    /// </remarks>
    public ActionChunk[] SampleActions(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps = null, IReadOnlyList<PointGuide?>? guides = null,
        double? cfgScale = null, IReadOnlyList<string?>? sessions = null)
    {
        if (observations.Count == 0) return [];
        using var sampling = StartSampling(observations, seeds, steps, guides, cfgScale, sessions);
        while (!sampling.Done) sampling.Step();
        return sampling.Finish();
    }

    /// <summary>
    /// <see cref="SampleActions(IReadOnlyList{Observation}, IReadOnlyList{long}, int?, IReadOnlyList{PointGuide?}, double?, IReadOnlyList{string?})"/>
    /// one denoising step at a time: computes the batch's prefix (vision, language, condition, the point guides if asked)
    /// and its seeded noise now, and returns the sampling for the caller to step (<see cref="ActionSampling.Step"/>) and
    /// finish, with other work in between if it likes. The result is the same as running the steps back to back.
    /// <c>sessions</c>, when given, holds one session id (or null) per observation: an observation of a session whose last
    /// prefix was computed for the same observation (images, instruction, state, embodiment) reuses it instead of running
    /// the VLM again (<see cref="SessionPrefixes"/>); the rest are computed together and remembered for their sessions.
    /// </summary>
    public ActionSampling StartSampling(IReadOnlyList<Observation> observations, IReadOnlyList<long> seeds, int? steps = null, IReadOnlyList<PointGuide?>? guides = null,
        double? cfgScale = null, IReadOnlyList<string?>? sessions = null)
    {
        if (observations.Count == 0) throw new ArgumentException("no observations to sample for");
        if (seeds.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {seeds.Count} seeds");
        if (sessions is not null && sessions.Count != observations.Count) throw new ArgumentException($"{observations.Count} observations but {sessions.Count} sessions");
        return family.StartSampling(observations, seeds, steps, guides, cfgScale, sessions);
    }

    /// <summary>The default of <see cref="SessionPrefixes"/>.</summary>
    public const int DefaultSessionPrefixes = 64;

    /// <summary>Each session's last prefix, cleared when the statistics or the weights may change.</summary>
    internal SessionPrefixCache Prefixes { get; } = new(DefaultSessionPrefixes);

    /// <summary>
    /// Sessions whose last prefix (the VLM's condition for their last observation) is kept for sampling with a session id
    /// (least recently used evicted past it); 0 turns the cache off. Default <see cref="DefaultSessionPrefixes"/>.
    /// </summary>
    public int SessionPrefixes
    {
        get => Prefixes.Capacity;
        set => Prefixes.Capacity = value;
    }

    /// <summary>Observations whose prefix came from the session cache.</summary>
    public long PrefixHits => Prefixes.Hits;

    /// <summary>One observation's action chunk <c>[H, action_dim]</c>.</summary>
    public ActionChunk SampleActions(Observation observation, long seed, int? steps = null) => SampleActions([observation], [seed], steps)[0];

    /// <summary>
    /// System 2's answers to the point and placement questions about each observation, as the guide System 1 reads
    /// (<see cref="PolicyConfig.PointGuidance"/>). Both questions of every observation go through one batched decode.
    /// </summary>
    public PointGuide[] GeneratePointGuides(IReadOnlyList<Observation> observations) => family.GeneratePointGuides(observations);

    /// <summary>Standard normal noise of one sample from its own generator.</summary>
    internal static Tensor Noise(long seed, long h, long a)
    {
        using var generator = new Generator((ulong)seed);
        return randn([h, a], float32, CPU, generator: generator);
    }

    /// <summary>
    /// Asks the VLM for a point, box, trajectory or placement point about each observation's instruction and decodes
    /// greedily with a KV cache, allowing only coordinate tokens (and the end token where a trajectory may end),
    /// so every answer parses. Coordinates are pixels of each observation's first image, and the VLM sees only that image.
    /// </summary>
    /// <remarks>
    /// An InternVLA-M1 policy answers in text, as Qwen2.5-VL does: the question (the same as in training) after the first
    /// image, greedy decoding with the KV cache up to a length fitting the kind, then Qwen's JSON
    /// (<c>[{"bbox_2d": [x1, y1, x2, y2]}]</c>, <c>point_2d</c>, a trajectory's <c>[[x, y], …]</c>, in the resized
    /// image's pixels) parsed back into the camera's pixels. Its prediction keeps the text
    /// (<see cref="SpatialPrediction.Text"/>); text holding no answer of the kind gives empty coordinates.
    /// </remarks>
    public SpatialPrediction[] GenerateSpatial(IReadOnlyList<Observation> observations, SpatialKind kind)
    {
        if (observations.Count == 0) return [];
        return family.GenerateSpatial(observations, kind);
    }
}
