using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Policy.Tests.InternVla;

public sealed class QwenChatTemplateTests
{
    private static Qwen2Tokenizer Tokenizer => QwenTokenizerFiles.Tokenizer;
    private static readonly QwenChatTemplate Template = new(Tokenizer);

    private const string Prompt = "Your task is pick coke can. To identify the key objects for your task. Locate their bounding boxes in [x1,y1,x2,y2] format.";

    [Fact]
    public void The_prompt_gets_the_default_system_message_each_image_and_the_generation_prompt()
    {
        var text = QwenChatTemplate.Render([ChatMessage.User(Prompt, images: 2)], addGenerationPrompt: true);
        Assert.Equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
                     "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>" + Prompt + "<|im_end|>\n" +
                     "<|im_start|>assistant\n", text);
        Assert.DoesNotContain("<|im_start|>assistant", QwenChatTemplate.Render([ChatMessage.User(Prompt)], addGenerationPrompt: false));
    }

    [Fact]
    public void A_system_message_replaces_the_default_one()
    {
        var text = QwenChatTemplate.Render([ChatMessage.System("Be brief."), ChatMessage.User("hi")], addGenerationPrompt: false);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n", text);
    }

    [Fact]
    public void Vision_ids_label_the_pictures_when_asked()
    {
        var text = QwenChatTemplate.Render([ChatMessage.User("compare", images: 2)], addGenerationPrompt: false, addVisionId: true);
        Assert.Contains("user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>Picture 2: <|vision_start|><|image_pad|><|vision_end|>compare", text);
    }

    [Fact]
    public void Each_image_pad_expands_to_its_own_token_count_in_order()
    {
        var message = new ChatMessage(ChatRole.User, [ChatPart.Image, ChatPart.FromText("then"), ChatPart.Image]);
        var ids = Template.Encode([message], [3, 5], addGenerationPrompt: true).Ids;
        var start = Tokenizer.RequiredId("<|vision_start|>");
        var runs = new List<int>();
        for (var i = 0; i < ids.Length; i++)
            if (ids[i] == start) runs.Add(ids.Skip(i + 1).TakeWhile(id => id == Template.ImagePadId).Count());
        Assert.Equal([3, 5], runs);
        Assert.Equal(8, ids.Count(id => id == Template.ImagePadId));
    }

    [Fact]
    public void Tokenising_message_by_message_gives_the_ids_of_the_whole_text()
    {
        ChatMessage[] chat =
        [
            ChatMessage.User("\n\n  leading blank lines and trailing spaces   ", images: 1),
            ChatMessage.Assistant("\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"a b\"}]\n"),
            new(ChatRole.User, [ChatPart.FromText("two "), ChatPart.FromText(" parts"), ChatPart.Image]),
        ];
        var encoding = Template.Encode(chat, [1, 1], addGenerationPrompt: true);
        Assert.Equal(Tokenizer.Encode(QwenChatTemplate.Render(chat, addGenerationPrompt: true)), encoding.Ids);
    }

    [Fact]
    public void Labels_learn_only_the_assistant_answers_after_their_header()
    {
        const string answer = "[{\"bbox_2d\": [12, 34, 56, 78], \"label\": \"red cube\"}]";
        var encoding = Template.Encode([ChatMessage.User(Prompt, images: 1), ChatMessage.Assistant(answer)], [64], addGenerationPrompt: false);
        Assert.Equal(encoding.Ids.Length, encoding.Labels.Length);
        var learned = encoding.Labels.Where(l => l != QwenChatTemplate.IgnoreIndex).ToArray();
        Assert.Equal(Tokenizer.Encode(answer + "<|im_end|>\n"), learned);
        // The learned positions are the last ones, and hold the ids at those positions.
        var first = encoding.Labels.Length - learned.Length;
        Assert.All(Enumerable.Range(0, first), i => Assert.Equal(QwenChatTemplate.IgnoreIndex, encoding.Labels[i]));
        Assert.Equal(encoding.Ids[first..], learned);
        Assert.Equal([Tokenizer.RequiredId("<|im_start|>"), Tokenizer.RequiredId("assistant"), Tokenizer.RequiredId("Ċ")], encoding.Ids[(first - 3)..first]);
    }

    [Fact]
    public void The_generation_prompt_carries_no_label()
    {
        var encoding = Template.Encode([ChatMessage.User("hi")], [], addGenerationPrompt: true);
        Assert.All(encoding.Labels, l => Assert.Equal(QwenChatTemplate.IgnoreIndex, l));
    }

    [Theory]
    [InlineData("<|image_pad|>")]
    [InlineData("look <|vision_start|> here")]
    [InlineData("<|video_pad|>")]
    public void Text_holding_a_vision_token_is_refused(string text)
    {
        Assert.Throws<ArgumentException>(() => Template.Encode([ChatMessage.User(text, images: 1)], [64], addGenerationPrompt: true));
        Assert.Throws<ArgumentException>(() => Template.Encode([ChatMessage.User("fine", images: 1), ChatMessage.Assistant(text)], [64], addGenerationPrompt: false));
    }

    [Fact]
    public void Image_token_counts_must_match_the_images()
    {
        Assert.Throws<ArgumentException>(() => Template.Encode([ChatMessage.User("x", images: 2)], [64], addGenerationPrompt: true));
        Assert.Throws<ArgumentException>(() => Template.Encode([ChatMessage.User("x", images: 1)], [0], addGenerationPrompt: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => ChatMessage.User("x", images: -1));
    }
}
