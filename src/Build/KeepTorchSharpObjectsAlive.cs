// The MSBuild task of src/Build/TorchSharpKeepAlive.targets (compiled by RoslynCodeTaskFactory; that file says why).
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Mono.Cecil;
using Mono.Cecil.Cil;

/// <summary>
/// Writes a copy of TorchSharp.dll in which every method that reads a native handle or calls native code keeps the
/// objects it got them from alive until it returns: the object each <c>Handle</c> is read from, <c>this</c>, and every
/// reference-typed argument and local, each passed to <see cref="GC.KeepAlive"/> before every <c>ret</c>.
/// </summary>
public sealed class KeepTorchSharpObjectsAlive : Task
{
    /// <summary>The marker the rewritten assembly carries (an AssemblyMetadata key; tests look for it).</summary>
    public const string MarkerKey = "VlaCloud.KeepAlive";

    /// <summary>TorchSharp.dll as restored.</summary>
    [Required] public string Input { get; set; } = "";

    /// <summary>Where the rewritten copy goes (written to a temporary name, then moved).</summary>
    [Required] public string Output { get; set; } = "";

    /// <summary>Mono.Cecil.dll, loaded by path: the task runs inside MSBuild, which does not know the package.</summary>
    [Required] public string CecilPath { get; set; } = "";

    public override bool Execute()
    {
        var folder = Path.GetDirectoryName(CecilPath)!;
        ResolveEventHandler resolve = (_, args) =>
        {
            var candidate = Path.Combine(folder, new AssemblyName(args.Name).Name + ".dll");
            return File.Exists(candidate) ? Assembly.LoadFrom(candidate) : null;
        };
        AppDomain.CurrentDomain.AssemblyResolve += resolve;
        try
        {
            var (methods, sites) = Rewrite();
            Log.LogMessage(MessageImportance.High, "TorchSharp keep-alive: {0} methods, {1} handle reads kept alive -> {2}", methods, sites, Output);
            return true;
        }
        finally
        {
            AppDomain.CurrentDomain.AssemblyResolve -= resolve;
        }
    }

    private (int Methods, int Sites) Rewrite()
    {
        var resolver = new DefaultAssemblyResolver();
        resolver.AddSearchDirectory(Path.GetDirectoryName(Input)!);
        resolver.AddSearchDirectory(Path.GetDirectoryName(typeof(object).Assembly.Location)!);
        using var module = ModuleDefinition.ReadModule(Input, new ReaderParameters { AssemblyResolver = resolver, ReadSymbols = false });
        var keepAlive = module.ImportReference(typeof(GC).GetMethod(nameof(GC.KeepAlive), new[] { typeof(object) })!);
        int methods = 0, sites = 0;
        foreach (var type in module.GetTypes())
            foreach (var method in type.Methods)
            {
                if (!method.HasBody) continue;
                var n = Rewrite(method, keepAlive, module);
                if (n < 0) continue;
                methods++;
                sites += n;
            }

        var metadata = module.ImportReference(typeof(AssemblyMetadataAttribute).GetConstructor(new[] { typeof(string), typeof(string) })!);
        var marker = new CustomAttribute(metadata);
        marker.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, MarkerKey));
        marker.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, "handles, this, arguments and locals kept alive until return"));
        module.Assembly.CustomAttributes.Add(marker);

        Directory.CreateDirectory(Path.GetDirectoryName(Output)!);
        var temp = Output + "." + Guid.NewGuid().ToString("N") + ".tmp";
        module.Write(temp);
        // Delete, then move: a hard link from an output folder to the old copy is broken, not written through.
        if (File.Exists(Output)) File.Delete(Output);
        File.Move(temp, Output);
        return (methods, sites);
    }

    /// <summary>Rewrites one method; the number of handle reads it spilled, or -1 when it needs nothing.</summary>
    private static int Rewrite(MethodDefinition method, MethodReference keepAlive, ModuleDefinition module)
    {
        var body = method.Body;
        var reads = body.Instructions.Where(IsHandleRead).ToList();
        var callsNative = body.Instructions.Any(i => i.OpCode == OpCodes.Call && i.Operand is MethodReference m
            && m.DeclaringType.Scope == module && m.Resolve() is { IsPInvokeImpl: true });
        if (reads.Count == 0 && !callsNative) return -1;

        LongBranches(body);
        // The keep-alives read every reference local on each return, so locals must start as null.
        body.InitLocals = true;
        var il = body.GetILProcessor();
        var kept = new List<Instruction>();

        // The object a handle is read from may be a temporary no argument or local holds (value.ToScalar().Handle):
        // the read becomes dup; stloc spill; read, and the spill is kept alive.
        var spilled = 0;
        foreach (var read in reads)
        {
            var index = body.Instructions.IndexOf(read);
            if (index > 0 && body.Instructions[index - 1].OpCode.OpCodeType == OpCodeType.Prefix) continue;
            var receiverType = read.Operand is MethodReference m ? m.DeclaringType : ((FieldReference)read.Operand).DeclaringType;
            var spill = new VariableDefinition(module.ImportReference(receiverType));
            body.Variables.Add(spill);
            var again = Clone(read);
            // The read itself becomes the dup, so a branch to it still lands before the spill.
            read.OpCode = OpCodes.Dup;
            read.Operand = null;
            var store = il.Create(OpCodes.Stloc, spill);
            il.InsertAfter(read, store);
            il.InsertAfter(store, again);
            kept.Add(il.Create(OpCodes.Ldloc, spill));
            spilled++;
        }

        if (method.HasThis && !method.DeclaringType.IsValueType) kept.Add(il.Create(OpCodes.Ldarg, body.ThisParameter));
        foreach (var parameter in method.Parameters)
            if (IsObjectReference(parameter.ParameterType)) kept.Add(il.Create(OpCodes.Ldarg, parameter));
        foreach (var local in body.Variables.ToList())
            if (!local.IsPinned && IsObjectReference(local.VariableType) && !kept.Any(k => k.Operand == local))
                kept.Add(il.Create(OpCodes.Ldloc, local));

        foreach (var ret in body.Instructions.Where(i => i.OpCode == OpCodes.Ret).ToList())
        {
            // The ret becomes the first load, so every branch to the ret now runs the keep-alives first.
            var first = true;
            var at = ret;
            foreach (var load in kept)
            {
                Instruction current;
                if (first)
                {
                    ret.OpCode = load.OpCode;
                    ret.Operand = load.Operand;
                    current = ret;
                    first = false;
                }
                else
                {
                    current = Clone(load);
                    il.InsertAfter(at, current);
                }
                var call = il.Create(OpCodes.Call, keepAlive);
                il.InsertAfter(current, call);
                at = call;
            }
            if (!first) il.InsertAfter(at, il.Create(OpCodes.Ret));
        }
        return spilled;
    }

    /// <summary>
    /// Short branches become long ones, so the inserted instructions cannot put a target out of a short branch's
    /// reach (Mono.Cecil.Rocks does this too, but another Cecil may already be loaded in the MSBuild process).
    /// </summary>
    private static void LongBranches(Mono.Cecil.Cil.MethodBody body)
    {
        foreach (var i in body.Instructions)
        {
            if (i.OpCode.OperandType != OperandType.ShortInlineBrTarget) continue;
            i.OpCode = i.OpCode.Code switch
            {
                Code.Br_S => OpCodes.Br, Code.Brfalse_S => OpCodes.Brfalse, Code.Brtrue_S => OpCodes.Brtrue,
                Code.Beq_S => OpCodes.Beq, Code.Bge_S => OpCodes.Bge, Code.Bgt_S => OpCodes.Bgt, Code.Ble_S => OpCodes.Ble,
                Code.Blt_S => OpCodes.Blt, Code.Bne_Un_S => OpCodes.Bne_Un, Code.Bge_Un_S => OpCodes.Bge_Un,
                Code.Bgt_Un_S => OpCodes.Bgt_Un, Code.Ble_Un_S => OpCodes.Ble_Un, Code.Blt_Un_S => OpCodes.Blt_Un,
                Code.Leave_S => OpCodes.Leave,
                _ => throw new InvalidOperationException($"unknown short branch {i.OpCode}"),
            };
        }
    }

    private static Instruction Clone(Instruction i) => i.Operand switch
    {
        MethodReference m => Instruction.Create(i.OpCode, m),
        FieldReference f => Instruction.Create(i.OpCode, f),
        VariableDefinition v => Instruction.Create(i.OpCode, v),
        ParameterDefinition p => Instruction.Create(i.OpCode, p),
        _ => throw new InvalidOperationException($"cannot copy {i}"),
    };

    /// <summary>A read of a TorchSharp object's native handle: its Handle getter or its handle field.</summary>
    private static bool IsHandleRead(Instruction instruction) => instruction.Operand switch
    {
        MethodReference m when instruction.OpCode == OpCodes.Call || instruction.OpCode == OpCodes.Callvirt =>
            m.Name == "get_Handle" && m.HasThis && m.Parameters.Count == 0 && !m.DeclaringType.IsValueType
            && m.DeclaringType.Scope.Name.StartsWith("TorchSharp", StringComparison.Ordinal)
            && m.DeclaringType is not GenericInstanceType,
        FieldReference f when instruction.OpCode == OpCodes.Ldfld =>
            f.Name == "handle" && f.FieldType.FullName == "System.IntPtr" && !f.DeclaringType.IsValueType
            && f.DeclaringType is not GenericInstanceType,
        _ => false,
    };

    private static bool IsObjectReference(TypeReference type) =>
        !type.IsValueType && !type.IsByReference && !type.IsPointer && !type.IsGenericParameter && !type.IsFunctionPointer
        && !type.IsPinned && !type.IsSentinel && type is not IModifierType && type.MetadataType != MetadataType.TypedByReference;
}
