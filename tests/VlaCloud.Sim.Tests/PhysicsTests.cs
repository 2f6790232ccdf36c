using VlaCloud.Sim;

namespace VlaCloud.Sim.Tests;

public sealed class PhysicsTests
{
    private static readonly ObjectKind RedCube = new(ObjectShape.Cube, Catalog.ColorNamed("red"));
    private static readonly ObjectKind BlueBall = new(ObjectShape.Ball, Catalog.ColorNamed("blue"));

    private static SceneSpec Scene(Vec2 effector, params Vec2[] objects) => new(
        Seed: 0,
        Split: "test",
        Objects: [.. objects.Select((_, i) => i == 0 ? RedCube : BlueBall)],
        ObjectPositions: objects,
        Destinations: [new Destination(DestinationKind.Bowl, Catalog.ColorNamed("black"), new Vec2(0.8, 0.8), Physics.DestinationHalfSize)],
        EffectorStart: effector,
        Task: new TaskSpec(TaskKind.PickPlace, 0, 0, "put the red cube in the black bowl", false));

    [Fact]
    public void An_open_gripper_moving_over_an_object_neither_grasps_nor_moves_it()
    {
        var world = new TabletopWorld(Scene(new Vec2(0.3, 0.5), new Vec2(0.5, 0.5)));
        for (var i = 0; i < 8; i++) world.Apply([0.05f, 0f, 0f]);

        Assert.Equal(-1, world.HeldObject);
        Assert.Equal(new Vec2(0.5, 0.5), world.ObjectPositions[0]);
        Assert.True(world.Effector.X > 0.6);
    }

    [Fact]
    public void Closing_the_gripper_away_from_every_object_grasps_nothing()
    {
        var world = new TabletopWorld(Scene(new Vec2(0.3, 0.3), new Vec2(0.5, 0.5)));
        world.Apply([0f, 0f, 1f]);

        Assert.True(world.GripperClosed);
        Assert.Equal(-1, world.HeldObject);
        Assert.Equal(0f, world.State()[2]);
    }

    [Fact]
    public void A_grasped_object_moves_with_the_gripper_and_stays_where_it_is_released()
    {
        var world = new TabletopWorld(Scene(new Vec2(0.51, 0.5), new Vec2(0.5, 0.5)));
        world.Apply([0f, 0f, 1f]);
        Assert.Equal(0, world.HeldObject);
        Assert.Equal(0.5f, world.State()[2]);

        for (var i = 0; i < 4; i++) world.Apply([0.05f, 0.02f, 1f]);
        Assert.Equal(world.Effector, world.ObjectPositions[0]);
        Assert.Equal(0.71, world.Effector.X, 6);
        Assert.Equal(0.58, world.Effector.Y, 6);

        world.Apply([0f, 0f, 0f]);
        world.Apply([-0.05f, 0f, 0f]);
        Assert.Equal(-1, world.HeldObject);
        Assert.Equal(0.71, world.ObjectPositions[0].X, 6);
    }

    [Fact]
    public void A_carried_object_passes_over_others_but_a_lowered_gripper_pushes_them()
    {
        var carried = new TabletopWorld(Scene(new Vec2(0.2, 0.5), new Vec2(0.2, 0.5), new Vec2(0.4, 0.5)));
        carried.Apply([0f, 0f, 1f]);
        for (var i = 0; i < 6; i++) carried.Apply([0.05f, 0f, 1f]);
        Assert.Equal(new Vec2(0.4, 0.5), carried.ObjectPositions[1]);

        var pushing = new TabletopWorld(Scene(new Vec2(0.2, 0.5), new Vec2(0.8, 0.2), new Vec2(0.4, 0.5)));
        pushing.Apply([0f, 0f, 1f]);
        for (var i = 0; i < 6; i++) pushing.Apply([0.05f, 0f, 1f]);
        var ball = pushing.ObjectPositions[1];
        Assert.Equal(0.5, ball.Y, 6);
        Assert.Equal(pushing.Effector.X + Physics.EffectorRadius + Physics.ObjectRadius, ball.X, 6);
    }

    [Fact]
    public void Nothing_leaves_the_table_however_far_it_is_driven()
    {
        var world = new TabletopWorld(Scene(new Vec2(0.5, 0.5), new Vec2(0.8, 0.5), new Vec2(0.2, 0.2)));
        world.Apply([0f, 0f, 1f]);
        for (var i = 0; i < 40; i++) world.Apply([0.05f, 0.001f, 1f]);
        for (var i = 0; i < 40; i++) world.Apply([-0.05f, -0.05f, 0f]);

        foreach (var p in world.ObjectPositions.Append(world.Effector))
        {
            Assert.InRange(p.X, Physics.MinCoord, Physics.MaxCoord);
            Assert.InRange(p.Y, Physics.MinCoord, Physics.MaxCoord);
        }
        // The pushed cube ended against the right edge with the pusher stopped behind it.
        Assert.Equal(Physics.MaxCoord, world.ObjectPositions[0].X, 6);
    }

    [Fact]
    public void Actions_beyond_the_step_limit_are_clamped()
    {
        var world = new TabletopWorld(Scene(new Vec2(0.5, 0.5), new Vec2(0.1, 0.1)));
        world.Apply([1f, -1f, 0f]);

        Assert.Equal(0.5 + Physics.MaxStep, world.Effector.X, 6);
        Assert.Equal(0.5 - Physics.MaxStep, world.Effector.Y, 6);
    }
}
