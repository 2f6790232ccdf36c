using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Policy.Tests.InternVla;

/// <summary>The Qwen2.5 tokenizer files of the fixture folder, loaded once.</summary>
internal static class QwenTokenizerFiles
{
    private static readonly Lazy<Qwen2Tokenizer> Shared = new(() => Qwen2Tokenizer.Load(GoldenFixtures.InternVlaM1));

    /// <summary>The tokenizer of <c>vocab.json</c>, <c>merges.txt</c> and <c>tokenizer_config.json</c>.</summary>
    public static Qwen2Tokenizer Tokenizer => Shared.Value;

    /// <summary>The same files with <paramref name="editConfig"/> applied to tokenizer_config.json first.</summary>
    public static Qwen2Tokenizer WithConfig(Action<JsonObject> editConfig, int maxTextLength = Qwen2Tokenizer.DefaultMaxTextLength)
    {
        var config = JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("tokenizer_config.json")))!.AsObject();
        editConfig(config);
        using var vocab = File.OpenRead(GoldenFixtures.File("vocab.json"));
        using var merges = File.OpenText(GoldenFixtures.File("merges.txt"));
        using var configStream = new MemoryStream(Encoding.UTF8.GetBytes(config.ToJsonString()));
        return Qwen2Tokenizer.Create(vocab, merges, configStream, maxTextLength);
    }
}

public sealed class Qwen2TokenizerTests
{
    private static Qwen2Tokenizer Tokenizer => QwenTokenizerFiles.Tokenizer;

    private int Id(string token) => Tokenizer.RequiredId(token);

    [Fact]
    public void Digits_are_split_one_by_one_and_the_space_before_a_number_stands_alone()
    {
        Assert.Equal(["in", "Ġ", "2", "0", "2", "5"], Tokenizer.Tokenize("in 2025"));
    }

    [Fact]
    public void Contractions_split_off_in_any_case_and_another_apostrophe_leads_its_word()
    {
        Assert.Equal(["HE", "'S"], Pieces("HE'S"));
        Assert.Equal(["I", "'ll", " we", "'RE"], Pieces("I'll we'RE"));
        Assert.Equal(["'s", "up"], Pieces("'sup"));
        Assert.Equal(["'xyz"], Pieces("'xyz"));
        // The regex module folds long s to s.
        Assert.Equal(["x", "'\u017f"], Pieces("x'\u017f"));
    }

    [Fact]
    public void Whitespace_runs_split_as_the_pattern_says()
    {
        // \s*[\r\n]+ ends at the run's last line break; \s+(?!\S) leaves the last space to the next word.
        Assert.Equal(["a", "\n\n", " ", " b"], Pieces("a\n\n  b"));
        Assert.Equal(["a", " \r\n", " ", " b"], Pieces("a \r\n  b"));
        Assert.Equal(["a", "   "], Pieces("a   "));
        Assert.Equal(["a", "\t", ","], Pieces("a\t,"));
        // A space, punctuation and the line breaks right after it are one piece.
        Assert.Equal([" ,.\n\r", "x"], Pieces(" ,.\n\rx"));
    }

    private static string[] Pieces(string text)
    {
        var pieces = new List<(int Start, int Length)>();
        QwenPreTokenizer.Split(text, pieces);
        return [.. pieces.Select(p => text.Substring(p.Start, p.Length))];
    }

    [Fact]
    public void Added_tokens_are_split_out_before_pre_tokenisation_even_inside_words()
    {
        Assert.Equal([Id("a"), Id("<|image_pad|>"), Id("b")], Tokenizer.Encode("a<|image_pad|>b"));
        // Not special, but added: still one token, and kept when special tokens are skipped.
        Assert.Equal([Id("x"), Id("<tool_call>"), Id("y")], Tokenizer.Encode("x<tool_call>y"));
    }

    [Fact]
    public void Text_is_NFC_normalised_before_encoding()
    {
        Assert.Equal(Tokenizer.Encode("caf\u00e9"), Tokenizer.Encode("cafe\u0301"));
        Assert.Equal("caf\u00e9", Tokenizer.Decode(Tokenizer.Encode("cafe\u0301")));
    }

    [Theory]
    // Expected strings are Python's bytes.decode("utf-8", "replace") of the same bytes.
    [InlineData(new byte[] { 0xE6, 0x97, (byte)'a' }, "\uFFFDa")]
    [InlineData(new byte[] { 0xFF, 0xFE }, "\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 }, "\uFFFD")]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, "\uFFFD\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xC0, 0xAF }, "\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, "\uFFFD\uFFFD\uFFFD\uFFFD")]
    public void Bytes_that_are_not_utf8_decode_to_replacement_characters_as_python_does(byte[] bytes, string expected)
    {
        var ids = bytes.Select(b => Id(ByteLevelChar(b))).ToArray();
        Assert.Equal(expected, Tokenizer.Decode(ids));
    }

    [Fact]
    public void A_character_split_over_tokens_decodes_whole_once_its_bytes_meet()
    {
        var ids = Tokenizer.Encode("😀");
        Assert.True(ids.Length >= 1);
        Assert.Equal("😀", Tokenizer.Decode(ids));
        var bytes = Encoding.UTF8.GetBytes("😀").Select(b => Id(ByteLevelChar(b))).ToArray();
        Assert.Equal("😀", Tokenizer.Decode(bytes));
    }

    [Fact]
    public void Ids_the_tokenizer_does_not_have_decode_to_nothing()
    {
        Assert.Equal("ab", Tokenizer.Decode([Id("a"), Tokenizer.Count + 100, -1, int.MaxValue, Id("b")]));
    }

    [Fact]
    public void Skipping_special_tokens_drops_the_chat_markers_but_keeps_added_tokens_that_are_not_special()
    {
        int[] ids = [Id("<|im_start|>"), .. Tokenizer.Encode("hi"), Id("<|im_end|>"), Id("<tool_call>"), Id("<|endoftext|>")];
        Assert.Equal("<|im_start|>hi<|im_end|><tool_call><|endoftext|>", Tokenizer.Decode(ids));
        Assert.Equal("hi<tool_call>", Tokenizer.Decode(ids, skipSpecialTokens: true));
        Assert.True(Tokenizer.IsSpecial(Id("<|image_pad|>")));
        Assert.False(Tokenizer.IsSpecial(Id("<tool_call>")));
    }

    [Fact]
    public void The_special_tokens_are_those_of_the_config()
    {
        Assert.Equal(Id("<|im_end|>"), Tokenizer.EosId);
        Assert.Equal(Id("<|endoftext|>"), Tokenizer.PadId);
        Assert.Null(Tokenizer.UnkId);
        Assert.Null(Tokenizer.BosId);
        Assert.Equal(151643, Tokenizer.VocabSize);
        Assert.Equal(151665, Tokenizer.Count);
    }

    [Fact]
    public void The_scanner_splits_like_the_upstream_pattern_run_by_a_backtracking_engine()
    {
        // .NET's backtracking engine reads this pattern as Python's regex module does (\s is White_Space in both) for
        // characters of the BMP. Left out: characters beyond it (.NET classes match UTF-16 units, Python code points;
        // see the next test), long s (the engines fold it differently) and lone surrogates.
        var regex = new Regex(QwenPreTokenizer.Pattern);
        string[] alphabet = ["a", "B", "é", "日", "1", "٣", "Ⅻ", "½", " ", " ", " ", "\t", "\n", "\r", "\u00a0", "\u3000", "\u2028",
            "'", "s", "S", "t", "r", "e", "E", "l", "L", "v", "m", "d", ",", ".", "-", "☕", "\u0301", "\u200b", "\x1c", "_", "\"", "<", "|"];
        var random = new Random(19);
        var pieces = new List<(int Start, int Length)>();
        for (var n = 0; n < 5000; n++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(1, 40)).Select(_ => alphabet[random.Next(alphabet.Length)]));
            pieces.Clear();
            QwenPreTokenizer.Split(text, pieces);
            var expected = regex.Matches(text).Select(m => m.Value).ToList();
            Assert.True(expected.SequenceEqual(pieces.Select(p => text.Substring(p.Start, p.Length))), $"split of {System.Text.Json.JsonSerializer.Serialize(text)}");
        }
    }

    [Fact]
    public void Characters_beyond_the_BMP_are_classified_as_whole_code_points()
    {
        // Python's regex sees one symbol before a letter run and joins them; a UTF-16 engine would not.
        Assert.Equal(["😀B", " 🤖", "𝐀𝐁", "𝟙", "𝟚"], Pieces("😀B 🤖𝐀𝐁𝟙𝟚"));
    }

    [Fact]
    public void Any_text_round_trips_through_encode_and_decode()
    {
        var random = new Random(7);
        string[] alphabet = ["a", "Z", " ", "  ", "\n", "\r\n", "\t", "7", "99", "é", "ß", "日本", "中文", "😀", "🤖", "👩‍👩‍👧", "'s", "'", ".", "!?", "<|", "|>",
            "<|im_end|>", "<|image_pad|>", "<tool_call>", "\u00a0", "\u3000", "ħ", "ﬁ", "\u0000", "\x7f"];
        for (var n = 0; n < 500; n++)
        {
            var text = string.Concat(Enumerable.Range(0, random.Next(0, 30)).Select(_ => alphabet[random.Next(alphabet.Length)]));
            Assert.Equal(text.Normalize(NormalizationForm.FormC), Tokenizer.Decode(Tokenizer.Encode(text)));
        }
    }

    [Fact]
    public void A_lone_surrogate_is_encoded_as_the_replacement_character()
    {
        Assert.Equal(Tokenizer.Encode("a\uFFFDb"), Tokenizer.Encode("a\uD800b"));
    }

    [Fact]
    public void A_text_longer_than_the_limit_is_refused()
    {
        var limited = QwenTokenizerFiles.WithConfig(_ => { }, maxTextLength: 1000);
        Assert.Equal(1000, limited.MaxTextLength);
        Assert.NotEmpty(limited.Encode(new string('a', 1000)));
        var e = Assert.Throws<ArgumentException>(() => limited.Encode(new string('a', 1001)));
        Assert.Contains("1000", e.Message);
        Assert.Throws<ArgumentException>(() => Tokenizer.Encode(new string(' ', Qwen2Tokenizer.DefaultMaxTextLength + 1)));
    }

    [Fact]
    public void Hostile_texts_at_the_limit_encode_and_round_trip()
    {
        var random = new Random(3);
        var n = Qwen2Tokenizer.DefaultMaxTextLength;
        string[] hostile =
        [
            new string(Enumerable.Range(0, n).Select(_ => (char)(0x4E00 + random.Next(20000))).ToArray()), // one word of 3-byte letters
            new string(Enumerable.Range(0, n).Select(_ => (char)('a' + random.Next(26))).ToArray()),
            new string(' ', n - 1) + "x",
            string.Concat(Enumerable.Repeat("\r ", n / 2)),
            string.Concat(Enumerable.Repeat("'s", n / 2)),
            string.Concat(Enumerable.Repeat("<|im_", n / 5)),
        ];
        foreach (var text in hostile)
        {
            var ids = Tokenizer.Encode(text);
            Assert.InRange(ids.Length, 1, Encoding.UTF8.GetByteCount(text));
            Assert.Equal(text, Tokenizer.Decode(ids));
        }
    }

    [Fact]
    public void The_word_cache_stops_growing_at_its_capacity()
    {
        var tokenizer = QwenTokenizerFiles.WithConfig(_ => { });
        foreach (var chunk in Enumerable.Range(0, 100_000).Chunk(10_000))
            tokenizer.Encode(string.Join(' ', chunk.Select(i => $"w{i:x}q")));
        Assert.InRange(tokenizer.CachedWordCount, 1, Qwen2Tokenizer.WordCacheCapacity);
    }

    [Fact]
    public void Added_tokens_that_strip_swallow_the_whitespace_beside_them()
    {
        var stripping = QwenTokenizerFiles.WithConfig(c =>
        {
            var token = c["added_tokens_decoder"]!["151657"]!; // <tool_call>
            token["lstrip"] = true;
            token["rstrip"] = true;
        });
        Assert.Equal([Id("a"), Id("<tool_call>"), Id("b")], stripping.Encode("a \t<tool_call>\n b"));
        Assert.NotEqual(stripping.Encode("a \t<tool_call>\n b"), Tokenizer.Encode("a \t<tool_call>\n b"));
    }

    [Fact]
    public void A_single_word_added_token_inside_a_word_is_ordinary_text()
    {
        var singleWord = QwenTokenizerFiles.WithConfig(c => c["added_tokens_decoder"]!["151657"]!["single_word"] = true);
        Assert.DoesNotContain(Id("<tool_call>"), singleWord.Encode("x<tool_call>"));
        Assert.Equal(Tokenizer.Encode("x<tool_call"), singleWord.Encode("x<tool_call>")[..^1]);
        Assert.Contains(Id("<tool_call>"), singleWord.Encode("x <tool_call> y"));
    }

    [Fact]
    public void A_tokenizer_json_with_the_same_data_gives_the_same_ids()
    {
        var folder = Directory.CreateTempSubdirectory("qwen-tokenizer-json").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), TokenizerJson(QwenPreTokenizer.Pattern));
            File.Copy(GoldenFixtures.File("tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"));
            var fromJson = Qwen2Tokenizer.Load(folder);
            var cases = JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("tokenizer_cases.json")))!["strings"]!.AsArray();
            foreach (var c in cases)
                Assert.Equal(c!["ids"]!.AsArray().Select(v => (int)v!), fromJson.Encode((string)c["text"]!));
            Assert.Equal(Tokenizer.Count, fromJson.Count);
            Assert.Equal(Tokenizer.EosId, fromJson.EosId);

            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), TokenizerJson(@"'s|'t|\p{L}+|\p{N}+"));
            Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.Load(folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Malformed_tokenizer_files_are_refused_with_a_reason()
    {
        using var config = File.OpenRead(GoldenFixtures.File("tokenizer_config.json"));
        var vocab = new MemoryStream(Encoding.UTF8.GetBytes("{\"a\": 0, \"b\": 1}"));
        var e = Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.Create(vocab, new StringReader("#version: 0.2\n"), config));
        Assert.Contains("byte", e.Message);

        var fullVocab = Enumerable.Range(0, 256).ToDictionary(b => ByteLevelChar((byte)b), b => b);
        string VocabJson() => System.Text.Json.JsonSerializer.Serialize(fullVocab);
        config.Position = 0;
        Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.Create(new MemoryStream(Encoding.UTF8.GetBytes(VocabJson())), new StringReader("a b c\n"), config));
        config.Position = 0;
        e = Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.Create(new MemoryStream(Encoding.UTF8.GetBytes(VocabJson())), new StringReader("a b\n"), config));
        Assert.Contains("'a b'", e.Message);
        config.Position = 0;
        Assert.Throws<InvalidDataException>(() => Qwen2Tokenizer.Create(new MemoryStream("not json"u8.ToArray()), new StringReader(""), config));
        Assert.Throws<InvalidDataException>(() => QwenTokenizerFiles.WithConfig(c => c["added_tokens_decoder"]!["151657"]!["content"] = 5));
        Assert.Throws<InvalidDataException>(() => QwenTokenizerFiles.WithConfig(c => c["added_tokens_decoder"]!["151657"]!["rstrip"] = "yes"));
        Assert.Throws<InvalidDataException>(() => QwenTokenizerFiles.WithConfig(c => c["eos_token"] = 7));
        Assert.Throws<InvalidDataException>(() => QwenTokenizerFiles.WithConfig(c => c["added_tokens_decoder"]!["151658"]!["content"] = "<tool_call>"));
    }

    /// <summary>The byte-level character of a byte (GPT-2's bytes_to_unicode).</summary>
    internal static string ByteLevelChar(byte b) => ByteLevelBpe.ByteToChar[b].ToString();

    /// <summary>A Hugging Face tokenizer.json holding the fixture's vocabulary, merges and added tokens.</summary>
    private static string TokenizerJson(string pattern)
    {
        var config = JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("tokenizer_config.json")))!["added_tokens_decoder"]!.AsObject();
        var added = new JsonArray([.. config.Select(kv => (JsonNode)new JsonObject
        {
            ["id"] = int.Parse(kv.Key), ["content"] = (string)kv.Value!["content"]!, ["special"] = (bool)kv.Value["special"]!,
            ["lstrip"] = false, ["rstrip"] = false, ["single_word"] = false, ["normalized"] = false,
        })]);
        var merges = new JsonArray([.. File.ReadLines(GoldenFixtures.File("merges.txt")).Skip(1).Where(l => l.Length > 0).Select(l => (JsonNode)l)]);
        var root = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject { ["type"] = "NFC" },
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = JsonNode.Parse(File.ReadAllText(GoldenFixtures.File("vocab.json"))),
                ["merges"] = merges,
            },
        };
        return root.ToJsonString();
    }
}
