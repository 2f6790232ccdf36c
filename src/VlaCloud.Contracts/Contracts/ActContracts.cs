using System.Text.Json.Serialization;

namespace VlaCloud.Contracts;

/// <summary>
/// One camera image. <c>png</c>/<c>jpeg</c>: <see cref="Data"/> is the encoded file. <c>raw</c>: <see cref="Data"/> is
/// uint8 RGB in HWC order and <see cref="Shape"/> is <c>[height, width, 3]</c>. In JSON, data is base64.
/// </summary>
/// <param name="Format"><c>png</c>, <c>jpeg</c> or <c>raw</c>.</param>
/// <param name="Data">The bytes.</param>
/// <param name="Shape">For <c>raw</c>: <c>[height, width, 3]</c>.</param>
public sealed record ImageInput(string Format, byte[] Data, int[]? Shape = null);

/// <summary>What the robot sees and is told at one control step.</summary>
/// <param name="Images">One image per camera of the embodiment, keyed by camera name.</param>
/// <param name="State">Proprioceptive state in the embodiment's units (its state dimension), or null for none.</param>
/// <param name="Instruction">The task in natural language, e.g. "pick the red cube and place it in the blue bowl".</param>
public sealed record ObservationInput(IReadOnlyDictionary<string, ImageInput> Images, float[]? State, string Instruction);

/// <summary>How to compute the actions.</summary>
/// <param name="Steps">Denoising steps (Euler for ST4VLA checkpoints, DDIM for InternVLA-M1), 1–100; null for the checkpoint's default.</param>
/// <param name="Seed">Noise seed: the same seed and observation give the same actions; null for a random one.</param>
/// <param name="Spatial">Also return the model's spatial answer: <c>point</c>, <c>box</c>, <c>trajectory</c> or <c>placement</c> (where the object goes).</param>
/// <param name="TimeoutMs">Give up (504) if the actions are not ready within this many milliseconds.</param>
/// <param name="Resize">
/// What to do with an image whose aspect ratio differs from its camera's by more than 5 %: null (the default) refuses
/// it (400), <c>pad</c> centres it on black borders to the camera's aspect ratio, <c>stretch</c> lets the model stretch it.
/// </param>
/// <param name="CfgScale">
/// Classifier-free guidance scale of InternVLA-M1 checkpoints, 0–100 (1 or less turns guidance off); null for the
/// checkpoint's default (1.5 released). ST4VLA checkpoints have no guidance and ignore it.
/// </param>
public sealed record ActOptions(
    int? Steps = null,
    long? Seed = null,
    string? Spatial = null,
    [property: JsonPropertyName("timeout_ms")] int? TimeoutMs = null,
    string? Resize = null,
    [property: JsonPropertyName("cfg_scale")] double? CfgScale = null);

/// <summary>The body of <c>POST /v1/act</c>.</summary>
/// <param name="Checkpoint">Checkpoint reference: an id, <c>model@vN</c> or <c>model@alias</c> (e.g. <c>sim-demo@production</c>).</param>
/// <param name="Observation">The observation.</param>
/// <param name="Options">Options, or null for defaults.</param>
/// <param name="Embodiment">Embodiment name, when a model name exists for several embodiments.</param>
public sealed record ActRequest(string Checkpoint, ObservationInput Observation, ActOptions? Options = null, string? Embodiment = null);

/// <summary>The checkpoint a request was served by.</summary>
/// <param name="Id">Checkpoint id.</param>
/// <param name="Model">Model name.</param>
/// <param name="Version">Version of the model for its embodiment.</param>
/// <param name="Embodiment">Embodiment name.</param>
public sealed record ResolvedCheckpoint(Guid Id, string Model, int Version, string Embodiment);

/// <summary>A spatial answer in pixels of the first camera's image.</summary>
/// <param name="Kind"><c>point</c>, <c>box</c>, <c>trajectory</c> or <c>placement</c>.</param>
/// <param name="Points">
/// The answer as (x, y) points: one for a point or a placement, two corners for a box, the path for a trajectory.
/// Empty when the model's text held no answer of the kind (see <paramref name="Text"/>).
/// </param>
/// <param name="Text">
/// The answer as the model wrote it, for checkpoints that answer in text (<c>internvla-m1</c>: Qwen's JSON in the
/// resized image's pixels, which <paramref name="Points"/> maps back to the camera's); absent for <c>st4vla</c>.
/// </param>
public sealed record SpatialOutput(string Kind, float[][] Points, string? Text = null);

/// <summary>
/// Where a point-guided checkpoint's System 2 located the task's object and its destination, in pixels of the first
/// camera's image: the points its actions were conditioned on.
/// </summary>
/// <param name="Target">The object's point <c>[x, y]</c>.</param>
/// <param name="Destination">The destination's point <c>[x, y]</c>.</param>
public sealed record GuideOutput(float[]? Target, float[]? Destination);

/// <summary>Where the time went, milliseconds.</summary>
/// <param name="QueueMs">Waiting for a batch.</param>
/// <param name="ComputeMs">The batch's forward pass.</param>
/// <param name="TotalMs">From request to response, in the server.</param>
/// <param name="BatchSize">Requests served by the same forward pass.</param>
public sealed record ActTiming(
    [property: JsonPropertyName("queue_ms")] double QueueMs,
    [property: JsonPropertyName("compute_ms")] double ComputeMs,
    [property: JsonPropertyName("total_ms")] double TotalMs,
    [property: JsonPropertyName("batch_size")] int BatchSize);

/// <summary>The answer of <c>POST /v1/act</c>.</summary>
/// <param name="Checkpoint">The resolved checkpoint.</param>
/// <param name="Actions">The action chunk: <c>chunk_length</c> rows of <c>action_dim</c> values in the embodiment's units.</param>
/// <param name="Spatial">The spatial answer, when asked for.</param>
/// <param name="Seed">The seed used (echoes the request's, or the random one chosen).</param>
/// <param name="Timing">Timings.</param>
/// <param name="Guide">For a point-guided checkpoint, the points its actions were conditioned on; null for other checkpoints.</param>
public sealed record ActResponse(ResolvedCheckpoint Checkpoint, float[][] Actions, SpatialOutput? Spatial, long Seed, ActTiming Timing, GuideOutput? Guide = null);

/// <summary>The spatial questions a request may ask (the <c>spatial</c> field of an act request or stream observation), as spelled on the wire.</summary>
public static class SpatialKinds
{
    /// <summary>
    /// <c>point</c>, <c>box</c>, <c>trajectory</c>, <c>placement</c> (where the object goes). The model's own list
    /// (<c>SpatialPrompts.WireNames</c>) is checked against this one by a test, so clients need not load the model.
    /// </summary>
    public static IReadOnlyList<string> All { get; } = ["point", "box", "trajectory", "placement"];
}
