using System;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;

namespace XFlowDelivery.Native
{
    /// <summary>The non-secret part of the run configuration (camelCase JSON for xfd_run_start).</summary>
    internal sealed class RunConfigValues
    {
        public string BaseUrl = "";
        public string? SdLoenPath;
        public string? PrismePath;
        public string StatePath = "";
        public string? CaCertificatePath;
        public string AckMode = "Ack";
        public int TimeoutSec = 100;
        public bool AllowInsecureHttp;
        public bool WhatIf;
        /// <summary>Whether the engine sends verbose messages (none are shown without -Verbose).</summary>
        public bool Verbose = true;
        public int? DeadlineSec;
        public string? ProxyUrl;
        public string? SdLoenValidation;
        public string? PrismeValidation;
        public int? SdLoenStallAfterMinutes;
        public int? PrismeStallAfterMinutes;
    }

    /// <summary>
    /// The run configuration as UTF-8 JSON in unmanaged memory. The API token is copied from the
    /// SecureString's unmanaged UTF-16 buffer straight into this unmanaged UTF-8 buffer, so it never
    /// exists as a managed string or a movable managed array. Dispose zeroes and frees the memory;
    /// call it right after xfd_run_start.
    /// </summary>
    internal sealed unsafe class RunConfigJson : IDisposable
    {
        private IntPtr _memory;

        public byte* Pointer => (byte*)_memory;
        public int Length { get; private set; }

        private RunConfigJson(IntPtr memory, int length)
        {
            _memory = memory;
            Length = length;
        }

        /// <param name="values">Everything but the token.</param>
        /// <param name="token">The API token.</param>
        /// <param name="op">null: the bare run configuration (xfd_run_start); otherwise an xfd_call
        /// request <c>{"op":op,"config":{…}}</c> (preflight).</param>
        public static RunConfigJson Create(RunConfigValues values, SecureString token, string? op = null)
        {
            // Everything except the token, as a managed string: {"apiToken":"<token>",<rest>}
            var rest = new StringBuilder(256);
            rest.Append("\",\"baseUrl\":"); EngineJson.AppendString(rest, values.BaseUrl);
            if (values.SdLoenPath != null) { rest.Append(",\"sdLoenPath\":"); EngineJson.AppendString(rest, values.SdLoenPath); }
            if (values.PrismePath != null) { rest.Append(",\"prismePath\":"); EngineJson.AppendString(rest, values.PrismePath); }
            rest.Append(",\"statePath\":"); EngineJson.AppendString(rest, values.StatePath);
            if (values.CaCertificatePath != null) { rest.Append(",\"caCertificatePath\":"); EngineJson.AppendString(rest, values.CaCertificatePath); }
            rest.Append(",\"ackMode\":"); EngineJson.AppendString(rest, values.AckMode);
            rest.Append(",\"timeoutSec\":").Append(values.TimeoutSec.ToString(System.Globalization.CultureInfo.InvariantCulture));
            rest.Append(",\"allowInsecureHttp\":").Append(values.AllowInsecureHttp ? "true" : "false");
            rest.Append(",\"whatIf\":").Append(values.WhatIf ? "true" : "false");
            rest.Append(",\"verbose\":").Append(values.Verbose ? "true" : "false");
            if (values.DeadlineSec is int deadline) rest.Append(",\"deadlineSec\":").Append(deadline.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (values.ProxyUrl != null) { rest.Append(",\"proxyUrl\":"); EngineJson.AppendString(rest, values.ProxyUrl); }
            if (values.SdLoenValidation != null) { rest.Append(",\"sdLoenValidation\":"); EngineJson.AppendString(rest, values.SdLoenValidation); }
            if (values.PrismeValidation != null) { rest.Append(",\"prismeValidation\":"); EngineJson.AppendString(rest, values.PrismeValidation); }
            if (values.SdLoenStallAfterMinutes is int sdStall) rest.Append(",\"sdLoenStallAfterMinutes\":").Append(sdStall.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (values.PrismeStallAfterMinutes is int prStall) rest.Append(",\"prismeStallAfterMinutes\":").Append(prStall.ToString(System.Globalization.CultureInfo.InvariantCulture));
            rest.Append('}');
            var open = new StringBuilder();
            if (op != null)
            {
                open.Append("{\"op\":"); EngineJson.AppendString(open, op); open.Append(",\"config\":");
                rest.Append('}');
            }
            open.Append("{\"apiToken\":\"");

            var prefix = Encoding.UTF8.GetBytes(open.ToString());
            var suffix = Encoding.UTF8.GetBytes(rest.ToString());

            IntPtr unicode = IntPtr.Zero;
            IntPtr memory = IntPtr.Zero;
            try
            {
                unicode = Marshal.SecureStringToGlobalAllocUnicode(token);
                var chars = (char*)unicode;
                int charCount = token.Length;

                int tokenBytes = EncodeToken(chars, charCount, null);
                int total = checked(prefix.Length + tokenBytes + suffix.Length);
                memory = Marshal.AllocHGlobal(total);
                var dest = (byte*)memory;
                int pos = 0;
                foreach (var b in prefix) dest[pos++] = b;
                pos += EncodeToken(chars, charCount, dest + pos);
                foreach (var b in suffix) dest[pos++] = b;

                var result = new RunConfigJson(memory, total);
                memory = IntPtr.Zero;
                return result;
            }
            finally
            {
                if (unicode != IntPtr.Zero) Marshal.ZeroFreeGlobalAllocUnicode(unicode);
                if (memory != IntPtr.Zero) Marshal.FreeHGlobal(memory);
            }
        }

        /// <summary>
        /// JSON-escapes and UTF-8-encodes the token. With dest == null only counts bytes.
        /// Lone surrogates become U+FFFD.
        /// </summary>
        private static int EncodeToken(char* chars, int count, byte* dest)
        {
            int n = 0;
            for (int i = 0; i < count; i++)
            {
                uint c = chars[i];
                if (c == '"' || c == '\\')
                {
                    if (dest != null) { dest[n] = (byte)'\\'; dest[n + 1] = (byte)c; }
                    n += 2;
                    continue;
                }
                if (c < 0x20)
                {
                    if (dest != null)
                    {
                        const string hex = "0123456789abcdef";
                        dest[n] = (byte)'\\'; dest[n + 1] = (byte)'u'; dest[n + 2] = (byte)'0'; dest[n + 3] = (byte)'0';
                        dest[n + 4] = (byte)hex[(int)(c >> 4)]; dest[n + 5] = (byte)hex[(int)(c & 0xF)];
                    }
                    n += 6;
                    continue;
                }
                uint cp = c;
                if (c >= 0xD800 && c <= 0xDBFF && i + 1 < count && chars[i + 1] >= 0xDC00 && chars[i + 1] <= 0xDFFF)
                {
                    cp = 0x10000 + ((c - 0xD800) << 10) + ((uint)chars[i + 1] - 0xDC00);
                    i++;
                }
                else if (c >= 0xD800 && c <= 0xDFFF)
                {
                    cp = 0xFFFD;
                }

                if (cp < 0x80)
                {
                    if (dest != null) dest[n] = (byte)cp;
                    n += 1;
                }
                else if (cp < 0x800)
                {
                    if (dest != null) { dest[n] = (byte)(0xC0 | (cp >> 6)); dest[n + 1] = (byte)(0x80 | (cp & 0x3F)); }
                    n += 2;
                }
                else if (cp < 0x10000)
                {
                    if (dest != null)
                    {
                        dest[n] = (byte)(0xE0 | (cp >> 12));
                        dest[n + 1] = (byte)(0x80 | ((cp >> 6) & 0x3F));
                        dest[n + 2] = (byte)(0x80 | (cp & 0x3F));
                    }
                    n += 3;
                }
                else
                {
                    if (dest != null)
                    {
                        dest[n] = (byte)(0xF0 | (cp >> 18));
                        dest[n + 1] = (byte)(0x80 | ((cp >> 12) & 0x3F));
                        dest[n + 2] = (byte)(0x80 | ((cp >> 6) & 0x3F));
                        dest[n + 3] = (byte)(0x80 | (cp & 0x3F));
                    }
                    n += 4;
                }
            }
            return n;
        }

        public void Dispose()
        {
            var memory = _memory;
            _memory = IntPtr.Zero;
            if (memory != IntPtr.Zero)
            {
                var p = (byte*)memory;
                for (int i = 0; i < Length; i++) p[i] = 0;
                Marshal.FreeHGlobal(memory);
            }
            Length = 0;
        }
    }
}
