using System.Text.Json.Nodes;

namespace VlaCloud.Policy.Tests;

public sealed class TokenizerTests
{
    private static readonly PolicyTokenizer Words = PolicyTokenizer.CreateWords(64);

    [Theory]
    [InlineData("pick the red cube and place it in the blue bowl")]
    [InlineData("Push the green ball to the yellow square.")]
    [InlineData("put the blue block onto the plate")]
    [InlineData("move the red cube into the blue bowl")]
    [InlineData("slide the green ball towards the yellow square")]
    [InlineData("grab the red block, then drop it in the blue bowl")]
    public void The_built_in_vocabulary_covers_task_instructions_and_the_spatial_prompts(string instruction)
    {
        foreach (var text in new[] { instruction, SpatialPrompts.ForAction(instruction) }.Concat(Enum.GetValues<SpatialKind>().Select(k => SpatialPrompts.Question(k, instruction))))
            Assert.DoesNotContain(Words.UnkId, Words.Encode(text));
    }

    [Fact]
    public void An_unknown_word_becomes_the_unknown_token()
    {
        var ids = Words.Encode("pick the zyzzyva");
        Assert.Equal(Words.UnkId, ids[^1]);
        Assert.Equal("pick the", Words.Decode(ids[..2]));
    }

    [Fact]
    public void Coordinates_round_trip_through_location_tokens_within_half_a_bin()
    {
        float[] xy = [0, 0, 63.9f, 10, 31.5f, 47.2f];
        var ids = Words.EncodeCoordinates(xy, 64, 48);
        Assert.All(ids, id => Assert.True(Words.IsLocation(id)));
        var back = Words.DecodeCoordinates(ids, 64, 48);
        for (var i = 0; i < xy.Length; i++) Assert.InRange(back[i] - xy[i], -0.5f * (i % 2 == 0 ? 1f : 0.75f) - 1e-4f, 0.5f * (i % 2 == 0 ? 1f : 0.75f) + 1e-4f);
        Assert.Equal("<loc_0><loc_0>", Words.Decode(ids[..2]));
    }

    /// <summary>A word tokenizer as an older build saved it: the built-in list without some of its words.</summary>
    private static PolicyTokenizer OlderWords(int locationBins, params string[] missing)
    {
        var current = PolicyTokenizer.CreateWords(locationBins);
        var list = JsonNode.Parse(current.Json)!["words"]!.AsArray().Select(n => (string)n!).Except(missing).ToArray();
        var json = new JsonObject { ["type"] = "vlacloud-words", ["words"] = new JsonArray([.. list.Select(w => (JsonNode)w!)]) };
        return PolicyTokenizer.FromJson(json.ToJsonString(), PolicyConfig.Tiny with { TextVocabSize = list.Length, LocationBins = locationBins });
    }

    [Fact]
    public void An_older_word_list_grows_to_the_built_in_one_and_every_token_keeps_its_meaning()
    {
        var older = OlderWords(64, "diamond", "nudge");
        Assert.Equal([older.UnkId], older.Encode("diamond"));

        var grown = older.GrownToBuiltInWords();
        Assert.NotNull(grown);
        Assert.Equal(Words.Json, grown.Json);
        var ids = older.IdsIn(grown);
        Assert.Equal(older.VocabSize, ids.Length);
        Assert.Equal(ids.Length, ids.Distinct().Count());
        foreach (var text in new[] { "push the red cube into the black bowl.", "pick the zyzzyva" })
            Assert.Equal(grown.Encode(text), older.Encode(text).Select(i => ids[i]));
        var coordinates = older.EncodeCoordinates([3, 60], 64, 64);
        Assert.Equal(grown.EncodeCoordinates([3, 60], 64, 64), coordinates.Select(i => ids[i]));

        // Nothing to add, or a vocabulary whose ids are not the built-in list's words: kept as it is.
        Assert.Null(Words.GrownToBuiltInWords());
        var foreign = PolicyTokenizer.FromJson(new JsonObject { ["type"] = "vlacloud-words", ["words"] = new JsonArray("<pad>", "<eos>", "<unk>", "zyzzyva") }.ToJsonString(),
            PolicyConfig.Tiny with { TextVocabSize = 4, LocationBins = 64 });
        Assert.Null(foreign.GrownToBuiltInWords());
        Assert.Null(PolicyTokenizer.FromJson(ByteLevelTokenizerJson(), PolicyConfig.Tiny with { TextVocabSize = 300 }).GrownToBuiltInWords());
    }

    /// <summary>A minimal GPT-2-style byte-level BPE tokenizer.json: 256 byte symbols, two merges, an end token.</summary>
    private static string ByteLevelTokenizerJson()
    {
        var symbols = new List<char>();
        for (var b = 0; b < 256; b++) symbols.Add(b is >= 33 and <= 126 or >= 161 and <= 172 or >= 174 ? (char)b : '\0');
        var extra = 0;
        for (var b = 0; b < 256; b++) if (symbols[b] == '\0') symbols[b] = (char)(256 + extra++);
        var vocab = new JsonObject();
        for (var b = 0; b < 256; b++) vocab[symbols[b].ToString()] = b;
        vocab["he"] = 256;
        vocab["hel"] = 257;
        var json = new JsonObject
        {
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray("h e", "he l") },
            ["added_tokens"] = new JsonArray(new JsonObject { ["id"] = 258, ["content"] = "<|endoftext|>" }),
        };
        return json.ToJsonString();
    }

    [Fact]
    public void A_hugging_face_byte_level_bpe_tokenizer_json_encodes_and_decodes_text()
    {
        var config = PolicyConfig.Tiny with { Tokenizer = "hf", TextVocabSize = 300 };
        var tokenizer = PolicyTokenizer.ForConfig(config, ByteLevelTokenizerJson());
        var ids = tokenizer.Encode("hello world");
        Assert.Equal(257, ids[0]); // "hel" merged
        Assert.Equal("hello world", tokenizer.Decode(ids));
        Assert.Equal(258, tokenizer.EosId);
        Assert.Equal(300 + 64, tokenizer.VocabSize);
    }

    [Fact]
    public void A_policy_with_a_hugging_face_tokenizer_saves_and_loads_it()
    {
        var config = PolicyConfig.Tiny with { Tokenizer = "hf", TextVocabSize = 300 };
        Assert.Throws<ArgumentException>(() => VlaPolicy.Create(config, TestData.Stats()));
        using var policy = VlaPolicy.Create(config, TestData.Stats(), tokenizerJson: ByteLevelTokenizerJson());
        var dir = Directory.CreateTempSubdirectory("vlacloud-hf-");
        try
        {
            policy.Save(dir.FullName);
            using var loaded = VlaPolicy.Load(dir.FullName);
            Assert.Equal(policy.Tokenizer.Encode("pick the red cube"), loaded.Tokenizer.Encode("pick the red cube"));
            Assert.Equal(policy.SampleActions(TestData.Observation(0), 3, steps: 2).Values.ToArray(), loaded.SampleActions(TestData.Observation(0), 3, steps: 2).Values.ToArray());
        }
        finally { dir.Delete(recursive: true); }
    }
}
