using System.Diagnostics;
using System.Text;

namespace FineTune.Data.Jinja;

/// <summary>
/// Evaluates a parsed template over a scope, with @huggingface/jinja's semantics, inside the
/// sandbox: no file, network or reflection access exists to reach, dunder attributes are refused,
/// and loop iterations, call depth, string sizes and time are bounded (<see cref="SandboxLimits"/>).
/// </summary>
internal sealed partial class Interpreter
{
    private readonly SandboxLimits _limits;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _iterations;
    private int _callDepth;

    public Interpreter(SandboxLimits limits) => _limits = limits;

    private sealed class BreakSignal : Exception;
    private sealed class ContinueSignal : Exception;

    public string Run(TemplateBody program, Environment env) => EvaluateBlock(program.Body, env);

    internal static JinjaRuntimeException Error(string message) => new(JinjaErrors.Render, message);

    /// <summary>Counts work against the iteration and time limits.</summary>
    internal void Tick(long n = 1)
    {
        _iterations += n;
        if (_iterations > _limits.MaxIterations)
            throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template exceeded {_limits.MaxIterations:N0} loop iterations; a chat template needs a few per message");
        if (_clock.Elapsed > _limits.Timeout)
            throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template rendering took longer than {_limits.Timeout.TotalSeconds:0.#} s");
    }

    /// <summary>Checks a string or list built by the template against the size limit.</summary>
    internal T Sized<T>(T value) where T : JinjaValue
    {
        var size = value switch { JinjaString s => s.Value.Length, JinjaArray a => a.Items.Count, _ => 0 };
        if (size > _limits.MaxOutputChars)
            throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template built a value of {size:N0} characters or items, over the limit of {_limits.MaxOutputChars:N0}");
        return value;
    }

    internal string EvaluateBlock(IReadOnlyList<Node> statements, Environment env)
    {
        var sb = new StringBuilder();
        foreach (var statement in statements)
        {
            var value = Evaluate(statement, env);
            if (value is JinjaNone or JinjaUndefined) continue;
            sb.Append(value.Render());
            if (sb.Length > _limits.MaxOutputChars)
                throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template output exceeded {_limits.MaxOutputChars:N0} characters");
        }
        return sb.ToString();
    }

    internal JinjaValue Evaluate(Node? node, Environment env)
    {
        if (node is null) return JinjaUndefined.Instance;
        try
        {
            return node switch
            {
                TextNode t => new JinjaString(t.Value),
                CommentNode => JinjaNone.Instance,
                SetNode s => EvaluateSet(s, env),
                IfNode i => new JinjaString(EvaluateBlock(Evaluate(i.Test, env).IsTruthy ? i.Body : i.Alternate, env)),
                ForNode f => EvaluateFor(f, env),
                MacroNode m => DefineMacro(m, env),
                CallBlockNode c => EvaluateCallBlock(c, env),
                FilterBlockNode f => Filters.Apply(this, new JinjaString(EvaluateBlock(f.Body, env)), f.Filter, env),
                BreakNode => throw new BreakSignal(),
                ContinueNode => throw new ContinueSignal(),
                StringLiteralNode s => new JinjaString(s.Value),
                IntegerLiteralNode i => new JinjaInt(i.Value),
                FloatLiteralNode f => new JinjaFloat(f.Value),
                ArrayLiteralNode a => Sized(new JinjaArray(a.Items.Select(x => Evaluate(x, env)).ToList())),
                TupleLiteralNode t => new JinjaArray(t.Items.Select(x => Evaluate(x, env)).ToList(), isTuple: true),
                ObjectLiteralNode o => EvaluateObject(o, env),
                IdentifierNode id => env.Lookup(id.Name),
                CallNode c => EvaluateCall(c, env),
                MemberNode m => EvaluateMember(m, env),
                UnaryNode u => EvaluateUnary(u, env),
                BinaryNode b => EvaluateBinary(b, env),
                FilterNode f => Filters.Apply(this, Evaluate(f.Operand, env), f.Filter, env),
                TestNode t => EvaluateTest(t, env),
                SelectNode s => Evaluate(s.Test, env).IsTruthy ? Evaluate(s.Value, env) : JinjaUndefined.Instance,
                TernaryNode t => Evaluate(t.Condition, env).IsTruthy ? Evaluate(t.WhenTrue, env) : Evaluate(t.WhenFalse, env),
                _ => throw new JinjaRuntimeException(JinjaErrors.Unsupported, $"Unsupported construct {node.GetType().Name.Replace("Node", "")}"),
            };
        }
        catch (JinjaRuntimeException e) when (e.Offset < 0)
        {
            e.Offset = node.Offset;
            throw;
        }
    }

    private JinjaValue EvaluateObject(ObjectLiteralNode o, Environment env)
    {
        var entries = new List<KeyValuePair<string, JinjaValue>>();
        foreach (var (k, v) in o.Entries)
        {
            if (Evaluate(k, env) is not JinjaString key) throw Error("Object keys must be strings");
            entries.Add(KeyValuePair.Create(key.Value, Evaluate(v, env)));
        }
        return new JinjaObject(entries);
    }

    private JinjaValue EvaluateSet(SetNode node, Environment env)
    {
        var rhs = node.Value is not null ? Evaluate(node.Value, env) : new JinjaString(EvaluateBlock(node.Body, env));
        switch (node.Target)
        {
            case IdentifierNode id:
                env.Set(id.Name, rhs);
                break;
            case TupleLiteralNode tuple:
                if (rhs is not JinjaArray arr) throw Error($"Cannot unpack a {rhs.TypeName} in set");
                if (arr.Items.Count != tuple.Items.Count) throw Error($"Too {(tuple.Items.Count > arr.Items.Count ? "few" : "many")} items to unpack in set");
                for (var i = 0; i < tuple.Items.Count; i++)
                {
                    if (tuple.Items[i] is not IdentifierNode name) throw Error("Can only unpack into names in set");
                    env.Set(name.Name, arr.Items[i]);
                }
                break;
            case MemberNode { Property: IdentifierNode property } member:
                Sandbox.CheckName(property.Name);
                if (Evaluate(member.Object, env) is not JinjaNamespace ns)
                    throw Error("Cannot assign an attribute of something that is not a namespace(); use {% set ns = namespace(...) %}");
                ns.Entries[property.Name] = rhs;
                break;
            default:
                throw Error("Invalid target of set");
        }
        return JinjaNone.Instance;
    }

    private JinjaValue EvaluateFor(ForNode node, Environment env)
    {
        var scope = new Environment(env);
        Node? test = null;
        JinjaValue iterable;
        if (node.Iterable is SelectNode select)
        {
            iterable = Evaluate(select.Value, scope);
            test = select.Test;
        }
        else iterable = Evaluate(node.Iterable, scope);

        var source = iterable switch
        {
            JinjaArray a => a.Items,
            JinjaObject o => o.Entries.Keys.Select(k => (JinjaValue)new JinjaString(k)).ToList(),
            _ => throw Error($"Cannot loop over a {iterable.TypeName}"),
        };

        void Bind(Environment s, JinjaValue current)
        {
            if (node.Target is IdentifierNode id) s.Set(id.Name, current);
            else
            {
                var names = ((TupleLiteralNode)node.Target).Items;
                if (current is not JinjaArray c) throw Error($"Cannot unpack a {current.TypeName} into loop variables");
                if (names.Count != c.Items.Count) throw Error($"Too {(names.Count > c.Items.Count ? "few" : "many")} items to unpack");
                for (var j = 0; j < names.Count; j++)
                {
                    if (names[j] is not IdentifierNode n) throw Error("Can only unpack into names");
                    s.Set(n.Name, c.Items[j]);
                }
            }
        }

        var items = new List<JinjaValue>();
        foreach (var current in source.ToList())
        {
            Tick();
            if (test is not null)
            {
                var loopScope = new Environment(scope);
                Bind(loopScope, current);
                if (!Evaluate(test, loopScope).IsTruthy) continue;
            }
            items.Add(current);
        }

        var sb = new StringBuilder();
        var noIteration = true;
        for (var i = 0; i < items.Count; i++)
        {
            scope.Set("loop", new JinjaObject(
            [
                KeyValuePair.Create<string, JinjaValue>("index", new JinjaInt(i + 1)),
                KeyValuePair.Create<string, JinjaValue>("index0", new JinjaInt(i)),
                KeyValuePair.Create<string, JinjaValue>("revindex", new JinjaInt(items.Count - i)),
                KeyValuePair.Create<string, JinjaValue>("revindex0", new JinjaInt(items.Count - i - 1)),
                KeyValuePair.Create<string, JinjaValue>("first", JinjaBool.Of(i == 0)),
                KeyValuePair.Create<string, JinjaValue>("last", JinjaBool.Of(i == items.Count - 1)),
                KeyValuePair.Create<string, JinjaValue>("length", new JinjaInt(items.Count)),
                KeyValuePair.Create<string, JinjaValue>("previtem", i > 0 ? items[i - 1] : JinjaUndefined.Instance),
                KeyValuePair.Create<string, JinjaValue>("nextitem", i < items.Count - 1 ? items[i + 1] : JinjaUndefined.Instance),
            ]));
            Bind(scope, items[i]);
            try
            {
                sb.Append(EvaluateBlock(node.Body, scope));
                if (sb.Length > _limits.MaxOutputChars)
                    throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template output exceeded {_limits.MaxOutputChars:N0} characters");
            }
            catch (ContinueSignal) { continue; }
            catch (BreakSignal) { break; }
            noIteration = false;
        }
        if (noIteration) sb.Append(EvaluateBlock(node.Else, scope));
        return new JinjaString(sb.ToString());
    }

    private JinjaValue DefineMacro(MacroNode node, Environment env)
    {
        var special = SpecialArguments(node.Body);
        env.Set(node.Name, new JinjaFunction(node.Name, (args, scope) =>
        {
            var macroScope = new Environment(scope);
            BindArguments($"'{node.Name}'", node.Parameters, special, args, macroScope);
            return new JinjaString(InCall(() => EvaluateBlock(node.Body, macroScope)));
        }));
        return JinjaNone.Instance;
    }

    private T InCall<T>(Func<T> body)
    {
        if (++_callDepth > _limits.MaxCallDepth)
        {
            _callDepth--;
            throw new JinjaRuntimeException(JinjaErrors.Limit, $"Template nested macro calls more than {_limits.MaxCallDepth} deep (endless recursion?)");
        }
        try
        {
            Tick();
            return body();
        }
        finally { _callDepth--; }
    }

    private JinjaValue EvaluateCallBlock(CallBlockNode node, Environment env)
    {
        var parameters = node.CallerParameters ?? [];
        var special = SpecialArguments(node.Body);
        var caller = new JinjaFunction("caller", (callerArgs, _) =>
        {
            var callScope = new Environment(env);
            BindArguments("None", parameters, special, callerArgs, callScope);
            return new JinjaString(InCall(() => EvaluateBlock(node.Body, callScope)));
        });
        var (args, kwargs) = EvaluateArguments(node.Call.Arguments, env);
        args.Add(new JinjaKeywordArguments(kwargs));
        if (Evaluate(node.Call.Callee, env) is not JinjaFunction fn) throw Error("{% call %} needs a macro");
        var newEnv = new Environment(env);
        newEnv.Set("caller", caller);
        return fn.Call(args, newEnv);
    }

    /// <summary>Which of <c>kwargs</c>/<c>varargs</c> a macro body mentions, so it accepts extra arguments.</summary>
    private static HashSet<string> SpecialArguments(IReadOnlyList<Node> body)
    {
        var found = new HashSet<string>();
        void Visit(object? o)
        {
            switch (o)
            {
                case IdentifierNode { Name: "kwargs" or "varargs" } id: found.Add(id.Name); break;
                case Node n:
                    foreach (var p in n.GetType().GetProperties())
                        if (p.Name != nameof(Node.Offset)) Visit(p.GetValue(n));
                    break;
                case System.Collections.IEnumerable e and not string:
                    foreach (var x in e) Visit(x);
                    break;
                case System.Runtime.CompilerServices.ITuple t:
                    for (var i = 0; i < t.Length; i++) Visit(t[i]);
                    break;
            }
        }
        Visit(body);
        return found;
    }

    private void BindArguments(string displayName, IReadOnlyList<Node> parameters, HashSet<string> special, List<JinjaValue> args, Environment scope)
    {
        var positional = args.ToList();
        var keywords = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        if (positional.Count > 0 && positional[^1] is JinjaKeywordArguments kw)
        {
            positional.RemoveAt(positional.Count - 1);
            foreach (var (k, v) in kw.Entries) keywords[k] = v;
        }
        var pending = new List<(string, Node)>();
        for (var i = 0; i < parameters.Count; i++)
        {
            var (name, defaultValue) = parameters[i] switch
            {
                IdentifierNode id => (id.Name, (Node?)null),
                KeywordArgumentNode k => (k.Key.Name, k.Value),
                _ => throw Error("Invalid macro parameter"),
            };
            JinjaValue? value = i < positional.Count ? positional[i] : null;
            if (value is null && keywords.Remove(name, out var byName)) value = byName;
            if (value is null && defaultValue is not null) pending.Add((name, defaultValue));
            scope.Set(name, value ?? JinjaUndefined.Instance);
        }
        if (special.Contains("kwargs")) scope.Set("kwargs", new JinjaObject(keywords));
        else if (keywords.Count > 0) throw Error($"macro {displayName} takes no keyword argument '{keywords.GetAt(0).Key}'");
        if (special.Contains("varargs")) scope.Set("varargs", new JinjaArray(positional.Skip(parameters.Count).ToList()));
        else if (positional.Count > parameters.Count) throw Error($"macro {displayName} takes not more than {parameters.Count} argument(s)");
        foreach (var (name, defaultValue) in pending) scope.Set(name, Evaluate(defaultValue, scope));
    }

    internal (List<JinjaValue> Positional, OrderedDictionary<string, JinjaValue> Keywords) EvaluateArguments(IReadOnlyList<Node> args, Environment env)
    {
        var positional = new List<JinjaValue>();
        var keywords = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        foreach (var a in args)
        {
            if (a is SpreadNode spread)
            {
                if (Evaluate(spread.Argument, env) is not JinjaArray arr) throw Error("Cannot unpack a value that is not a list with '*'");
                positional.AddRange(arr.Items);
            }
            else if (a is not (KeywordArgumentNode or KeywordSpreadNode)) positional.Add(Evaluate(a, env));
        }
        foreach (var a in args)
        {
            if (a is KeywordArgumentNode k)
            {
                if (!keywords.TryAdd(k.Key.Name, Evaluate(k.Value, env))) throw Error($"Got multiple values for keyword argument '{k.Key.Name}'");
            }
            else if (a is KeywordSpreadNode ks)
            {
                if (Evaluate(ks.Argument, env) is not JinjaObject o) throw Error("Argument after ** must be a mapping");
                foreach (var (key, v) in o.Entries)
                    if (!keywords.TryAdd(key, v)) throw Error($"Got multiple values for keyword argument '{key}'");
            }
        }
        return (positional, keywords);
    }

    private JinjaValue EvaluateCall(CallNode node, Environment env)
    {
        var (args, kwargs) = EvaluateArguments(node.Arguments, env);
        if (kwargs.Count > 0) args.Add(new JinjaKeywordArguments(kwargs));
        var fn = Evaluate(node.Callee, env);
        if (fn is not JinjaFunction f)
            throw node.Callee switch
            {
                MemberNode { Property: IdentifierNode p, Computed: false } => new JinjaRuntimeException(JinjaErrors.Unsupported,
                    $"The method '{p.Name}' is not supported here (on a {Evaluate(((MemberNode)node.Callee).Object, env).TypeName})"),
                IdentifierNode id when fn is JinjaUndefined => new JinjaRuntimeException(JinjaErrors.Unsupported, $"The function '{id.Name}' is not defined"),
                _ => Error($"Cannot call a {fn.TypeName}"),
            };
        return f.Call(args, env);
    }

    private JinjaValue EvaluateMember(MemberNode node, Environment env)
    {
        var obj = Evaluate(node.Object, env);
        JinjaValue property;
        if (node.Computed)
        {
            if (node.Property is SliceNode slice) return EvaluateSlice(obj, slice, env);
            property = Evaluate(node.Property, env);
        }
        else property = node.Property is IntegerLiteralNode i ? new JinjaInt(i.Value) : new JinjaString(((IdentifierNode)node.Property).Name);

        if (property is JinjaString name) Sandbox.CheckName(name.Value);
        JinjaValue? value = null;
        switch (obj)
        {
            case JinjaObject o:
                if (property is not JinjaString key) throw Error($"Cannot look up a {property.TypeName} key in a mapping");
                value = o.Get(key.Value) ?? Methods.ForObject(this, o, key.Value);
                break;
            case JinjaNamespace ns:
                if (property is not JinjaString nsKey) throw Error($"Cannot look up a {property.TypeName} in a namespace");
                value = ns.Entries.TryGetValue(nsKey.Value, out var v) ? v : null;
                break;
            case JinjaArray or JinjaString:
                if (property is JinjaInt index)
                    value = obj is JinjaArray a ? At(a.Items, index.Value) : At(((JinjaString)obj).Value, index.Value);
                else if (property is JinjaString method)
                    value = obj is JinjaArray arr ? (method.Value == "length" ? new JinjaInt(arr.Items.Count) : null) : Methods.ForString(this, (JinjaString)obj, method.Value);
                else throw Error($"Cannot index with a {property.TypeName}");
                break;
            default:
                if (property is not JinjaString) throw Error($"Cannot look up a {property.TypeName} on a {obj.TypeName}");
                break;
        }
        return value ?? JinjaUndefined.Instance;
    }

    private static JinjaValue? At(List<JinjaValue> items, long i)
    {
        if (i < 0) i += items.Count;
        return i >= 0 && i < items.Count ? items[(int)i] : null;
    }

    private static JinjaValue? At(string s, long i)
    {
        if (i < 0) i += s.Length;
        return i >= 0 && i < s.Length ? new JinjaString(s[(int)i].ToString()) : null;
    }

    private JinjaValue EvaluateSlice(JinjaValue obj, SliceNode node, Environment env)
    {
        long? Part(Node? n) => Evaluate(n, env) switch
        {
            JinjaInt i => i.Value,
            JinjaUndefined => null,
            var other => throw Error($"Slice bounds must be integers, not a {other.TypeName}"),
        };
        var (start, stop, step) = (Part(node.Start), Part(node.Stop), Part(node.Step));
        return obj switch
        {
            JinjaArray a => new JinjaArray(Slicing.Slice(a.Items, start, stop, step ?? 1)),
            // Strings slice by code point, as the reference does (Array.from).
            JinjaString s => new JinjaString(string.Concat(Slicing.Slice(Slicing.CodePoints(s.Value), start, stop, step ?? 1))),
            _ => throw Error($"Cannot slice a {obj.TypeName}"),
        };
    }

    private JinjaValue EvaluateUnary(UnaryNode node, Environment env)
    {
        var arg = Evaluate(node.Argument, env);
        switch (node.Operator)
        {
            case "not": return JinjaBool.Of(!arg.IsTruthy);
            case "+" or "-":
                var sign = node.Operator == "-" ? -1 : 1;
                return arg switch
                {
                    JinjaInt i => new JinjaInt(sign * i.Value),
                    JinjaFloat f => new JinjaFloat(sign * f.Value),
                    JinjaBool b => new JinjaInt(sign * (b.Value ? 1 : 0)),
                    _ => throw Error($"Unknown operator '{node.Operator}' for a {arg.TypeName}"),
                };
            default: throw Error($"Unknown operator '{node.Operator}'");
        }
    }

    private JinjaValue EvaluateTest(TestNode node, Environment env)
    {
        var operand = Evaluate(node.Operand, env);
        var result = Tests.Run(node.Test, operand);
        return JinjaBool.Of(node.Negate ? !result : result);
    }
}
