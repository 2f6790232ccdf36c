using System.Diagnostics;
using System.Text;
using VlaCloud.Policy;
using VlaCloud.Policy.InternVla.Imaging;
using VlaCloud.Policy.InternVla.Text;

namespace VlaCloud.Benchmarks;

/// <summary>
/// The text and pixel preprocessing of System 2: Qwen2 tokenizer throughput on prompts, its cost on hostile texts at
/// two lengths (a ratio near 4 for 4× the text shows the cost grows about linearly), the image processor and the DINO
/// transform per image, and spatial-answer parsing on garbage.
/// </summary>
internal sealed class TextSuite : IBenchmarkSuite
{
    public string Name => "text";

    public string Description => "tokenizer, chat template, image preprocessing, spatial answers: text [tokenizer-folder]";

    public Task RunAsync(Report report, string[] args, CancellationToken cancellationToken)
    {
        var folder = args.Length > 0 ? args[0] : Path.Combine("tests", "fixtures", "internvla-m1");
        var load = Stopwatch.StartNew();
        var tokenizer = Qwen2Tokenizer.Load(folder);
        report.Add("tokenizer_load_ms", load.Elapsed.TotalMilliseconds);

        var prompt = SpatialPrompts.ForAction("pick up the red cube and place it in the blue bowl");
        var template = new QwenChatTemplate(tokenizer);
        var timer = Stopwatch.StartNew();
        var prompts = 0;
        while (timer.Elapsed.TotalSeconds < 1)
        {
            template.Encode([ChatMessage.User(prompt, images: 2)], [64, 64], addGenerationPrompt: true);
            prompts++;
        }
        report.Add("chat_prompts_per_s", prompts / timer.Elapsed.TotalSeconds);

        var random = new Random(1);
        var n = Qwen2Tokenizer.DefaultMaxTextLength;
        (string Name, Func<int, string> Make)[] hostile =
        [
            ("cjk_word", len => new string(Enumerable.Range(0, len).Select(_ => (char)(0x4E00 + random.Next(20000))).ToArray())),
            ("latin_word", len => new string(Enumerable.Range(0, len).Select(_ => (char)('a' + random.Next(26))).ToArray())),
            ("repeated_letter", len => new string('a', len)),
            ("spaces", len => new string(' ', len - 1) + "x"),
            ("cr_space", len => string.Concat(Enumerable.Repeat("\r ", len / 2))),
            ("added_token_prefixes", len => string.Concat(Enumerable.Repeat("<|im_", len / 5))),
            ("prose", len => string.Concat(Enumerable.Repeat(prompt + " ", len / (prompt.Length + 1) + 1))[..len]),
        ];
        foreach (var (name, make) in hostile)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (smallText, largeText) = (make(n / 4), make(n));
            var small = Time(() => tokenizer.Encode(smallText));
            var large = Time(() => tokenizer.Encode(largeText));
            report.Add($"encode_{name}_{n >> 10}Ki_ms", large);
            report.Add($"encode_{name}_ratio_{n >> 10}Ki_to_{n >> 12}Ki", large / small);
        }

        var processor = new QwenImageProcessor(new QwenImageProcessorConfig());
        var camera = new byte[480 * 640 * 3];
        random.NextBytes(camera);
        var image = new CameraImage(camera, 640, 480);
        report.Add("qwen_image_640x480_ms", Time(() => processor.Process([image])));
        var square = new CameraImage(camera[..(224 * 224 * 3)], 224, 224);
        report.Add("qwen_image_224x224_ms", Time(() => processor.Process([square])));
        var dino = new DinoTransform();
        report.Add("dino_view_640x480_ms", Time(() => dino.Prepare([[image]])));

        var garbage = new StringBuilder();
        while (garbage.Length < QwenSpatialAnswer.MaxAnswerLength) garbage.Append("[{\"bbox_2d\": [1, 2, 3, {'x': [[\"\\u12");
        report.Add("parse_garbage_64Ki_ms", Time(() => QwenSpatialAnswer.Parse(garbage.ToString(), SpatialKind.Box)));
        return Task.CompletedTask;
    }

    /// <summary>Milliseconds of the fastest of three runs after a warm-up run (the machine is shared and noisy).</summary>
    private static double Time(Action action)
    {
        action();
        var best = double.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var timer = Stopwatch.StartNew();
            action();
            best = Math.Min(best, timer.Elapsed.TotalMilliseconds);
        }
        return best;
    }
}
