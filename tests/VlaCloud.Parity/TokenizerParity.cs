using System.Text.Json.Nodes;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Parity;

/// <summary>
/// The Qwen2 tokenizer and the Qwen2.5-VL chat template against upstream's slow <c>Qwen2Tokenizer</c>
/// (<c>tokenizer_cases.json</c>): every string's ids, tokens and decoded text; the special ids and sizes; the chat
/// prompt rendered and tokenised, and with its image pads expanded to the merged patch count of the image the fixture
/// names. Every result is discrete and named <c>tokenizer_…</c>.
/// </summary>
public sealed class TokenizerParity : IParityCheck
{
    /// <inheritdoc />
    public string Name => "tokenizer";

    /// <inheritdoc />
    public bool AppliesTo(string folder) =>
        new[] { "tokenizer_cases.json", "vocab.json", "merges.txt", "tokenizer_config.json" }.All(f => File.Exists(Path.Combine(folder, f)));

    /// <inheritdoc />
    public IEnumerable<ParityResult> Run(string folder)
    {
        var tokenizer = Qwen2Tokenizer.Load(folder);
        var cases = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "tokenizer_cases.json")))!;
        var results = new List<ParityResult>();

        var special = cases["special_ids"]!.AsObject().OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        results.Add(ParityResult.CompareExact("tokenizer_special_ids",
            special.Select(kv => tokenizer.TokenToId(kv.Key) ?? -1).ToList(), special.Select(kv => (int)kv.Value!).ToList()));
        results.Add(ParityResult.CompareExact("tokenizer_sizes", [tokenizer.VocabSize, tokenizer.Count],
            [(int)cases["vocab_size_regular"]!, (int)cases["len_tokenizer"]!]));

        var strings = cases["strings"]!.AsArray();
        for (var i = 0; i < strings.Count; i++)
        {
            var c = strings[i]!;
            var text = (string)c["text"]!;
            var expectedIds = Ints(c["ids"]);
            results.Add(ParityResult.CompareExact($"tokenizer_string{i}_ids", tokenizer.Encode(text), expectedIds));
            results.Add(ParityResult.CompareExact($"tokenizer_string{i}_tokens", tokenizer.Tokenize(text), c["tokens"]!.AsArray().Select(t => (string)t!).ToList()));
            results.Add(ParityResult.CompareExact($"tokenizer_string{i}_decoded", [tokenizer.Decode(expectedIds)], new[] { (string)c["decoded"]! }));
        }

        var chat = cases["chat"]!;
        var messages = chat["messages"]!.AsArray().Select(Message).ToList();
        var template = new QwenChatTemplate(tokenizer);
        var rendered = QwenChatTemplate.Render(messages, addGenerationPrompt: true);
        results.Add(ParityResult.CompareExact("tokenizer_chat_text", [rendered], new[] { (string)chat["text"]! }));
        results.Add(ParityResult.CompareExact("tokenizer_chat_ids", tokenizer.Encode(rendered), Ints(chat["ids"])));

        // The expansion the fixture made for one 224×224 image, from this folder's processor settings.
        var processor = new QwenImageProcessor(PreprocessingFixtures.ProcessorConfig(folder));
        var grid = processor.GridFor(224, 224);
        results.Add(ParityResult.CompareExact("tokenizer_chat_image_grid", [grid.T, grid.H, grid.W], Ints(chat["image_grid_thw_224x224"])));
        var tokens = grid.Tokens(processor.Config.MergeSize);
        var images = messages.Sum(m => m.ImageCount);
        var expandedText = rendered.Replace(QwenChatTemplate.ImagePad, string.Concat(Enumerable.Repeat(QwenChatTemplate.ImagePad, tokens)), StringComparison.Ordinal);
        results.Add(ParityResult.CompareExact("tokenizer_chat_expanded_text", [expandedText], new[] { (string)chat["expanded_text"]! }));
        var encoding = template.Encode(messages, [.. Enumerable.Repeat(tokens, images)], addGenerationPrompt: true);
        results.Add(ParityResult.CompareExact("tokenizer_chat_expanded_ids", encoding.Ids, Ints(chat["expanded_ids"])));
        return results;
    }

    private static int[] Ints(JsonNode? node) => [.. node!.AsArray().Select(v => (int)v!)];

    private static ChatMessage Message(JsonNode? node)
    {
        var role = Enum.Parse<ChatRole>((string)node!["role"]!, ignoreCase: true);
        if (node["content"] is JsonValue text) return new ChatMessage(role, [ChatPart.FromText((string)text!)]);
        return new ChatMessage(role, [.. node["content"]!.AsArray().Select(p => (string)p!["type"]! == "image" ? ChatPart.Image : ChatPart.FromText((string)p["text"]!))]);
    }
}
