namespace VlaCloud.Contracts;

/// <summary>How a <c>/v1/stream</c> session is opened.</summary>
/// <param name="Checkpoint">Checkpoint reference: an id, <c>model@vN</c> or <c>model@alias</c>.</param>
/// <param name="Embodiment">Embodiment name, when the model exists for several.</param>
/// <param name="Encoding"><c>json</c> (text frames) or <c>msgpack</c> (binary frames).</param>
/// <param name="Mode"><c>chunk</c>: every observation gets a whole chunk; <c>broker</c>: one action per observation, the server replans every <paramref name="ReplanEvery"/> steps.</param>
/// <param name="ReplanEvery">Broker mode: steps between new chunks (default half a chunk).</param>
/// <param name="Ensemble">Broker mode: blend overlapping chunks (temporal ensembling; default on).</param>
public sealed record StreamOptions(
    string Checkpoint,
    string? Embodiment = null,
    string Encoding = "json",
    string Mode = "chunk",
    int? ReplanEvery = null,
    bool? Ensemble = null);

/// <summary>The embodiment a stream session drives, from its <c>session</c> message.</summary>
/// <param name="Name">Embodiment name.</param>
/// <param name="ActionDim">Values per action.</param>
/// <param name="StateDim">Values of the state.</param>
/// <param name="ActionNames">Names of the action values.</param>
/// <param name="Cameras">Its cameras, main first.</param>
/// <param name="ControlHz">Control rate.</param>
/// <param name="ChunkLength">Actions per chunk.</param>
public sealed record StreamEmbodiment(
    string Name, int ActionDim, int StateDim, IReadOnlyList<string> ActionNames, IReadOnlyList<CameraDto> Cameras, double ControlHz, int ChunkLength);

/// <summary>The first message of a session.</summary>
/// <param name="SessionId">Server-side id of the session.</param>
/// <param name="Checkpoint">The checkpoint it is bound to.</param>
/// <param name="Embodiment">What it drives.</param>
/// <param name="Encoding"><c>json</c> or <c>msgpack</c>.</param>
/// <param name="Mode"><c>chunk</c> or <c>broker</c>.</param>
public sealed record StreamSessionInfo(string SessionId, ResolvedCheckpoint Checkpoint, StreamEmbodiment Embodiment, string Encoding, string Mode);

/// <summary>A message the server sends during a session.</summary>
/// <param name="Id">The id of the client message it answers.</param>
public abstract record StreamReply(long? Id);

/// <summary>Chunk mode: the action chunk for an observation.</summary>
/// <param name="Id">The observation's id.</param>
/// <param name="Actions"><c>chunk_length</c> rows of <c>action_dim</c> values.</param>
/// <param name="Seed">The noise seed used.</param>
/// <param name="Timing">Server timings.</param>
/// <param name="Spatial">The spatial answer, when asked for.</param>
/// <param name="Guide">For a point-guided checkpoint, the points its actions were conditioned on (as in <see cref="ActResponse.Guide"/>).</param>
public sealed record StreamActions(long? Id, float[][] Actions, long Seed, ActTiming Timing, SpatialOutput? Spatial, GuideOutput? Guide = null) : StreamReply(Id);

/// <summary>Broker mode: the one action to execute now.</summary>
/// <param name="Id">The observation's id.</param>
/// <param name="Step">Steps served in this session.</param>
/// <param name="Replanned">Whether a new chunk was computed for it.</param>
/// <param name="Action">The action.</param>
/// <param name="Timing">Server timings, when it was replanned.</param>
public sealed record StreamAction(long? Id, long Step, bool Replanned, float[] Action, ActTiming? Timing) : StreamReply(Id);

/// <summary>Every inference queue was full: retry the observation later.</summary>
/// <param name="Id">The observation's id.</param>
/// <param name="RetryAfter">When to retry.</param>
public sealed record StreamBusy(long? Id, TimeSpan RetryAfter) : StreamReply(Id);

/// <summary>The message was refused; the session goes on.</summary>
/// <param name="Id">The message's id.</param>
/// <param name="Status">HTTP-like status (400, 422, 429, 503, 504).</param>
/// <param name="Title">Short summary.</param>
/// <param name="Detail">What went wrong.</param>
/// <param name="Errors">Problems per field.</param>
/// <param name="Code">A stable code where the status alone is ambiguous (e.g. <c>inference_share_exceeded</c> on a 429).</param>
/// <param name="RetryAfter">When to send the observation again (429 and 503).</param>
public sealed record StreamError(
    long? Id, int Status, string Title, string? Detail, IReadOnlyDictionary<string, string[]>? Errors, string? Code = null, TimeSpan? RetryAfter = null) : StreamReply(Id);

/// <summary>The answer to a ping.</summary>
/// <param name="Id">The ping's id.</param>
public sealed record StreamPong(long? Id) : StreamReply(Id);

/// <summary>The answer to a reset (the broker forgot its chunks).</summary>
/// <param name="Id">The reset's id.</param>
public sealed record StreamResetDone(long? Id) : StreamReply(Id);

/// <summary>A message the client sends during a session; the server answers it with a <see cref="StreamReply"/> carrying the same id.</summary>
/// <param name="Id">
/// The client's id for the message, echoed in the answer exactly as sent: any JSON value (the SDK numbers its messages
/// 1, 2, …); null when the client does not need to match answers.
/// </param>
public abstract record StreamRequest(object? Id);

/// <summary>An observation to act on: answered by <see cref="StreamActions"/> (chunk mode), <see cref="StreamAction"/> (broker mode), <see cref="StreamBusy"/> or <see cref="StreamError"/>.</summary>
/// <param name="Id">The message's id.</param>
/// <param name="Observation">Images, state and instruction, as in <see cref="ActRequest.Observation"/>.</param>
/// <param name="Options">Options, or null for defaults.</param>
public sealed record StreamObservation(object? Id, ObservationInput Observation, ActOptions? Options = null) : StreamRequest(Id);

/// <summary>A liveness check, answered by <see cref="StreamPong"/>.</summary>
/// <param name="Id">The message's id.</param>
public sealed record StreamPing(object? Id) : StreamRequest(Id);

/// <summary>A new episode starts: broker mode forgets its chunks. Answered by <see cref="StreamResetDone"/>.</summary>
/// <param name="Id">The message's id.</param>
public sealed record StreamReset(object? Id) : StreamRequest(Id);

/// <summary>The client ends the session; the server closes the socket with 1000 and answers nothing else.</summary>
public sealed record StreamClose() : StreamRequest((object?)null);
