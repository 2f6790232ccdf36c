using VlaCloud.Parity;
using static TorchSharp.torch;

namespace VlaCloud.Policy.Tests;

public sealed class ModuleIdiomTests
{
    // Containers whose only job is to put their children under upstream's attribute path in the state dict
    // (qwen_vl_interface.model.…, model.visual.…); they compute nothing, so they have no forward to type.
    private static readonly string[] NamingContainers = ["QwenVlInterface", "Qwen25VlBackbone"];

    [Fact]
    public void Every_module_of_the_model_code_derives_from_a_typed_Module_so_call_runs_its_forward_and_hooks()
    {
        var untyped = typeof(VlaPolicy).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && typeof(nn.Module).IsAssignableFrom(t))
            .Where(t => !HasTypedForward(t) && !NamingContainers.Contains(t.Name))
            .Select(t => t.FullName)
            .ToList();

        Assert.Empty(untyped);
    }

    [Fact]
    public void The_family_and_the_vision_stem_parse_to_enums_and_unknown_names_are_refused_listing_the_known_ones()
    {
        Assert.Equal(PolicyFamily.St4Vla, PolicyConfig.Tiny.ModelFamily);
        Assert.Equal(PolicyFamily.InternVlaM1, TinyInternVlaM1.PolicyConfig().ModelFamily);
        var family = Assert.Throws<ArgumentException>(() => (PolicyConfig.Tiny with { Family = "ST4VLA" }).ModelFamily);
        Assert.Contains("family must be st4vla or internvla-m1, not 'ST4VLA'", family.Message);

        Assert.Equal(VisionStemKind.Conv, (PolicyConfig.Tiny with { VisionStem = "conv" }).VisionStemKind);
        var stem = Assert.Throws<ArgumentException>(() => (PolicyConfig.Tiny with { VisionStem = "linear" }).Validate());
        Assert.Contains("vision_stem must be patch or conv, not 'linear'", stem.Message);

        // The parsed values are not part of config.json: the names stay the checkpoint's format.
        var json = PolicyConfig.Tiny.ToJson();
        Assert.Contains("\"family\": \"st4vla\"", json);
        Assert.DoesNotContain("model_family", json);
        Assert.DoesNotContain("vision_stem_kind", json);
    }

    private static bool HasTypedForward(Type type)
    {
        for (var t = type.BaseType; t is not null; t = t.BaseType)
            if (t.IsGenericType && t.Namespace == "TorchSharp" && t.Name.StartsWith("Module`", StringComparison.Ordinal)) return true;
        return false;
    }
}
