namespace VlaCloud.Sim;

/// <summary>Shapes an object can have. Physics treats every shape as a disc; only rendering differs.</summary>
public enum ObjectShape
{
    /// <summary>A filled square.</summary>
    Cube,
    /// <summary>A filled disc.</summary>
    Ball,
    /// <summary>A filled triangle.</summary>
    Triangle,
    /// <summary>A filled diamond (square rotated 45°).</summary>
    Diamond,
}

/// <summary>Kinds of destination: a container to place into or a region to push onto.</summary>
public enum DestinationKind
{
    /// <summary>A round bowl (drawn as a ring).</summary>
    Bowl,
    /// <summary>A square tray (drawn as a square outline).</summary>
    Tray,
}

/// <summary>A named colour with its exact RGB value, as rendered (no antialiasing, so pixels are exact).</summary>
public sealed record SimColor(string Name, byte R, byte G, byte B);

/// <summary>An object kind: one shape in one colour, e.g. "red cube".</summary>
public sealed record ObjectKind(ObjectShape Shape, SimColor Color)
{
    /// <summary>The words an instruction uses for it, e.g. "red cube".</summary>
    public string Phrase => $"{Color.Name} {Catalog.ShapeNoun(Shape)}";

    /// <inheritdoc />
    public override string ToString() => Phrase;
}

/// <summary>The fixed vocabulary of the simulator: colours, shapes, destinations.</summary>
public static class Catalog
{
    /// <summary>Object colours, saturated and far apart so a 64×64 image tells them apart.</summary>
    public static IReadOnlyList<SimColor> Colors { get; } =
    [
        new("red", 220, 40, 40),
        new("green", 40, 170, 60),
        new("blue", 40, 80, 220),
        new("yellow", 230, 200, 30),
        new("purple", 150, 60, 190),
        new("orange", 240, 130, 20),
    ];

    /// <summary>Destination colours; distinct from object colours so a destination never reads as an object.</summary>
    public static IReadOnlyList<SimColor> DestinationColors { get; } =
    [
        new("black", 30, 30, 30),
        new("white", 250, 250, 250),
        new("brown", 120, 70, 30),
        new("pink", 240, 120, 180),
    ];

    /// <summary>Table surface colour.</summary>
    public static SimColor Table { get; } = new("table", 196, 186, 160);

    /// <summary>Gripper colour.</summary>
    public static SimColor Gripper { get; } = new("gripper", 90, 90, 100);

    /// <summary>Every shape.</summary>
    public static IReadOnlyList<ObjectShape> Shapes { get; } = Enum.GetValues<ObjectShape>();

    /// <summary>Every shape × colour combination, in a fixed order.</summary>
    public static IReadOnlyList<ObjectKind> AllKinds { get; } =
        [.. Shapes.SelectMany(s => Colors.Select(c => new ObjectKind(s, c)))];

    /// <summary>The noun an instruction uses for a shape.</summary>
    public static string ShapeNoun(ObjectShape shape) => shape switch
    {
        ObjectShape.Cube => "cube",
        ObjectShape.Ball => "ball",
        ObjectShape.Triangle => "triangle",
        ObjectShape.Diamond => "diamond",
        _ => throw new ArgumentOutOfRangeException(nameof(shape)),
    };

    /// <summary>The noun an instruction uses for a destination kind.</summary>
    public static string DestinationNoun(DestinationKind kind) => kind switch
    {
        DestinationKind.Bowl => "bowl",
        DestinationKind.Tray => "tray",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Finds a colour by name among object and destination colours.</summary>
    public static SimColor ColorNamed(string name) =>
        Colors.Concat(DestinationColors).FirstOrDefault(c => c.Name == name)
        ?? throw new ArgumentException($"unknown colour '{name}'", nameof(name));
}
