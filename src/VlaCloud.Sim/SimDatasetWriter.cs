using System.Text.Json;
using System.Text.Json.Nodes;
using VlaCloud.Datasets;

namespace VlaCloud.Sim;

/// <summary>
/// Writes recorded simulator episodes as a LeRobot v2.1 dataset through the format's own
/// <see cref="Datasets.LeRobotWriter"/>: this maps an episode to frames (both cameras, state, action), its scene to
/// the episode's extra metadata (split, seed, task kind, objects, success) and its labels to
/// <c>meta/spatial_annotations.jsonl</c> (<c>camera</c>, <c>image_size</c> [w, h], <c>instruction</c>, <c>target</c>
/// and <c>destination</c> as <c>{name, point [x,y], box [x1,y1,x2,y2]}</c>, <c>trajectory</c> [[x,y],…], all in
/// pixels of the main camera), and adds <c>meta/sim_splits.json</c> (the split protocol).
/// </summary>
public sealed class SimDatasetWriter
{
    private readonly Datasets.LeRobotWriter _writer;
    private readonly string _root;
    private readonly CameraSpec _main;

    /// <summary>Starts a dataset in <paramref name="root"/> (created; must be empty or absent).</summary>
    public SimDatasetWriter(string root, SimEmbodiment embodiment)
    {
        if (embodiment.Cameras.Select(c => c.Name).Order().SequenceEqual(["main", "wrist"]) is false)
            throw new ArgumentException("the writer stores the simulator's two cameras, main and wrist", nameof(embodiment));
        _writer = new Datasets.LeRobotWriter(root, new LeRobotSchema(embodiment.Name, embodiment.ControlHz, embodiment.StateNames, embodiment.ActionNames,
            [.. embodiment.Cameras.Select(c => new LeRobotCamera(c.Name, c.Width, c.Height))]));
        _root = root;
        _main = embodiment.Cameras.First(c => c.Name == "main");
    }

    /// <summary>Episodes written so far.</summary>
    public int Episodes => _writer.Episodes;

    /// <summary>Frames written so far.</summary>
    public int Frames => _writer.Frames;

    /// <summary>Distinct instructions written so far.</summary>
    public int Tasks => _writer.Tasks;

    /// <summary>Appends one episode.</summary>
    public Task AddEpisodeAsync(RecordedEpisode episode, CancellationToken cancellationToken = default)
    {
        var instruction = episode.Scene.Task.Instruction;
        var frames = episode.Frames.Select((f, t) => new LeRobotFrame(f.Images, f.State, f.Action, JsonSerializer.SerializeToNode(new
        {
            camera = _main.FeatureKey,
            image_size = new[] { _main.Width, _main.Height },
            instruction,
            target = episode.Labels[t].Target,
            destination = episode.Labels[t].Destination,
            trajectory = episode.Labels[t].Trajectory,
        }, LineOptions)!.AsObject())).ToList();
        var metadata = JsonSerializer.SerializeToNode(new
        {
            split = episode.Scene.Split,
            seed = episode.Scene.Seed,
            task_kind = episode.Scene.Task.Kind == TaskKind.PickPlace ? "pick_place" : "push",
            target = episode.Scene.TargetKind.Phrase,
            destination = episode.Scene.TargetDestination.Phrase,
            paraphrased = episode.Scene.Task.Paraphrased,
            success = episode.Success,
        }, LineOptions)!.AsObject();
        return _writer.AddEpisodeAsync(new LeRobotEpisode(instruction, frames, metadata), cancellationToken);
    }

    /// <summary>Writes the metadata files; call once after the last episode.</summary>
    public async Task CompleteAsync(CancellationToken cancellationToken = default)
    {
        await _writer.CompleteAsync(cancellationToken);
        await File.WriteAllTextAsync(Path.Combine(_root, "meta", "sim_splits.json"), SimSplits.ToJson(), cancellationToken);
    }

    private static readonly JsonSerializerOptions LineOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
