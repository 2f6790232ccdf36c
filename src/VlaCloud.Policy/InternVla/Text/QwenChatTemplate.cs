using System.Text;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>Who speaks a chat message.</summary>
public enum ChatRole
{
    /// <summary>The system prompt.</summary>
    System,
    /// <summary>The user: instructions, questions and images.</summary>
    User,
    /// <summary>The model's answer (a training target, or what generation continues).</summary>
    Assistant,
}

/// <summary>One piece of a message: text, or an image (rendered as <c>&lt;|vision_start|&gt;&lt;|image_pad|&gt;&lt;|vision_end|&gt;</c>).</summary>
/// <param name="Text">The text; null for an image.</param>
public sealed record ChatPart(string? Text)
{
    /// <summary>An image, in the order the images are given to the image processor.</summary>
    public static ChatPart Image { get; } = new((string?)null);

    /// <summary>A text part.</summary>
    public static ChatPart FromText(string text) => new(text ?? throw new ArgumentNullException(nameof(text)));

    /// <summary>Whether this part is an image.</summary>
    public bool IsImage => Text is null;
}

/// <summary>A chat message: a role and its parts in order.</summary>
public sealed record ChatMessage(ChatRole Role, IReadOnlyList<ChatPart> Parts)
{
    /// <summary>A system message.</summary>
    public static ChatMessage System(string text) => new(ChatRole.System, [ChatPart.FromText(text)]);

    /// <summary>
    /// A user message with <paramref name="images"/> images first and the text after them: the message InternVLA-M1
    /// builds for each sample (<c>build_qwenvl_inputs</c>).
    /// </summary>
    public static ChatMessage User(string text, int images = 0) =>
        images < 0 ? throw new ArgumentOutOfRangeException(nameof(images)) : new(ChatRole.User, [.. Enumerable.Repeat(ChatPart.Image, images), ChatPart.FromText(text)]);

    /// <summary>An assistant answer.</summary>
    public static ChatMessage Assistant(string text) => new(ChatRole.Assistant, [ChatPart.FromText(text)]);

    /// <summary>Number of image parts.</summary>
    public int ImageCount => Parts.Count(p => p.IsImage);
}

/// <summary>
/// Token ids of a chat and its training labels: <see cref="QwenChatTemplate.IgnoreIndex"/> everywhere except the
/// assistant answers (InternVLA-M1's <c>preprocess_qwen_2_visual</c>: an answer's first three tokens,
/// <c>&lt;|im_start|&gt;assistant\n</c>, are masked; its text, <c>&lt;|im_end|&gt;</c> and the newline are learned).
/// </summary>
/// <param name="Ids">Token ids with each image's pad expanded to its token count.</param>
/// <param name="Labels">Targets per position (not shifted).</param>
public sealed record ChatEncoding(int[] Ids, int[] Labels);

/// <summary>
/// The Qwen2.5-VL-Instruct chat template (<c>chat_template.json</c> of the Qwen2.5-VL-*-Instruct checkpoints) for the
/// messages InternVLA-M1 sends: a default system prompt unless the first message is one, images as
/// <c>&lt;|vision_start|&gt;&lt;|image_pad|&gt;&lt;|vision_end|&gt;</c>, optional "Picture n: " labels, and
/// <c>add_generation_prompt</c>. <see cref="Encode"/> expands each image's pad to its merged patch count
/// (<c>t·h·w / merge²</c>), as the processor does.
/// </summary>
public sealed class QwenChatTemplate
{
    /// <summary>The system prompt the template inserts when the chat does not start with one.</summary>
    public const string DefaultSystemPrompt = "You are a helpful assistant.";

    /// <summary>The label of positions that carry no loss (PyTorch's <c>ignore_index</c>).</summary>
    public const int IgnoreIndex = -100;

    /// <summary>The image placeholder token.</summary>
    public const string ImagePad = "<|image_pad|>";

    // Tokens whose positions the processor and get_rope_index derive from the ids; text carrying them would
    // desynchronise the ids from the images.
    private static readonly string[] VisionTokens = ["<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", ImagePad, "<|video_pad|>"];

    // <|im_start|>, "assistant", "\n": the head of an answer that InternVLA-M1 masks by position.
    private const int AnswerHeaderTokens = 3;

    private readonly Qwen2Tokenizer tokenizer;

    /// <summary>The template over a Qwen2 tokenizer (which must have the vision tokens).</summary>
    public QwenChatTemplate(Qwen2Tokenizer tokenizer)
    {
        this.tokenizer = tokenizer;
        foreach (var token in VisionTokens) tokenizer.RequiredId(token);
        ImagePadId = tokenizer.RequiredId(ImagePad);
    }

    /// <summary>Id of <c>&lt;|image_pad|&gt;</c>.</summary>
    public int ImagePadId { get; }

    /// <summary>
    /// The chat as text (<c>apply_chat_template(messages, tokenize=False, add_generation_prompt=…)</c>): one
    /// <c>&lt;|image_pad|&gt;</c> per image, not yet expanded.
    /// </summary>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool addVisionId = false)
    {
        var text = new StringBuilder();
        foreach (var piece in Pieces(messages, addGenerationPrompt, addVisionId)) text.Append(piece.Text);
        return text.ToString();
    }

    /// <summary>
    /// Token ids of the chat with image <c>i</c>'s pad repeated <paramref name="imageTokens"/>[i] times, and labels for
    /// training on the assistant answers. Each message is tokenised on its own, which gives the ids of the whole text:
    /// every message starts with the added token <c>&lt;|im_start|&gt;</c>, so nothing merges across messages.
    /// </summary>
    /// <exception cref="ArgumentException">The counts do not match the images, or a text part holds a vision token.</exception>
    public ChatEncoding Encode(IReadOnlyList<ChatMessage> messages, IReadOnlyList<int> imageTokens, bool addGenerationPrompt, bool addVisionId = false)
    {
        Validate(messages);
        var imageCount = messages.Sum(m => m.ImageCount);
        if (imageTokens.Count != imageCount)
            throw new ArgumentException($"the chat has {imageCount} images but {imageTokens.Count} image token counts were given", nameof(imageTokens));
        if (imageTokens.Any(n => n <= 0)) throw new ArgumentException("every image needs at least one token", nameof(imageTokens));

        var ids = new List<int>();
        var labels = new List<int>();
        // Text parts hold no pads (Validate), so the pads met in order are the images in order.
        var image = 0;
        foreach (var piece in Pieces(messages, addGenerationPrompt, addVisionId))
        {
            var start = ids.Count;
            foreach (var id in tokenizer.Encode(piece.Text))
            {
                if (id == ImagePadId) ids.AddRange(Enumerable.Repeat(ImagePadId, imageTokens[image++]));
                else ids.Add(id);
            }
            var learned = piece.Role == ChatRole.Assistant && !piece.IsGenerationPrompt;
            for (var i = start; i < ids.Count; i++) labels.Add(learned && i - start >= AnswerHeaderTokens ? ids[i] : IgnoreIndex);
        }
        return new ChatEncoding([.. ids], [.. labels]);
    }

    /// <summary>Refuses text parts that hold a vision token: the image count and positions come from those tokens.</summary>
    public static void Validate(IReadOnlyList<ChatMessage> messages)
    {
        foreach (var message in messages)
            foreach (var part in message.Parts)
                if (part.Text is { } text && VisionTokens.FirstOrDefault(t => text.Contains(t, StringComparison.Ordinal)) is { } token)
                    throw new ArgumentException($"a {message.Role.ToString().ToLowerInvariant()} text holds the vision token {token}; images are given as image parts", nameof(messages));
    }

    /// <summary>One rendered message, or the generation prompt.</summary>
    private readonly record struct Piece(string Text, ChatRole Role, bool IsGenerationPrompt);

    private static List<Piece> Pieces(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool addVisionId)
    {
        var pieces = new List<Piece>();
        if (messages.Count > 0 && messages[0].Role != ChatRole.System)
            pieces.Add(new Piece($"<|im_start|>system\n{DefaultSystemPrompt}<|im_end|>\n", ChatRole.System, false));
        var images = 0;
        foreach (var message in messages)
        {
            var text = new StringBuilder("<|im_start|>").Append(message.Role.ToString().ToLowerInvariant()).Append('\n');
            foreach (var part in message.Parts)
            {
                if (part.Text is { } t) { text.Append(t); continue; }
                images++;
                if (addVisionId) text.Append("Picture ").Append(images).Append(": ");
                text.Append("<|vision_start|>").Append(ImagePad).Append("<|vision_end|>");
            }
            pieces.Add(new Piece(text.Append("<|im_end|>\n").ToString(), message.Role, false));
        }
        if (addGenerationPrompt) pieces.Add(new Piece("<|im_start|>assistant\n", ChatRole.Assistant, true));
        return pieces;
    }
}
