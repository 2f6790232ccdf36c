using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace VlaCloud.Policy;

/// <summary>
/// Text tokens followed by <see cref="LocationBins"/> coordinate tokens <c>&lt;loc_0&gt;…</c>: ids
/// <c>[0, TextVocabSize)</c> are text, <c>[TextVocabSize, VocabSize)</c> are coordinates over the
/// normalised image axis (bin i covers <c>[i/N, (i+1)/N)</c> of the width or height).
/// Two text parts exist: a small built-in word vocabulary (tiny/small configs) and a Hugging Face
/// byte-level BPE <c>tokenizer.json</c> (full configs).
/// </summary>
public sealed partial class PolicyTokenizer
{
    private readonly Dictionary<string, int>? words;
    private readonly string[]? wordList;
    private readonly Tokenizer? bpe;

    /// <summary>Size of the built-in word vocabulary (special tokens included).</summary>
    public static int BuiltInWordCount => BuiltInWords.Length;

    private PolicyTokenizer(string json, int textVocabSize, int locationBins, string[]? wordList, Tokenizer? bpe, int pad, int eos, int unk)
    {
        Json = json;
        TextVocabSize = textVocabSize;
        LocationBins = locationBins;
        this.wordList = wordList;
        words = wordList?.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);
        this.bpe = bpe;
        PadId = pad;
        EosId = eos;
        UnkId = unk;
    }

    /// <summary>The text of tokenizer.json as saved in checkpoints.</summary>
    public string Json { get; }
    /// <summary>Text tokens (special tokens included).</summary>
    public int TextVocabSize { get; }
    /// <summary>Coordinate tokens per axis.</summary>
    public int LocationBins { get; }
    /// <summary>All tokens.</summary>
    public int VocabSize => TextVocabSize + LocationBins;
    /// <summary>Padding token.</summary>
    public int PadId { get; }
    /// <summary>End of an answer.</summary>
    public int EosId { get; }
    /// <summary>Unknown word (built-in vocabulary); equals <see cref="PadId"/> for BPE, which has no unknowns.</summary>
    public int UnkId { get; }

    /// <summary>The built-in word tokenizer.</summary>
    public static PolicyTokenizer CreateWords(int locationBins)
    {
        var json = new JsonObject { ["type"] = "vlacloud-words", ["words"] = new JsonArray(BuiltInWords.Select(w => (JsonNode)w!).ToArray()) };
        return FromWordList(json.ToJsonString(), BuiltInWords, locationBins);
    }

    /// <summary>The tokenizer a config calls for: built-in words, or <paramref name="tokenizerJson"/> (required for <c>hf</c>).</summary>
    public static PolicyTokenizer ForConfig(PolicyConfig config, string? tokenizerJson = null)
    {
        var tokenizer = tokenizerJson is not null ? FromJson(tokenizerJson, config)
            : config.Tokenizer == "words" ? CreateWords(config.LocationBins)
            : throw new ArgumentException($"config '{config.Name}' uses a '{config.Tokenizer}' tokenizer: pass its tokenizer.json");
        if (tokenizer.TextVocabSize != config.TextVocabSize)
            throw new ArgumentException($"tokenizer has {tokenizer.TextVocabSize} text tokens but the config says TextVocabSize = {config.TextVocabSize}");
        return tokenizer;
    }

    /// <summary>
    /// Reads tokenizer.json: the built-in word format, or a Hugging Face file with a byte-level BPE
    /// model (vocab + merges, as Qwen2.5 ships); its text vocabulary size is the config's.
    /// </summary>
    public static PolicyTokenizer FromJson(string json, PolicyConfig config)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException("tokenizer.json is not a JSON object");
        if ((string?)root["type"] == "vlacloud-words")
        {
            var list = root["words"]!.AsArray().Select(n => (string)n!).ToArray();
            return FromWordList(json, list, config.LocationBins);
        }
        var model = root["model"] as JsonObject ?? throw new InvalidDataException("tokenizer.json has neither the built-in word format nor a 'model' section");
        if ((string?)model["type"] is { } type && type != "BPE") throw new InvalidDataException($"tokenizer.json model type '{type}' is not supported (BPE only)");
        var vocab = model["vocab"]!.ToJsonString();
        var merges = new StringBuilder("#version: 0.2\n");
        foreach (var m in model["merges"]?.AsArray() ?? [])
            merges.Append(m is JsonArray pair ? $"{(string)pair[0]!} {(string)pair[1]!}" : (string)m!).Append('\n');
        var special = new Dictionary<string, int>();
        foreach (var t in root["added_tokens"]?.AsArray() ?? [])
            special[(string)t!["content"]!] = (int)t["id"]!;
        // CodeGenTokenizer's unknown/begin/end token is <|endoftext|> (GPT-2 and Qwen both have it).
        const string eosText = "<|endoftext|>";
        if (!special.ContainsKey(eosText)) throw new InvalidDataException("tokenizer.json has no <|endoftext|> added token to end answers with");
        // Added (special) tokens live outside model.vocab in Hugging Face files; the BPE needs them inside.
        var fullVocab = JsonNode.Parse(vocab)!.AsObject();
        foreach (var (content, id) in special) fullVocab[content] = id;
        using var vocabStream = new MemoryStream(Encoding.UTF8.GetBytes(fullVocab.ToJsonString()));
        using var mergesStream = new MemoryStream(Encoding.UTF8.GetBytes(merges.ToString()));
        var bpe = CodeGenTokenizer.Create(vocabStream, mergesStream, addPrefixSpace: false, addBeginOfSentence: false, addEndOfSentence: false);
        var eos = special[eosText];
        var pad = special.TryGetValue("<|pad|>", out var p) ? p : eos;
        var maxId = fullVocab.Max(kv => (int)kv.Value!);
        if (maxId >= config.TextVocabSize) throw new InvalidDataException($"tokenizer.json uses id {maxId} but the config's TextVocabSize is {config.TextVocabSize}");
        return new PolicyTokenizer(json, config.TextVocabSize, config.LocationBins, null, bpe, pad, eos, pad);
    }

    private static PolicyTokenizer FromWordList(string json, string[] list, int locationBins) =>
        new(json, list.Length, locationBins, list, null, Array.IndexOf(list, "<pad>"), Array.IndexOf(list, "<eos>"), Array.IndexOf(list, "<unk>"));

    /// <summary>
    /// The built-in word tokenizer, when this one is a word tokenizer with fewer words, all of them in the built-in list:
    /// the vocabulary of a base saved by an older build, brought up to date so that fine-tuning can learn the words added
    /// since (e.g. "diamond"). Null when there is nothing to add, and for BPE or custom word lists, whose ids must stay.
    /// </summary>
    public PolicyTokenizer? GrownToBuiltInWords()
    {
        if (wordList is null || wordList.Length >= BuiltInWords.Length || !wordList.All(BuiltInWordSet.Contains)) return null;
        return CreateWords(LocationBins);
    }

    /// <summary>
    /// For each token id of this word tokenizer, the id of the same token in <paramref name="other"/>, or −1 where
    /// <paramref name="other"/> lacks the word: how embedding rows move when a vocabulary changes. Coordinate tokens map
    /// bin to bin.
    /// </summary>
    public int[] IdsIn(PolicyTokenizer other)
    {
        if (wordList is null || other.words is null) throw new InvalidOperationException("ids map between built-in word tokenizers only");
        if (other.LocationBins != LocationBins) throw new ArgumentException($"{other.LocationBins} coordinate bins, not {LocationBins}", nameof(other));
        return [.. wordList.Select(w => other.words.GetValueOrDefault(w, -1)),
                .. Enumerable.Range(0, LocationBins).Select(b => other.TextVocabSize + b)];
    }

    /// <summary>Text → token ids (no special tokens added).</summary>
    public int[] Encode(string text)
    {
        if (bpe is not null) return bpe.EncodeToIds(text).ToArray();
        return WordPattern().Matches(text.ToLowerInvariant()).Select(m => words!.GetValueOrDefault(m.Value, UnkId)).ToArray();
    }

    /// <summary>Token ids → text; coordinate tokens print as <c>&lt;loc_i&gt;</c>.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var sb = new StringBuilder();
        var text = new List<int>();
        void Flush()
        {
            if (text.Count == 0) return;
            sb.Append(bpe is not null ? bpe.Decode(text) : string.Join(' ', text.Select(i => wordList![i])));
            text.Clear();
        }
        foreach (var id in ids)
        {
            if (IsLocation(id)) { Flush(); sb.Append($"<loc_{id - TextVocabSize}>"); }
            else text.Add(id);
        }
        Flush();
        return sb.ToString();
    }

    /// <summary>Whether an id is a coordinate token.</summary>
    public bool IsLocation(int id) => id >= TextVocabSize && id < VocabSize;

    /// <summary>Pixel coordinates as x,y pairs → coordinate tokens.</summary>
    public int[] EncodeCoordinates(ReadOnlySpan<float> xy, int width, int height)
    {
        if (xy.Length % 2 != 0) throw new ArgumentException("coordinates come as x,y pairs");
        var ids = new int[xy.Length];
        for (var i = 0; i < xy.Length; i++)
        {
            var extent = i % 2 == 0 ? width : height;
            var bin = (int)Math.Floor(xy[i] / extent * LocationBins);
            ids[i] = TextVocabSize + Math.Clamp(bin, 0, LocationBins - 1);
        }
        return ids;
    }

    /// <summary>Coordinate tokens → pixel coordinates (bin centres) as x,y pairs.</summary>
    public float[] DecodeCoordinates(IReadOnlyList<int> ids, int width, int height) =>
        ids.Select((id, i) => (id - TextVocabSize + 0.5f) / LocationBins * (i % 2 == 0 ? width : height)).ToArray();

    [GeneratedRegex(@"[a-z0-9]+|[^\sa-z0-9]")]
    private static partial Regex WordPattern();

    // Covers the simulator's instructions and paraphrases, the spatial prompts and common robot tasks.
    private static readonly string[] BuiltInWords =
    [
        "<pad>", "<eos>", "<unk>",
        ".", ",", "[", "]", "(", ")", ":", "'", "-", "?", "!",
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
        "x", "y", "x1", "y1", "x2", "y2",
        // spatial prompts
        "your", "task", "is", "to", "identify", "the", "key", "objects", "object", "for", "locate", "their", "its",
        "bounding", "box", "boxes", "in", "format", "point", "points", "predict", "gripper", "trajectory", "as", "a", "list", "of",
        // colours
        "red", "green", "blue", "yellow", "orange", "purple", "pink", "white", "black", "brown", "gray", "grey", "cyan", "magenta",
        "dark", "light", "colored", "coloured",
        // objects and places
        "cube", "block", "ball", "sphere", "bowl", "plate", "square", "cup", "mug", "bin", "basket", "tray", "can", "bottle",
        "cylinder", "disk", "disc", "star", "triangle", "diamond", "circle", "drawer", "table", "item", "items", "thing", "target", "goal",
        "zone", "area", "region", "spot", "mat", "pad", "marker", "container", "toy", "spoon", "fork", "apple", "banana", "carrot",
        "towel", "sponge", "cloth", "lid", "pot", "pan", "sink", "shelf", "cabinet", "door", "button", "handle", "stack", "tower",
        "corner", "center", "centre", "middle", "edge", "side",
        // verbs
        "pick", "place", "put", "push", "pull", "move", "slide", "drop", "lift", "grab", "grasp", "take", "set", "bring", "get",
        "carry", "transfer", "open", "close", "press", "turn", "rotate", "flip", "fold", "wipe", "pour", "insert", "hold",
        "release", "reach", "go", "make", "stand", "knock", "over", "let", "nudge", "shove",
        "reaches", "picking", "lifting", "placing", "pushing", "moving",
        // connectives
        "and", "then", "it", "them", "this", "that", "one", "an", "into", "onto", "on", "at", "from", "inside", "top", "up", "down",
        "with", "toward", "towards", "next", "near", "by", "left", "right", "front", "behind", "back", "above", "below", "under",
        "between", "without", "please", "robot", "arm", "small", "large", "big", "little", "tall", "short", "first", "second", "other",
        "location", "position", "where", "should", "which", "what", "all", "both", "until", "so", "gently", "carefully",
    ];

    private static readonly HashSet<string> BuiltInWordSet = [.. BuiltInWords];
}
