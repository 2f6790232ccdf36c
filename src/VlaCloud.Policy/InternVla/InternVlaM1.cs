using TorchSharp;
using TorchSharp.Modules;
using VlaCloud.Policy.InternVla.Heads;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Qwen;
using VlaCloud.Policy.InternVla.Text;
using static TorchSharp.torch;

namespace VlaCloud.Policy.InternVla;

/// <summary>
/// InternVLA-M1 (<c>InternVLA/model/framework/M1.py</c>): Qwen2.5-VL under <c>qwen_vl_interface.model</c> and the heads
/// (<c>layer_qformer</c>, <c>action_model</c>, <c>dino_encoder</c>, <c>dino_pro</c>) at the root, so
/// <c>named_parameters()</c> are the released state dict's names. Its forward: each sample's cameras resized to the
/// training size, the <c>CoT_prompt</c> in a user message after the images through Qwen's chat template and image
/// processor, the chosen hidden states each followed by the projected DINO tokens of every view, the Q-Former, then the
/// DiT: DDPM ε-loss in training, DDIM with classifier-free guidance at inference. The module's forward is the action
/// condition (<see cref="Condition"/>); <see cref="ActionLoss"/> and <see cref="SampleActions"/> take it from there, and
/// <see cref="VlmLoss"/> and <see cref="GenerateAnswers"/> are the VLM's own entry points. Used by one thread at a time.
/// VlaCloud's two extensions sit at the root under names no released checkpoint has: <c>state_projector</c> (state off
/// as released) and <c>point_projector</c> with the DiT's point token (<see cref="WithPointToken"/>).
/// </summary>
public sealed class InternVlaM1 : nn.Module<IReadOnlyList<IReadOnlyList<CameraImage>>, IReadOnlyList<string>, Tensor?, Tensor>
{
    private readonly QwenVlInterface qwenVlInterface;
    private readonly InternVlaHeads heads;
    private readonly Linear? stateProjector;
    private readonly Linear? pointProjector;
    private readonly QwenChatTemplate chat;
    private readonly QwenImageProcessor processor;
    private readonly DinoTransform dino;

    /// <summary>
    /// Builds the model with initial weights (TorchSharp's for Qwen, upstream's for the heads) on the CPU, in float32 or
    /// <paramref name="dtype"/> (Qwen is built directly in it, so a bf16 3B model never exists in float32).
    /// </summary>
    /// <exception cref="ArgumentException">The config is invalid, or the tokenizer's vision tokens are not the config's ids.</exception>
    public InternVlaM1(InternVlaM1Config config, Qwen2Tokenizer tokenizer, ScalarType? dtype = null) : base("internvla_m1")
    {
        config.Validate();
        CheckTokenizer(config, tokenizer);
        Config = config;
        Tokenizer = tokenizer;
        chat = new QwenChatTemplate(tokenizer);
        processor = new QwenImageProcessor(config.Processor);
        dino = new DinoTransform(config.DinoShortSide);
        qwenVlInterface = new QwenVlInterface(Qwen25Vl.Create(config.Qwen, CPU, dtype));
        heads = new InternVlaHeads(config.Heads);
        // The heads' modules sit at the root, as InternVLA_M1's attributes do; the heads object only runs them.
        register_module("qwen_vl_interface", qwenVlInterface);
        foreach (var (name, child) in heads.named_children()) register_module(name, child);
        if (config.UseState)
            register_module("state_projector", stateProjector = nn.Linear(2L * config.StateDim, config.Heads.ActionModel.TokenSize));
        if (config.PointGuidance)
            register_module("point_projector", pointProjector = nn.Linear(PolicyConfig.PointGuideFeatures, config.Heads.ActionModel.TokenSize));
        if (dtype is { } type) this.to(type);
    }

    /// <summary>The sizes.</summary>
    public InternVlaM1Config Config { get; }

    /// <summary>Qwen's tokenizer.</summary>
    public Qwen2Tokenizer Tokenizer { get; }

    /// <summary>System 2.</summary>
    public Qwen25Vl Qwen => qwenVlInterface.Model;

    /// <summary>The DINO stream, Q-Former and DiT.</summary>
    public InternVlaHeads Heads => heads;

    /// <summary>The optional state projection (null unless <see cref="InternVlaM1Config.UseState"/>).</summary>
    public Linear? StateProjector => stateProjector;

    /// <summary>
    /// The optional point-token projection (null unless <see cref="InternVlaM1Config.PointGuidance"/>): VlaCloud's
    /// extension, at the root as <c>state_projector</c> is, so no released name is taken.
    /// </summary>
    public Linear? PointProjector => pointProjector;

    /// <summary>
    /// The condition the DiT reads: <paramref name="condition"/> (the Q-Former's queries) with, under point guidance, the
    /// projected point features appended as one more token. Without point guidance the condition itself.
    /// </summary>
    /// <param name="condition">(B, Q, D) from <see cref="Condition"/>.</param>
    /// <param name="points">(B, <see cref="PolicyConfig.PointGuideFeatures"/>) point features under point guidance, else null.</param>
    /// <returns>(B, Q [+ 1], D), in the caller's dispose scope.</returns>
    public Tensor WithPointToken(Tensor condition, Tensor? points)
    {
        if (pointProjector is null)
            return points is null ? condition.alias() : throw new ArgumentException("this model has no point token to read the points with");
        if (points is null) throw new ArgumentException("this model reads a point token; pass the point features");
        if (points.dim() != 2 || points.shape[0] != condition.shape[0] || points.shape[1] != PolicyConfig.PointGuideFeatures)
            throw new ArgumentException($"the point features must be ({condition.shape[0]}, {PolicyConfig.PointGuideFeatures}), not [{string.Join(", ", points.shape)}]");
        using var scope = NewDisposeScope();
        var token = pointProjector.call(points.to(condition.dtype, condition.device)).unsqueeze(1);     // (B, 1, D)
        return cat([condition, token], 1).MoveToOuterDisposeScope();                                  // (B, Q + 1, D)
    }

    /// <summary>Refuses a tokenizer whose vision tokens or vocabulary do not fit the Qwen config.</summary>
    public static void CheckTokenizer(InternVlaM1Config config, Qwen2Tokenizer tokenizer)
    {
        foreach (var (token, id) in new[] { ("<|image_pad|>", config.Qwen.ImageTokenId), ("<|vision_start|>", config.Qwen.VisionStartTokenId), ("<|vision_end|>", config.Qwen.VisionEndTokenId) })
        {
            var actual = tokenizer.TokenToId(token) ?? throw new ArgumentException($"the tokenizer has no {token}");
            if (actual != id) throw new ArgumentException($"the tokenizer's {token} is {actual} but the Qwen config's is {id}");
        }
        if (tokenizer.Count > config.Qwen.Text.VocabSize)
            throw new ArgumentException($"the tokenizer has {tokenizer.Count} tokens but Qwen's vocab_size is {config.Qwen.Text.VocabSize}");
    }

    /// <summary>The mapping from a camera image's pixels to the pixels the processor gives Qwen (spatial answers are in those).</summary>
    public ImageCoordinateMap CoordinateMap(CameraImage image) => processor.CoordinateMap(image);

    /// <summary>The text of an action prompt: the instruction in the <c>CoT_prompt</c>, or bare in vanilla mode.</summary>
    public string ActionPrompt(string instruction) =>
        Config.Vanilla ? instruction : Config.CotPrompt.Replace("{instruction}", instruction, StringComparison.Ordinal);

    /// <summary>
    /// Each sample's cameras resized to <see cref="InternVlaM1Config.ImageSize"/> with Pillow's default filter (bicubic
    /// since Pillow 7), as <c>resize_images</c> (<c>Image.resize(size)</c>) does before both streams.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<CameraImage>> ResizeViews(IEnumerable<IReadOnlyList<CameraImage>> samples) =>
        [.. samples.Select(views => (IReadOnlyList<CameraImage>)[.. views.Select(Resize)])];

    private CameraImage Resize(CameraImage image)
    {
        image.Validate();
        var s = Config.ImageSize;
        return s == 0 || (image.Width == s && image.Height == s) ? image : PillowResampler.Resize(image, s, s, PillowFilter.Bicubic);
    }

    /// <summary>
    /// The action condition of <c>InternVLA_M1.forward</c>/<c>predict_action</c>: the prompts with every sample's views
    /// through Qwen (hidden states kept), the views through DINO and <c>dino_pro</c>, then the Q-Former. Every sample
    /// must have the same number of views (DINO stacks them). Runs with autograd unless the caller turned it off.
    /// </summary>
    /// <param name="views">Each sample's camera images, already resized (see <see cref="ResizeViews"/>).</param>
    /// <param name="prompts">Each sample's prompt text (see <see cref="ActionPrompt"/>).</param>
    /// <param name="state">(B, 2·StateDim) normalised state and mask when the config uses state, else null.</param>
    /// <returns>(B, Q, D_action) condition tokens.</returns>
    public Tensor Condition(IReadOnlyList<IReadOnlyList<CameraImage>> views, IReadOnlyList<string> prompts, Tensor? state = null) =>
        call(views, prompts, state);

    /// <summary>The module's forward: <see cref="Condition"/>.</summary>
    /// <returns>(B, Q, D_action).</returns>
    public override Tensor forward(IReadOnlyList<IReadOnlyList<CameraImage>> views, IReadOnlyList<string> prompts, Tensor? state)
    {
        if (views.Count != prompts.Count || views.Count == 0) throw new ArgumentException($"{views.Count} samples of views but {prompts.Count} prompts");
        using var scope = NewDisposeScope();
        var q = Config.Heads.QFormer;
        var inputs = Encode(views, prompts.Select(p => (IReadOnlyList<ChatMessage>)[ChatMessage.User(p, 0)]).ToList(), addGenerationPrompt: true, out _);
        using var output = Qwen.call(inputs, new QwenForwardOptions { HiddenStates = [.. Enumerable.Range(q.StartLayer, q.Layers)] });
        var states = new Tensor[q.EndLayer];
        foreach (var (index, hidden) in output.HiddenStates) states[index] = hidden;
        var pixels = dino.Prepare(views).ToTensor();                                                   // (B·V, 3, H, W)
        var dinoViews = HostUpload.ToDevice(pixels.view(views.Count, views[0].Count, 3, pixels.shape[2], pixels.shape[3]), Device, DType);
        var dinoTokens = heads.DinoTokens(dinoViews);                                                    // (B, V·N, D_vlm)
        var condition = heads.call(states, dinoTokens.to(states[q.StartLayer].dtype));                   // (B, Q, D)
        if (stateProjector is not null)
        {
            if (state is null) throw new ArgumentException("this config reads the state; pass it");
            condition = condition + stateProjector.call(state.to(condition.dtype)).unsqueeze(1);         // (B, Q, D)
        }
        return condition.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The co-training VLM loss: each sample's chat (<c>[user: image, question; assistant: answer]</c>) through Qwen,
    /// cross-entropy of the next-token logits on the assistant answer's tokens (the chat template's labels).
    /// </summary>
    /// <param name="images">Each sample's image(s), as the processor will see them.</param>
    /// <param name="chats">Each sample's messages, with one image part per image.</param>
    public Tensor VlmLoss(IReadOnlyList<IReadOnlyList<CameraImage>> images, IReadOnlyList<IReadOnlyList<ChatMessage>> chats)
    {
        using var scope = NewDisposeScope();
        var inputs = Encode(images, chats, addGenerationPrompt: false, out var labels);
        using var output = Qwen.call(inputs, new QwenForwardOptions { Logits = QwenLogits.All });
        var logits = output.Logits!;                                                                     // (B, L, V)
        var (b, l) = (logits.shape[0], logits.shape[1]);
        var shifted = logits[.., ..(int)(l - 1)].reshape(-1, logits.shape[2]).to(float32);               // (B·(L−1), V)
        var targets = tensor(labels, [b, l], device: Device)[.., 1..].reshape(-1);                       // (B·(L−1))
        return nn.functional.cross_entropy(shifted, targets, ignore_index: QwenChatTemplate.IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Greedy answers to each sample's chat (<c>generate(do_sample=False)</c> after the chat template's generation
    /// prompt), decoded with the KV cache for at most <paramref name="maxNewTokens"/> tokens; a row ends at
    /// <c>&lt;|im_end|&gt;</c>, <c>&lt;|endoftext|&gt;</c> or the config's EOS ids. Returns each answer's ids (the
    /// end token excluded) and its text with special tokens skipped.
    /// </summary>
    /// <param name="images">Each sample's image(s), as the processor will see them.</param>
    /// <param name="chats">Each sample's messages, with one image part per image (the answer is what follows them).</param>
    /// <param name="maxNewTokens">Tokens to generate at most per sample.</param>
    public (int[] Ids, string Text)[] GenerateAnswers(IReadOnlyList<IReadOnlyList<CameraImage>> images, IReadOnlyList<IReadOnlyList<ChatMessage>> chats, int maxNewTokens)
    {
        if (images.Count != chats.Count || chats.Count == 0) throw new ArgumentException($"{images.Count} samples of images but {chats.Count} chats");
        using var scope = NewDisposeScope();
        var inputs = Encode(images, chats, addGenerationPrompt: true, out _);
        var ends = new[] { "<|im_end|>", "<|endoftext|>" }.Select(Tokenizer.TokenToId).OfType<int>().Select(id => (long)id)
            .Concat(Config.Qwen.EosTokenIds).Distinct().ToList();
        var sequences = Qwen.Generate(inputs, new QwenGenerationOptions { MaxNewTokens = maxNewTokens, EosTokenIds = ends });    // (B, L + new)
        var prompt = inputs.InputIds.shape[1];
        var width = sequences.shape[1];
        var all = sequences.data<long>().ToArray();
        var answers = new (int[] Ids, string Text)[chats.Count];
        for (var i = 0; i < chats.Count; i++)
        {
            var ids = new List<int>();
            for (var j = prompt; j < width; j++)
            {
                var id = all[i * width + j];
                if (ends.Contains(id)) break;
                ids.Add((int)id);
            }
            answers[i] = ([.. ids], Tokenizer.Decode(ids, skipSpecialTokens: true));
        }
        return answers;
    }

    /// <summary>The diffusion loss of normalised action chunks (B, T, A) given their condition.</summary>
    public Tensor ActionLoss(Tensor actions, Tensor condition) => heads.ActionLoss(actions, condition).Loss;

    /// <summary>
    /// Normalised action chunks (B, T, A) by DDIM with classifier-free guidance, the sampling state in float32 whatever
    /// the weights' dtype; the module must be in eval mode.
    /// </summary>
    public Tensor SampleActions(Tensor condition, Tensor initialNoise, double? cfgScale = null, int? ddimSteps = null) =>
        heads.SampleActions(condition, initialNoise.to(float32).to(condition.device), cfgScale, ddimSteps);

    /// <summary><see cref="SampleActions"/> one DDIM step at a time (see <see cref="ActionModel.StartSampling"/>).</summary>
    public DdimSampling StartSampling(Tensor condition, Tensor initialNoise, double? cfgScale = null, int? ddimSteps = null) =>
        heads.StartSampling(condition, initialNoise.to(float32).to(condition.device), cfgScale, ddimSteps);

    /// <summary>Where the weights are.</summary>
    public Device Device => Qwen.Device;

    /// <summary>The weights' dtype.</summary>
    public ScalarType DType => Qwen.DType;

    /// <summary>
    /// The processor's batch: every image of every sample in order, each chat's image parts filled (images first in the
    /// first user message when the chat has none), ids left padded as upstream's processor does.
    /// </summary>
    private QwenInputs Encode(IReadOnlyList<IReadOnlyList<CameraImage>> images, IReadOnlyList<IReadOnlyList<ChatMessage>> chats, bool addGenerationPrompt, out long[] labels)
    {
        var batch = processor.Process([.. images.SelectMany(i => i)]);
        var tokens = batch.Grids.Select(g => g.Tokens(Config.Processor.MergeSize)).ToArray();
        var encoded = new List<ChatEncoding>();
        var next = 0;
        for (var i = 0; i < chats.Count; i++)
        {
            var messages = chats[i];
            if (messages.Sum(m => m.ImageCount) == 0 && images[i].Count > 0)
                messages = [messages[0] with { Parts = [.. Enumerable.Repeat(ChatPart.Image, images[i].Count), .. messages[0].Parts] }, .. messages.Skip(1)];
            var count = messages.Sum(m => m.ImageCount);
            if (count != images[i].Count) throw new ArgumentException($"sample {i}: the chat has {count} images but {images[i].Count} were given");
            encoded.Add(chat.Encode(messages, tokens[next..(next + count)], addGenerationPrompt));
            next += count;
        }
        var length = encoded.Max(e => e.Ids.Length);
        var pad = Tokenizer.PadId ?? 0;
        var ids = new long[chats.Count * length];
        var mask = new long[chats.Count * length];
        labels = new long[chats.Count * length];
        Array.Fill(labels, QwenChatTemplate.IgnoreIndex);
        for (var i = 0; i < encoded.Count; i++)
        {
            var e = encoded[i];
            var offset = i * length + length - e.Ids.Length;
            for (var j = i * length; j < offset; j++) ids[j] = pad;
            for (var j = 0; j < e.Ids.Length; j++)
            {
                ids[offset + j] = e.Ids[j];
                mask[offset + j] = 1;
                labels[offset + j] = e.Labels[j];
            }
        }
        return new QwenInputs(
            HostUpload.ToDevice(tensor(ids, [chats.Count, length]), Device),
            HostUpload.ToDevice(tensor(mask, [chats.Count, length]), Device),
            HostUpload.ToDevice(batch.PixelValues.ToTensor(), Device, DType),
            batch.GridThwTensor());
    }
}

/// <summary>The <c>qwen_vl_interface</c> container of M1 (<c>_QWen_VL_Interface</c>): Qwen2.5-VL as <c>model</c>.</summary>
internal sealed class QwenVlInterface : nn.Module
{
    private readonly Qwen25Vl model;

    public QwenVlInterface(Qwen25Vl model) : base("qwen_vl_interface")
    {
        this.model = model;
        register_module("model", model);
    }

    public Qwen25Vl Model => model;
}
