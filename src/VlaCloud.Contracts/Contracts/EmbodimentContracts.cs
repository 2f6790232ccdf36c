using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>A camera of an embodiment.</summary>
/// <param name="Name">Observation key, e.g. <c>wrist</c>.</param>
/// <param name="Width">Image width.</param>
/// <param name="Height">Image height.</param>
public sealed record CameraDto(string Name, int Width, int Height);

/// <summary>Body of <c>POST /v1/embodiments</c>.</summary>
/// <param name="Name">Unique name (a slug: a-z, 0-9, '.', '_', '-').</param>
/// <param name="ActionDim">Values per action.</param>
/// <param name="StateDim">Values of the proprioceptive state (0 for none).</param>
/// <param name="ActionSpace">What an action means, e.g. <c>delta_eef+gripper</c>.</param>
/// <param name="Cameras">The cameras, main one first.</param>
/// <param name="ControlHz">Control rate.</param>
/// <param name="ChunkLength">Actions per chunk.</param>
/// <param name="ActionNames">One name per action dimension, or none.</param>
/// <param name="StateNames">One name per state dimension, or none.</param>
/// <param name="Description">Free text.</param>
/// <param name="Simulator">
/// The built-in environment that can run this body closed-loop, so fine-tuning jobs can evaluate (and promote) by
/// simulator episodes: <c>sim-tabletop</c>, the only one, whose robot has 3 actions, 3 state values and cameras
/// <c>main</c> and <c>wrist</c> of 64×64. An unknown name, or a layout the environment's robot does not have, is refused
/// (400). Omit it (null) for a real robot.
/// </param>
/// <param name="BinaryActionDims">
/// Action dimensions (0-based, each below <c>action_dim</c>, no repeats) that are binary, such as a gripper's open/close:
/// training keeps them 0/1 instead of normalising them. Omitted (null): the dimensions whose <c>action_names</c> contain
/// <c>gripper</c>; <c>[]</c> for none. Stored and shown as given; nothing is inferred from names later.
/// </param>
public sealed record CreateEmbodimentRequest(
    string Name,
    [property: JsonPropertyName("action_dim")] int ActionDim,
    [property: JsonPropertyName("state_dim")] int StateDim,
    [property: JsonPropertyName("action_space")] string ActionSpace,
    IReadOnlyList<CameraDto> Cameras,
    [property: JsonPropertyName("control_hz")] double ControlHz,
    [property: JsonPropertyName("chunk_length")] int ChunkLength,
    [property: JsonPropertyName("action_names")] string[]? ActionNames = null,
    [property: JsonPropertyName("state_names")] string[]? StateNames = null,
    string? Description = null,
    string? Simulator = null,
    [property: JsonPropertyName("binary_action_dims")] int[]? BinaryActionDims = null);

/// <summary>An embodiment.</summary>
/// <param name="Id">Embodiment id.</param>
/// <param name="Name">Its name.</param>
/// <param name="IsPublic">Whether it belongs to no tenant (visible to all).</param>
/// <param name="Description">Free text.</param>
/// <param name="ActionDim">Values per action.</param>
/// <param name="StateDim">Values of the state.</param>
/// <param name="ActionSpace">What an action means.</param>
/// <param name="ActionNames">One name per action dimension (may be empty).</param>
/// <param name="StateNames">One name per state dimension (may be empty).</param>
/// <param name="Cameras">The cameras.</param>
/// <param name="ControlHz">Control rate.</param>
/// <param name="ChunkLength">Actions per chunk.</param>
/// <param name="Simulator">
/// The built-in environment that runs this body closed-loop (<c>sim-tabletop</c>), or null for a real robot. A
/// fine-tuning job with <c>evaluate: true</c> needs one; promotion compares closed-loop success only with one.
/// </param>
/// <param name="BinaryActionDims">Action dimensions kept binary (0 or 1) in training, ascending; empty when all are continuous.</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record EmbodimentResponse(
    Guid Id,
    string Name,
    [property: JsonPropertyName("public")] bool IsPublic,
    string? Description,
    [property: JsonPropertyName("action_dim")] int ActionDim,
    [property: JsonPropertyName("state_dim")] int StateDim,
    [property: JsonPropertyName("action_space")] string ActionSpace,
    [property: JsonPropertyName("action_names")] IReadOnlyList<string> ActionNames,
    [property: JsonPropertyName("state_names")] IReadOnlyList<string> StateNames,
    IReadOnlyList<CameraDto> Cameras,
    [property: JsonPropertyName("control_hz")] double ControlHz,
    [property: JsonPropertyName("chunk_length")] int ChunkLength,
    string? Simulator,
    [property: JsonPropertyName("binary_action_dims")] IReadOnlyList<int> BinaryActionDims,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt);
