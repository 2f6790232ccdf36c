using VlaCloud.Sim;

namespace VlaCloud.Sim.Tests;

public sealed class LabelsAndSplitsTests
{
    public static TheoryData<string, TaskKind> Splits() => new()
    {
        { "train", TaskKind.PickPlace }, { "train", TaskKind.Push }, { "unseen", TaskKind.PickPlace }, { "grounding", TaskKind.Push },
    };

    [Theory]
    [MemberData(nameof(Splits))]
    public void Every_frames_target_box_contains_exactly_the_pixels_the_target_draws(string split, TaskKind kind)
    {
        using var renderer = new Renderer(64);
        for (var episode = 0; episode < 10; episode++)
        {
            var scene = SceneGenerator.ForEpisode(SimSplits.Named(split), episode, kind);
            var recorded = EpisodeRecorder.RecordExpert(scene, SimEmbodiment.Tabletop, renderer);
            Assert.True(recorded.Success);
            for (var t = 0; t < recorded.Frames.Count; t++)
            {
                var frame = recorded.Frames[t];
                var labels = recorded.Labels[t];
                var with = frame.Images["main"];
                var without = renderer.RenderMainWithout(frame.World, scene.Task.TargetObject);
                var box = labels.Target.Box;
                var color = scene.TargetKind.Color;
                int changed = 0, ofTargetColour = 0;
                for (var v = 0; v < 64; v++)
                    for (var u = 0; u < 64; u++)
                    {
                        var i = (v * 64 + u) * 3;
                        if (with[i] == without[i] && with[i + 1] == without[i + 1] && with[i + 2] == without[i + 2]) continue;
                        changed++;
                        Assert.True(u >= box[0] && u < box[2] && v >= box[1] && v < box[3], $"pixel ({u},{v}) of the target lies outside its box [{string.Join(",", box)}]");
                        if (with[i] == color.R && with[i + 1] == color.G && with[i + 2] == color.B) ofTargetColour++;
                    }
                // The gripper may cover part of the object, never all of it.
                Assert.True(ofTargetColour > 0, $"episode {episode} frame {t}: no pixel of the target's colour");
                // A carried object lies under the closed gripper's fingers and bar; for a small shape at an unlucky offset
                // against the pixel grid only 11 of its pixels show.
                Assert.True(changed >= 8, $"episode {episode} frame {t}: only {changed} target pixels");
                Assert.True(box[2] - box[0] <= 9 && box[3] - box[1] <= 9, "a box is no larger than the object's extent");
            }
        }
    }

    [Fact]
    public void Labels_lie_in_the_image_and_the_trajectory_ends_where_the_episode_ends()
    {
        using var renderer = new Renderer(64);
        var scene = SceneGenerator.ForEpisode(SimSplits.Train, 3, TaskKind.PickPlace);
        var recorded = EpisodeRecorder.RecordExpert(scene, SimEmbodiment.Tabletop, renderer);
        var end = SpatialLabels.Point(recorded.Final.Effector, 64);

        foreach (var labels in recorded.Labels)
        {
            foreach (var p in labels.Trajectory.Append(labels.Target.Point).Append(labels.Destination.Point))
            {
                Assert.InRange(p[0], 0, 63);
                Assert.InRange(p[1], 0, 63);
            }
            Assert.Equal(end, labels.Trajectory[^1]);
            Assert.Equal(SpatialLabels.Point(scene.TargetDestination.Center, 64), labels.Destination.Point);
        }
        // A pick-and-place ends with the object released at the destination's centre.
        Assert.Equal(recorded.Labels[0].Destination.Point, recorded.Labels[0].Trajectory[^1]);
        Assert.Equal(SpatialLabels.Point(recorded.Frames[0].World.Effector, 64), recorded.Labels[0].Trajectory[0]);
    }

    [Fact]
    public void Held_out_objects_and_paraphrases_never_appear_in_training_scenes()
    {
        Assert.Empty(SimSplits.SeenKinds.Intersect(SimSplits.HeldOutKinds));
        Assert.Equal(Catalog.AllKinds.Count, SimSplits.SeenKinds.Count + SimSplits.HeldOutKinds.Count);
        foreach (var kind in Enum.GetValues<TaskKind>())
            Assert.Empty(Instructions.Seen[kind].Intersect(Instructions.Paraphrases[kind]));
        // Each held-out combination is new only as a combination: its shape and colour are both seen.
        foreach (var held in SimSplits.HeldOutKinds)
        {
            var (colour, shape) = (held.Split(' ')[0], held.Split(' ')[1]);
            Assert.Contains(SimSplits.SeenKinds, k => k.StartsWith(colour + " ", StringComparison.Ordinal));
            Assert.Contains(SimSplits.SeenKinds, k => k.EndsWith(" " + shape, StringComparison.Ordinal));
        }

        var trainInstructions = new HashSet<string>();
        for (var e = 0; e < 300; e++)
        {
            var scene = SceneGenerator.ForEpisode(SimSplits.Train, e, SceneGenerator.KindOf(e, [TaskKind.PickPlace, TaskKind.Push]));
            Assert.All(scene.Objects, o => Assert.DoesNotContain(o.Phrase, SimSplits.HeldOutKinds));
            Assert.False(scene.Task.Paraphrased);
            trainInstructions.Add(scene.Task.Instruction);
        }
        for (var e = 0; e < 100; e++)
        {
            var unseen = SceneGenerator.ForEpisode(SimSplits.Unseen, e, SceneGenerator.KindOf(e, [TaskKind.PickPlace, TaskKind.Push]));
            Assert.Contains(unseen.TargetKind.Phrase, SimSplits.HeldOutKinds);
            Assert.True(unseen.Task.Paraphrased);
            Assert.DoesNotContain(unseen.Task.Instruction, trainInstructions);
        }
    }

    [Fact]
    public void Splits_draw_from_disjoint_seeds()
    {
        var seeds = SimSplits.All.Select(s => (s.SeedOf(0), s.SeedOf(SimSplits.SeedStride - 1))).OrderBy(r => r.Item1).ToArray();
        for (var i = 1; i < seeds.Length; i++) Assert.True(seeds[i - 1].Item2 < seeds[i].Item1);
        Assert.Equal(SimSplits.All.Count, SimSplits.All.Select(s => s.Name).Distinct().Count());
        Assert.Throws<ArgumentOutOfRangeException>(() => SimSplits.Train.SeedOf(SimSplits.SeedStride));
    }

    [Fact]
    public void Scenes_have_two_to_four_objects_clear_of_the_destinations()
    {
        for (var e = 0; e < 200; e++)
        {
            var scene = SceneGenerator.ForEpisode(SimSplits.Train, e, e % 2 == 0 ? TaskKind.PickPlace : TaskKind.Push);
            Assert.InRange(scene.Objects.Count, 2, 4);
            Assert.Equal(scene.Objects.Count, scene.Objects.Distinct().Count());
            Assert.All(scene.ObjectPositions, p => Assert.All(scene.Destinations, d => Assert.False(d.Contains(p, Physics.ObjectRadius))));
        }
    }
}
