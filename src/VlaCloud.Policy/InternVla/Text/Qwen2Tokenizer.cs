using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VlaCloud.Policy.InternVla.Text;

/// <summary>
/// A token outside the BPE vocabulary (<c>added_tokens_decoder</c> of <c>tokenizer_config.json</c>): split out of
/// the text before anything else, never merged with its neighbours.
/// </summary>
/// <param name="Id">Its id.</param>
/// <param name="Content">Its text, e.g. <c>&lt;|image_pad|&gt;</c>.</param>
/// <param name="Special">Whether it is special (skipped by <c>skipSpecialTokens</c> when also named a special token).</param>
/// <param name="LStrip">Whether it swallows the whitespace on its left.</param>
/// <param name="RStrip">Whether it swallows the whitespace on its right.</param>
/// <param name="SingleWord">Whether it only counts as a whole word.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false, bool SingleWord = false);

/// <summary>
/// The Qwen2 / Qwen2.5 tokenizer exactly as transformers' slow <c>Qwen2Tokenizer</c> (<c>tokenization_qwen2.py</c>):
/// NFC normalisation, added tokens split out first (leftmost, longest), Qwen2's pre-tokenisation (digits one by one),
/// byte-level BPE, and decoding with invalid UTF-8 replaced by U+FFFD. Nothing is added around the ids (no BOS/EOS).
/// <para>
/// Bounded: a text longer than <see cref="MaxTextLength"/> is refused, pre-tokenisation is one linear scan, BPE is
/// O(n log n) in a word's length (upstream's is quadratic; the benchmark program's <c>text</c> suite prints
/// the cost of hostile texts at two lengths) and the word cache has a fixed capacity. Thread-safe.
/// </para>
/// <para>
/// Where .NET and Python differ, this follows .NET: a lone surrogate (which Python cannot encode to UTF-8) is read as
/// U+FFFD, and Unicode tables are .NET's (the regex module's may be one Unicode version apart).
/// Microsoft.ML.Tokenizers' BPE gives the same ids on the fixture cases, but its merge loop is super-linear in a
/// word's length (a single 64,000-character word took 5.7 s), so this class merges with its own heap.
/// </para>
/// </summary>
public sealed class Qwen2Tokenizer
{
    /// <summary>
    /// The default longest text <see cref="Encode"/> accepts, in UTF-16 units (256 Ki): far above any prompt or answer
    /// (about 64 Ki tokens of prose), and low enough that the costliest text found, one word of that many CJK
    /// letters, takes a fraction of a second (the benchmark program's <c>text</c> suite prints the figures).
    /// </summary>
    public const int DefaultMaxTextLength = 1 << 18;

    /// <summary>Qwen2's pre-tokenising regex (the <c>Split</c> pattern a <c>tokenizer.json</c> must carry).</summary>
    public const string PreTokenizerPattern = QwenPreTokenizer.Pattern;

    /// <summary>Words cached at most; the cache stops growing there (upstream's cache grows without bound).</summary>
    internal const int WordCacheCapacity = 1 << 16;

    private readonly string[] idToToken;
    private readonly Dictionary<string, int> vocab;
    private readonly ByteLevelBpe bpe;
    private readonly Dictionary<int, AddedToken> addedById;
    private readonly Dictionary<string, AddedToken> addedByContent;
    private readonly AddedTokenTrie trie;
    private readonly HashSet<int> specialIds;
    private readonly HashSet<string> passThroughOnDecode;

    private Qwen2Tokenizer(Dictionary<string, int> vocab, IEnumerable<(string, string)> merges, TokenizerSettings settings, int maxTextLength)
    {
        if (maxTextLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxTextLength), "the longest text must be positive");
        this.vocab = vocab;
        MaxTextLength = maxTextLength;
        VocabSize = vocab.Count;
        bpe = new ByteLevelBpe(vocab, merges, WordCacheCapacity);

        var added = settings.AddedTokens.ToList();
        // A named special token the file does not list is added after the others, as from_pretrained does.
        foreach (var name in new[] { settings.Bos, settings.Eos, settings.Unk, settings.Pad }.Concat(settings.AdditionalSpecial))
            if (name is not null && !vocab.ContainsKey(name) && added.All(t => t.Content != name))
                added.Add(new AddedToken(Math.Max(vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1), name, Special: true));
        if (added.Any(t => string.IsNullOrEmpty(t.Content) || t.Id < 0)
            || added.DistinctBy(t => t.Id).Count() != added.Count || added.DistinctBy(t => t.Content).Count() != added.Count)
            throw new InvalidDataException("the added tokens need distinct non-negative ids and distinct non-empty texts");
        addedById = added.ToDictionary(t => t.Id);
        addedByContent = added.ToDictionary(t => t.Content, StringComparer.Ordinal);
        AddedTokens = [.. added.OrderBy(t => t.Id)];
        trie = new AddedTokenTrie(added.Select(t => t.Content));

        var maxId = Math.Max(vocab.Values.Max(), added.Count == 0 ? -1 : added.Max(t => t.Id));
        idToToken = new string[maxId + 1];
        foreach (var (token, id) in vocab)
        {
            if (id < 0) throw new InvalidDataException($"vocab.json gives '{token}' the negative id {id}");
            idToToken[id] = token;
        }
        foreach (var t in added) idToToken[t.Id] = t.Content;
        Count = vocab.Keys.Union(added.Select(t => t.Content)).Count();

        int? IdOf(string? token) => token is null ? null : vocab.TryGetValue(token, out var id) ? id : addedByContent[token].Id;
        BosId = IdOf(settings.Bos);
        EosId = IdOf(settings.Eos);
        UnkId = IdOf(settings.Unk);
        PadId = IdOf(settings.Pad);
        string?[] named = [settings.Bos, settings.Eos, settings.Unk, settings.Pad];
        var allSpecial = named.OfType<string>().Concat(settings.AdditionalSpecial).ToHashSet(StringComparer.Ordinal);
        specialIds = [.. allSpecial.Select(t => IdOf(t)!.Value)];
        // transformers' _decode: added tokens that are not special, and additional special tokens beyond the BPE
        // vocabulary, are emitted as they are; the rest go through the byte decoder with their neighbours.
        passThroughOnDecode = [.. added.Select(t => t.Content).Where(c => !allSpecial.Contains(c)),
            .. settings.AdditionalSpecial.Where(t => IdOf(t) >= VocabSize)];
    }

    /// <summary>Words in the BPE cache now (never more than <see cref="WordCacheCapacity"/>).</summary>
    internal int CachedWordCount => bpe.CachedWords;

    /// <summary>Entries of <c>vocab.json</c> (151,643 for Qwen2.5).</summary>
    public int VocabSize { get; }

    /// <summary>Distinct tokens, the vocabulary and the added tokens together (<c>len(tokenizer)</c>; 151,665 for Qwen2.5).</summary>
    public int Count { get; }

    /// <summary>The longest text <see cref="Encode"/> accepts, in UTF-16 units.</summary>
    public int MaxTextLength { get; }

    /// <summary>The added tokens, by id.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Id of <c>bos_token</c> (none for Qwen2.5).</summary>
    public int? BosId { get; }
    /// <summary>Id of <c>eos_token</c> (<c>&lt;|im_end|&gt;</c> in Qwen2.5-Instruct's config).</summary>
    public int? EosId { get; }
    /// <summary>Id of <c>unk_token</c> (none for Qwen2.5: byte-level BPE has no unknowns).</summary>
    public int? UnkId { get; }
    /// <summary>Id of <c>pad_token</c> (<c>&lt;|endoftext|&gt;</c>).</summary>
    public int? PadId { get; }

    /// <summary>The id of a token (a vocabulary entry in byte-level form, or an added token's text), or null.</summary>
    public int? TokenToId(string token) =>
        vocab.TryGetValue(token, out var id) ? id : addedByContent.TryGetValue(token, out var added) ? added.Id : null;

    /// <summary>The id of a token that must exist (e.g. <c>&lt;|image_pad|&gt;</c>).</summary>
    public int RequiredId(string token) =>
        TokenToId(token) ?? throw new KeyNotFoundException($"the tokenizer has no token '{token}'");

    /// <summary>The token of an id (byte-level form for vocabulary entries), or null for an id it does not have.</summary>
    public string? IdToToken(int id) => id >= 0 && id < idToToken.Length ? idToToken[id] : null;

    /// <summary>Whether an id is one of the special tokens (<c>eos</c>, <c>pad</c>, … and <c>additional_special_tokens</c>).</summary>
    public bool IsSpecial(int id) => specialIds.Contains(id);

    /// <summary>Text → ids (<c>tokenizer.encode(text, add_special_tokens=False)</c>).</summary>
    /// <exception cref="ArgumentException">The text is longer than <see cref="MaxTextLength"/>.</exception>
    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (var piece in Segments(text))
        {
            if (addedByContent.TryGetValue(piece, out var added)) ids.Add(added.Id);
            else EncodeOrdinary(piece, ids);
        }
        return [.. ids];
    }

    /// <summary>Text → tokens (<c>tokenizer.tokenize(text)</c>): vocabulary entries in byte-level form, added tokens as written.</summary>
    /// <exception cref="ArgumentException">The text is longer than <see cref="MaxTextLength"/>.</exception>
    public string[] Tokenize(string text) => [.. Encode(text).Select(id => idToToken[id])];

    /// <summary>
    /// Ids → text (<c>tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces=False)</c>): bytes that
    /// are not valid UTF-8 become U+FFFD as Python's <c>errors="replace"</c> does. Ids the tokenizer does not have (a
    /// model's vocabulary is padded past <see cref="Count"/>) decode to nothing, where upstream would fail.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        void Flush()
        {
            if (bytes.Count == 0) return;
            text.Append(Encoding.UTF8.GetString(bytes.ToArray()));
            bytes.Clear();
        }
        foreach (var id in ids)
        {
            if (IdToToken(id) is not { } token || (skipSpecialTokens && specialIds.Contains(id))) continue;
            if (passThroughOnDecode.Contains(token))
            {
                Flush();
                text.Append(token);
                continue;
            }
            foreach (var c in token)
            {
                if (ByteLevelBpe.CharToByte.TryGetValue(c, out var b)) bytes.Add(b);
                // Only a special token's text can hold a character outside the byte alphabet; upstream fails there.
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        Flush();
        return text.ToString();
    }

    /// <summary>
    /// The text, after NFC, as pieces that are either an added token's text or ordinary text (transformers'
    /// <c>tokenize</c>: the trie split without empty pieces, then <c>rstrip</c>/<c>lstrip</c>/<c>single_word</c> applied
    /// to the neighbouring pieces, which may themselves be added tokens).
    /// </summary>
    private List<string> Segments(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxTextLength)
            throw new ArgumentException($"text of {text.Length} characters is longer than the tokenizer's limit of {MaxTextLength}", nameof(text));
        text = Normalize(text);
        var pieces = new List<string>();
        var last = 0;
        foreach (var (start, length) in trie.Matches(text))
        {
            if (start > last) pieces.Add(text[last..start]);
            pieces.Add(text.Substring(start, length));
            last = start + length;
        }
        if (last < text.Length) pieces.Add(text[last..]);

        for (var i = 0; i < pieces.Count; i++)
        {
            if (!addedByContent.TryGetValue(pieces[i], out var token)) continue;
            // Upstream tests single_word on the neighbours as they were before stripping.
            var left = i > 0 ? pieces[i - 1] : "";
            var right = i + 1 < pieces.Count ? pieces[i + 1] : "";
            if (token.RStrip && right.Length > 0) pieces[i + 1] = PythonStrip(right, fromStart: true);
            if (token.LStrip && left.Length > 0) pieces[i - 1] = PythonStrip(left, fromStart: false);
            if (token.SingleWord && left.Length > 0 && left[^1] != ' ')
            {
                pieces[i - 1] += pieces[i];
                pieces[i] = "";
            }
            else if (token.SingleWord && right.Length > 0 && right[0] != ' ')
            {
                pieces[i + 1] = pieces[i] + pieces[i + 1];
                pieces[i] = "";
            }
        }
        pieces.RemoveAll(p => p.Length == 0);
        return pieces;
    }

    private void EncodeOrdinary(string segment, List<int> ids)
    {
        var pieces = new List<(int Start, int Length)>();
        QwenPreTokenizer.Split(segment, pieces);
        foreach (var (start, length) in pieces) bpe.Encode(segment.Substring(start, length), ids);
    }

    /// <summary>NFC, with lone surrogates read as U+FFFD first (.NET's normaliser rejects them).</summary>
    private static string Normalize(string text)
    {
        var clean = text;
        for (var i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            var chars = clean.ToCharArray();
            chars[i] = '\uFFFD';
            clean = new string(chars);
        }
        return clean.IsNormalized(NormalizationForm.FormC) ? clean : clean.Normalize(NormalizationForm.FormC);
    }

    /// <summary>Python's <c>str.lstrip()</c>/<c>rstrip()</c>: its whitespace includes U+001C–U+001F.</summary>
    private static string PythonStrip(string s, bool fromStart)
    {
        static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';
        var a = 0;
        var b = s.Length;
        if (fromStart) while (a < b && IsSpace(s[a])) a++;
        else while (b > a && IsSpace(s[b - 1])) b--;
        return s[a..b];
    }

    /// <summary>Loads a tokenizer folder: <c>vocab.json</c> + <c>merges.txt</c> + <c>tokenizer_config.json</c>, or else <c>tokenizer.json</c> (+ <c>tokenizer_config.json</c> if present).</summary>
    public static Qwen2Tokenizer Load(string directory, int maxTextLength = DefaultMaxTextLength)
    {
        var config = Path.Combine(directory, "tokenizer_config.json");
        var vocabPath = Path.Combine(directory, "vocab.json");
        var mergesPath = Path.Combine(directory, "merges.txt");
        if (File.Exists(vocabPath) && File.Exists(mergesPath))
        {
            if (!File.Exists(config)) throw new FileNotFoundException($"{directory} has vocab.json and merges.txt but no tokenizer_config.json (the added tokens)", config);
            return FromFiles(vocabPath, mergesPath, config, maxTextLength);
        }
        var json = Path.Combine(directory, "tokenizer.json");
        if (!File.Exists(json)) throw new FileNotFoundException($"{directory} has neither vocab.json + merges.txt nor tokenizer.json", json);
        using var stream = File.OpenRead(json);
        using var configStream = File.Exists(config) ? File.OpenRead(config) : null;
        return FromTokenizerJson(stream, configStream, maxTextLength);
    }

    /// <summary>Reads the files a Qwen2.5-VL hub checkpoint ships: <c>vocab.json</c>, <c>merges.txt</c>, <c>tokenizer_config.json</c>.</summary>
    public static Qwen2Tokenizer FromFiles(string vocabJsonPath, string mergesPath, string tokenizerConfigPath, int maxTextLength = DefaultMaxTextLength)
    {
        using var vocabStream = File.OpenRead(vocabJsonPath);
        using var merges = File.OpenText(mergesPath);
        using var config = File.OpenRead(tokenizerConfigPath);
        return Create(vocabStream, merges, config, maxTextLength);
    }

    /// <summary>Builds the tokenizer from the contents of <c>vocab.json</c>, <c>merges.txt</c> and <c>tokenizer_config.json</c>.</summary>
    public static Qwen2Tokenizer Create(Stream vocabJson, TextReader merges, Stream tokenizerConfig, int maxTextLength = DefaultMaxTextLength)
    {
        var vocab = ReadVocab(vocabJson);
        var settings = TokenizerSettings.FromConfig(ReadObject(tokenizerConfig, "tokenizer_config.json"));
        return new Qwen2Tokenizer(vocab, ReadMerges(merges), settings, maxTextLength);
    }

    /// <summary>
    /// Builds the tokenizer from a Hugging Face <c>tokenizer.json</c> (its BPE model and <c>added_tokens</c>); the special
    /// token names come from <c>tokenizer_config.json</c> when given, else from Qwen2Tokenizer's defaults. The file's
    /// normaliser must be NFC and its pre-tokeniser must split with Qwen2's pattern (anything else is refused).
    /// </summary>
    public static Qwen2Tokenizer FromTokenizerJson(Stream tokenizerJson, Stream? tokenizerConfig = null, int maxTextLength = DefaultMaxTextLength)
    {
        var root = ReadObject(tokenizerJson, "tokenizer.json");
        var model = root["model"] as JsonObject ?? throw new InvalidDataException("tokenizer.json has no 'model'");
        if ((string?)model["type"] is { } type && type != "BPE") throw new InvalidDataException($"tokenizer.json model type '{type}' is not BPE");
        if ((string?)root["normalizer"]?["type"] != "NFC") throw new InvalidDataException("tokenizer.json does not normalise with NFC as Qwen2 does");
        if (!SplitPatterns(root["pre_tokenizer"]).Contains(QwenPreTokenizer.Pattern))
            throw new InvalidDataException("tokenizer.json does not pre-tokenise with Qwen2's pattern");
        var vocab = (model["vocab"] as JsonObject ?? throw new InvalidDataException("tokenizer.json has no model.vocab"))
            .ToDictionary(kv => kv.Key, kv => IntField(kv.Value, $"the id of '{kv.Key}'"), StringComparer.Ordinal);
        var merges = (model["merges"] as JsonArray ?? []).Select(m => m is JsonArray { Count: 2 } pair
            ? (StringField(pair[0], "a merge"), StringField(pair[1], "a merge"))
            : SplitMerge(StringField(m, "a merge"))).ToList();
        var added = (root["added_tokens"] as JsonArray ?? []).Select(t => AddedTokenFrom(t, IntField(t?["id"], "an added token's id"))).ToList();
        // The BPE vocabulary of a tokenizer.json may list the added tokens too; slow tokenizers keep them apart.
        foreach (var t in added) vocab.Remove(t.Content);
        var settings = tokenizerConfig is null ? TokenizerSettings.Defaults(added)
            : TokenizerSettings.FromConfig(ReadObject(tokenizerConfig, "tokenizer_config.json"), added);
        return new Qwen2Tokenizer(vocab, merges, settings, maxTextLength);
    }

    /// <summary>The regex patterns of the Split pre-tokenisers in a tokenizer.json pre_tokenizer (nested in Sequences).</summary>
    private static IEnumerable<string> SplitPatterns(JsonNode? node) => node switch
    {
        JsonObject o when (string?)o["type"] == "Sequence" => (o["pretokenizers"] as JsonArray ?? []).SelectMany(SplitPatterns),
        JsonObject o when (string?)o["type"] == "Split" && o["pattern"]?["Regex"] is JsonValue regex => [(string)regex!],
        _ => [],
    };

    private static int IntField(JsonNode? node, string what) =>
        node is JsonValue v && v.TryGetValue<int>(out var i) ? i : throw new InvalidDataException($"{what} is not an integer");

    private static string StringField(JsonNode? node, string what) =>
        node is JsonValue v && v.TryGetValue<string>(out var text) ? text : throw new InvalidDataException($"{what} is not a string");

    private static bool FlagField(JsonNode? node, string what) => node switch
    {
        null => false,
        JsonValue v when v.TryGetValue<bool>(out var flag) => flag,
        _ => throw new InvalidDataException($"{what} is not true or false"),
    };

    /// <summary>An added token as tokenizer.json and tokenizer_config.json write it (content and flags).</summary>
    private static AddedToken AddedTokenFrom(JsonNode? node, int id) => new(id, StringField(node?["content"], $"the content of added token {id}"),
        FlagField(node?["special"], "special"), FlagField(node?["lstrip"], "lstrip"), FlagField(node?["rstrip"], "rstrip"), FlagField(node?["single_word"], "single_word"));

    private static Dictionary<string, int> ReadVocab(Stream stream)
    {
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, int>>(stream) ?? throw new InvalidDataException("vocab.json is null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"vocab.json is not an object of token → id: {e.Message}", e);
        }
    }

    private static List<(string, string)> ReadMerges(TextReader reader)
    {
        var merges = new List<(string, string)>();
        var first = true;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine(), first = false)
        {
            line = line.Trim();
            if ((first && line.StartsWith("#version:", StringComparison.Ordinal)) || line.Length == 0) continue;
            merges.Add(SplitMerge(line));
        }
        return merges;
    }

    private static (string, string) SplitMerge(string line)
    {
        var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        return parts.Length == 2 ? (parts[0], parts[1]) : throw new InvalidDataException($"merge '{line}' is not two tokens");
    }

    private static JsonObject ReadObject(Stream stream, string name)
    {
        try
        {
            return JsonNode.Parse(stream) as JsonObject ?? throw new InvalidDataException($"{name} is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{name} is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>The special-token settings of <c>tokenizer_config.json</c>.</summary>
    private sealed record TokenizerSettings(IReadOnlyList<AddedToken> AddedTokens, string? Bos, string? Eos, string? Unk, string? Pad, IReadOnlyList<string> AdditionalSpecial)
    {
        // Qwen2Tokenizer.__init__'s defaults where the config leaves a name out (an explicit null means none).
        private const string EndOfText = "<|endoftext|>";

        public static TokenizerSettings Defaults(IReadOnlyList<AddedToken> added) => new(added, null, EndOfText, EndOfText, EndOfText, []);

        public static TokenizerSettings FromConfig(JsonObject config, IReadOnlyList<AddedToken>? fallbackAdded = null)
        {
            var added = config["added_tokens_decoder"] is JsonObject decoder
                ? decoder.Select(kv => AddedTokenFrom(kv.Value, int.TryParse(kv.Key, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                    ? id : throw new InvalidDataException($"added token id '{kv.Key}' is not a number"))).ToList()
                : fallbackAdded ?? [];
            string? Name(string key, string? fallback) => !config.ContainsKey(key) ? fallback : TokenText(config[key]);
            var additional = (config["additional_special_tokens"] as JsonArray ?? []).Select(TokenText).OfType<string>().ToList();
            return new(added, Name("bos_token", null), Name("eos_token", EndOfText), Name("unk_token", EndOfText), Name("pad_token", EndOfText), additional);
        }

        // A token is written as its text or as an AddedToken object with "content".
        private static string? TokenText(JsonNode? node) => node switch
        {
            null => null,
            JsonObject o => StringField(o["content"], "a special token's content"),
            _ => StringField(node, "a special token"),
        };
    }
}
