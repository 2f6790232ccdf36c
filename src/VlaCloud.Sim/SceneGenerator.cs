namespace VlaCloud.Sim;

/// <summary>Samples initial scenes. The same split, seed and task kind always give the same scene.</summary>
public static class SceneGenerator
{
    private const double Separation = 2 * Physics.ObjectRadius + 0.05;
    // Objects start clear of every destination, so a destination is always empty at the start.
    private const double DestinationClearance = Physics.DestinationHalfSize * 1.42 + Physics.ObjectRadius + 0.02;
    // A pushed object sweeps a corridor; nothing else may stand in it.
    private const double PushCorridor = 2 * Physics.ObjectRadius + 0.02;
    internal const double PushStandoff = Physics.EffectorRadius + Physics.ObjectRadius + 0.02;

    /// <summary>The task kind of episode <paramref name="episode"/> when a dataset or evaluation mixes <paramref name="kinds"/>.</summary>
    public static TaskKind KindOf(int episode, IReadOnlyList<TaskKind> kinds) => kinds[episode % kinds.Count];

    /// <summary>Scene of episode <paramref name="episode"/> of <paramref name="split"/>, counted from <paramref name="seedBase"/> (see <see cref="SimSplit.SeedOf(int, int)"/>).</summary>
    public static SceneSpec ForEpisode(SimSplit split, int episode, TaskKind kind, int seedBase = SimSplits.DevelopmentSeedBase) =>
        Generate(split, split.SeedOf(episode, seedBase), kind);

    /// <summary>Samples a scene from <paramref name="seed"/>: 2–4 objects, two destinations, one task.</summary>
    public static SceneSpec Generate(SimSplit split, int seed, TaskKind kind)
    {
        var rng = new Random(seed);
        for (var attempt = 0; attempt < 10_000; attempt++)
        {
            var scene = TrySample(split, seed, kind, rng);
            if (scene is not null) return scene;
        }
        throw new InvalidOperationException($"no valid scene for seed {seed} in split {split.Name}");
    }

    private static SceneSpec? TrySample(SimSplit split, int seed, TaskKind kind, Random rng)
    {
        var destinations = SampleDestinations(rng);
        var targetKinds = split.TargetObjectKinds;
        var target = targetKinds[rng.Next(targetKinds.Count)];
        var pool = split.DistractorObjectKinds.Where(k => k != target).ToList();
        var distractorCount = 1 + rng.Next(3);
        var kinds = new List<ObjectKind> { target };
        for (var i = 0; i < distractorCount; i++)
        {
            var pick = pool[rng.Next(pool.Count)];
            pool.Remove(pick);
            kinds.Add(pick);
        }

        var positions = new List<Vec2>();
        foreach (var _ in kinds)
        {
            Vec2? placed = null;
            for (var tries = 0; tries < 200 && placed is null; tries++)
            {
                var p = new Vec2(Uniform(rng, 0.08, 0.92), Uniform(rng, 0.08, 0.92));
                if (positions.Any(q => Vec2.Distance(p, q) < Separation)) continue;
                if (destinations.Any(d => Vec2.Distance(p, d.Center) < DestinationClearance)) continue;
                placed = p;
            }
            if (placed is null) return null;
            positions.Add(placed.Value);
        }

        var goal = rng.Next(destinations.Count);
        if (kind == TaskKind.Push && !PushIsClear(positions, destinations[goal].Center)) return null;

        // Shuffle so the target's index says nothing about which object it is.
        var order = Enumerable.Range(0, kinds.Count).OrderBy(_ => rng.Next()).ToArray();
        var objects = order.Select(i => kinds[i]).ToArray();
        var objectPositions = order.Select(i => positions[i]).ToArray();
        var targetIndex = Array.IndexOf(order, 0);

        var templates = (split.ParaphrasedInstructions ? Instructions.Paraphrases : Instructions.Seen)[kind];
        var instruction = Instructions.Render(templates[rng.Next(templates.Count)], target, destinations[goal]);
        var effector = new Vec2(Uniform(rng, 0.1, 0.9), Uniform(rng, 0.1, 0.9));
        return new SceneSpec(seed, split.Name, objects, objectPositions, destinations, effector,
            new TaskSpec(kind, targetIndex, goal, instruction, split.ParaphrasedInstructions));
    }

    private static List<Destination> SampleDestinations(Random rng)
    {
        var result = new List<Destination>();
        var minGap = 2 * Physics.DestinationHalfSize * 1.42 + 0.04;
        while (result.Count < 2)
        {
            var kind = (DestinationKind)rng.Next(2);
            var color = Catalog.DestinationColors[rng.Next(Catalog.DestinationColors.Count)];
            var center = new Vec2(Uniform(rng, 0.15, 0.85), Uniform(rng, 0.15, 0.85));
            if (result.Any(d => d.Kind == kind && d.Color == color)) continue;
            if (result.Any(d => Vec2.Distance(d.Center, center) < minGap)) continue;
            result.Add(new Destination(kind, color, center, Physics.DestinationHalfSize));
        }
        return result;
    }

    /// <summary>The expert pushes from behind the object straight at the goal; that lane must be free and reachable.</summary>
    private static bool PushIsClear(List<Vec2> positions, Vec2 goal)
    {
        var target = positions[0];
        var distance = Vec2.Distance(target, goal);
        if (distance is < 0.2 or > 0.75) return false;
        var direction = (goal - target).Normalized();
        var behind = target - direction * PushStandoff;
        if (behind.X is < 0.07 or > 0.93 || behind.Y is < 0.07 or > 0.93) return false;
        return positions.Skip(1).All(p => DistanceToSegment(p, behind, goal) > PushCorridor);
    }

    internal static double DistanceToSegment(Vec2 p, Vec2 a, Vec2 b)
    {
        var ab = b - a;
        var t = Math.Clamp(Vec2.Dot(p - a, ab) / Math.Max(Vec2.Dot(ab, ab), 1e-12), 0, 1);
        return Vec2.Distance(p, a + ab * t);
    }

    private static double Uniform(Random rng, double lo, double hi) => lo + (hi - lo) * rng.NextDouble();
}
