using System.Globalization;
using System.Net;
using FineTune.Core.Diagnostics;

namespace FineTune.Ollama.Publishing;

/// <summary>
/// Turns the forms Ollama accepts for <c>OLLAMA_HOST</c> (<c>host</c>, <c>host:port</c>, <c>:port</c>,
/// <c>http://host:port</c>, <c>https://host/path</c>) into a base URL, with Ollama's defaults
/// (github.com/ollama/ollama, envconfig/config.go): no scheme means http and port 11434, an http or https
/// URL without a port means 80 or 443, no host means 127.0.0.1.
/// </summary>
public static class OllamaHost
{
    /// <summary>The environment variable Ollama's own tools read the server address from.</summary>
    public const string EnvironmentVariable = "OLLAMA_HOST";

    /// <summary>Where Ollama listens when nothing is configured.</summary>
    public const string Default = "http://127.0.0.1:11434";

    /// <summary>The explicit value if given, else <c>OLLAMA_HOST</c>, else <see cref="Default"/>.</summary>
    public static Uri Resolve(string? explicitHost)
    {
        var value = !string.IsNullOrWhiteSpace(explicitHost) ? explicitHost : Environment.GetEnvironmentVariable(EnvironmentVariable);
        return string.IsNullOrWhiteSpace(value) ? new Uri(Default + "/") : Parse(value);
    }

    /// <summary>Parses one host value; throws FT5004 when it cannot be a server address.</summary>
    public static Uri Parse(string value)
    {
        var s = value.Trim();
        string scheme, rest, defaultPort = "11434";
        var sep = s.IndexOf("://", StringComparison.Ordinal);
        if (sep < 0)
        {
            (scheme, rest) = ("http", s);
            if (s == "ollama.com") (scheme, rest) = ("https", "ollama.com:443");
        }
        else
        {
            scheme = s[..sep].ToLowerInvariant();
            rest = s[(sep + 3)..];
            defaultPort = scheme switch
            {
                "http" => "80",
                "https" => "443",
                _ => throw Invalid(value, $"the scheme must be http or https, not '{s[..sep]}'"),
            };
        }

        var slash = rest.IndexOf('/');
        var hostPort = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? "" : rest[(slash + 1)..];
        var (host, port) = SplitHostPort(hostPort, defaultPort, value);
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var portNumber) || portNumber > 65535)
            throw Invalid(value, $"'{port}' is not a port number (0-65535)");

        var hostText = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : host;
        if (!Uri.TryCreate($"{scheme}://{hostText}:{portNumber}/{path.TrimEnd('/')}{(path.Length > 0 ? "/" : "")}", UriKind.Absolute, out var uri))
            throw Invalid(value, "it is not a valid address");
        return uri;
    }

    private static (string Host, string Port) SplitHostPort(string hostPort, string defaultPort, string original)
    {
        if (hostPort.Length == 0) return ("127.0.0.1", defaultPort);
        if (hostPort.StartsWith('['))
        {
            var close = hostPort.IndexOf(']');
            if (close < 0) throw Invalid(original, "an IPv6 address is missing its ']'");
            var host = hostPort[1..close];
            var after = hostPort[(close + 1)..];
            if (after.Length == 0) return (host, defaultPort);
            if (!after.StartsWith(':')) throw Invalid(original, $"unexpected '{after}' after the IPv6 address");
            return (host, after[1..]);
        }
        var colon = hostPort.LastIndexOf(':');
        if (colon < 0) return (hostPort, defaultPort);
        if (hostPort.IndexOf(':') != colon) return (hostPort, defaultPort); // a bare IPv6 address
        var name = hostPort[..colon];
        return (name.Length == 0 ? "127.0.0.1" : name, hostPort[(colon + 1)..]);
    }

    private static FineTuneException Invalid(string value, string why) =>
        new(OllamaErrorCodes.InvalidHost, $"Ollama host '{value}' is not valid: {why}. Use host, host:port or http://host:port (set with --host, OllamaHost or {EnvironmentVariable}).");
}
