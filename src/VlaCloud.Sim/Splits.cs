using System.Text.Json;
using System.Text.Json.Serialization;

namespace VlaCloud.Sim;

/// <summary>
/// One split of episodes, as data. Episode <c>i</c> of a split uses seed <c>SeedBase + i</c>, so two
/// splits never share a scene as long as fewer than <see cref="SimSplits.SeedStride"/> episodes are drawn.
/// An evaluation may start further into the split's range (<see cref="SeedOf(int, int)"/>), so the scenes a result is
/// reported on need not be the ones a policy was developed on.
/// </summary>
/// <param name="Name">Split name.</param>
/// <param name="TargetKinds">Object kinds ("red cube") the task's target is drawn from.</param>
/// <param name="DistractorKinds">Object kinds the other objects are drawn from.</param>
/// <param name="ParaphrasedInstructions">Whether instructions come from the held-out paraphrases rather than the seen templates.</param>
/// <param name="SeedBase">First seed.</param>
public sealed record SimSplit(
    string Name,
    IReadOnlyList<string> TargetKinds,
    IReadOnlyList<string> DistractorKinds,
    bool ParaphrasedInstructions,
    int SeedBase)
{
    /// <summary>The seed of episode <paramref name="episode"/> in the development range (<see cref="SimSplits.DevelopmentSeedBase"/>).</summary>
    public int SeedOf(int episode) => SeedOf(episode, SimSplits.DevelopmentSeedBase);

    /// <summary>
    /// The seed of episode <paramref name="episode"/> counted from <paramref name="seedBase"/> within this split's range:
    /// <c>SeedBase + seedBase + episode</c>. Both must stay inside the range (their sum below
    /// <see cref="SimSplits.SeedStride"/>), so a seed base never reaches into another split's scenes (the training ones above all).
    /// </summary>
    public int SeedOf(int episode, int seedBase)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(seedBase);
        if (episode < 0 || (long)seedBase + episode >= SimSplits.SeedStride) throw new ArgumentOutOfRangeException(nameof(episode), episode,
            $"episode {episode} from seed base {seedBase} lies outside the split's {SimSplits.SeedStride} seeds");
        return SeedBase + seedBase + episode;
    }

    internal IReadOnlyList<ObjectKind> TargetObjectKinds => [.. TargetKinds.Select(SimSplits.KindNamed)];

    internal IReadOnlyList<ObjectKind> DistractorObjectKinds => [.. DistractorKinds.Select(SimSplits.KindNamed)];
}

/// <summary>
/// The seen/unseen protocol. Six shape × colour combinations are held out of everything a policy is
/// trained to act on (each shape and each colour still appears in training, only the combination is new),
/// and instruction paraphrases are held out likewise. <c>grounding</c> covers every combination, for
/// spatial-grounding data that, like web data in the paper, may show objects the action data never does.
/// </summary>
public static class SimSplits
{
    /// <summary>Seeds reserved per split.</summary>
    public const int SeedStride = 1_000_000;

    /// <summary>
    /// Whether <paramref name="episodes"/> episodes counted from <paramref name="seedBase"/> stay inside a split's
    /// <see cref="SeedStride"/> seeds (what <see cref="SimSplit.SeedOf(int, int)"/> demands of each of them).
    /// </summary>
    public static bool SeedRangeFits(int seedBase, int episodes) => seedBase >= 0 && (long)seedBase + episodes <= SeedStride;

    /// <summary>Throws unless <see cref="SeedRangeFits"/>: checked once before a run, not at its n-th episode.</summary>
    public static void ThrowIfSeedRangeOutside(int seedBase, int episodes, string paramName)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(seedBase, paramName);
        if (!SeedRangeFits(seedBase, episodes))
            throw new ArgumentOutOfRangeException(paramName, $"seed base {seedBase} + {episodes} episodes run past the split's {SeedStride} seeds");
    }

    /// <summary>
    /// The seed base of development: evaluations that do not name one run a split's first seeds, which every earlier
    /// evaluation (and all tuning) used. Results meant for reporting take another base, on scenes never looked at before.
    /// </summary>
    public const int DevelopmentSeedBase = 0;

    /// <summary>Combinations never used in training action data.</summary>
    public static IReadOnlyList<string> HeldOutKinds { get; } =
        ["green cube", "purple ball", "blue triangle", "orange diamond", "yellow ball", "red triangle"];

    /// <summary>Combinations used in training action data.</summary>
    public static IReadOnlyList<string> SeenKinds { get; } =
        [.. Catalog.AllKinds.Select(k => k.Phrase).Where(p => !HeldOutKinds.Contains(p))];

    /// <summary>Training demonstrations.</summary>
    public static SimSplit Train { get; } = new("train", SeenKinds, SeenKinds, false, 1 * SeedStride);

    /// <summary>Evaluation on new scenes of the training distribution.</summary>
    public static SimSplit Seen { get; } = new("seen", SeenKinds, SeenKinds, false, 2 * SeedStride);

    /// <summary>Evaluation with held-out target objects and seen wordings.</summary>
    public static SimSplit UnseenObjects { get; } = new("unseen_objects", HeldOutKinds, SeenKinds, false, 3 * SeedStride);

    /// <summary>Evaluation with seen objects and paraphrased instructions.</summary>
    public static SimSplit UnseenInstructions { get; } = new("unseen_instructions", SeenKinds, SeenKinds, true, 4 * SeedStride);

    /// <summary>Evaluation with held-out target objects and paraphrased instructions.</summary>
    public static SimSplit Unseen { get; } = new("unseen", HeldOutKinds, SeenKinds, true, 5 * SeedStride);

    /// <summary>Scenes over every combination with seen wordings, for spatial-grounding labels.</summary>
    public static SimSplit Grounding { get; } =
        new("grounding", [.. Catalog.AllKinds.Select(k => k.Phrase)], [.. Catalog.AllKinds.Select(k => k.Phrase)], false, 6 * SeedStride);

    /// <summary>Every split, in a fixed order.</summary>
    public static IReadOnlyList<SimSplit> All { get; } = [Train, Seen, UnseenObjects, UnseenInstructions, Unseen, Grounding];

    /// <summary>The evaluation splits.</summary>
    public static IReadOnlyList<SimSplit> Evaluation { get; } = [Seen, UnseenObjects, UnseenInstructions, Unseen];

    /// <summary>Finds a split by name.</summary>
    public static SimSplit Named(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException(
            $"unknown split '{name}'; known: {string.Join(", ", All.Select(s => s.Name))}", nameof(name));

    /// <summary>The protocol as JSON (written next to generated datasets).</summary>
    public static string ToJson() => JsonSerializer.Serialize(
        new { held_out_kinds = HeldOutKinds, seen_kinds = SeenKinds, splits = All, instructions = new { seen = Instructions.Seen, paraphrases = Instructions.Paraphrases } },
        JsonOptions);

    internal static JsonSerializerOptions JsonOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    internal static ObjectKind KindNamed(string phrase) =>
        Catalog.AllKinds.FirstOrDefault(k => k.Phrase == phrase) ?? throw new ArgumentException($"unknown object kind '{phrase}'", nameof(phrase));
}
