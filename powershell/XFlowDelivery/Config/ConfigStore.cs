using System;
using System.IO;
using System.Runtime.Serialization.Json;
using System.Security;
using System.Text;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// Reads and writes the configuration file. Every failure is an <see cref="XFlowDeliveryException"/>
    /// with a stable ErrorId (ConfigFileNotFound, ConfigFileUnreadable, InvalidConfigFile,
    /// TokenMissing, TokenUnreadable) that <see cref="ExitCodes"/> maps for the scheduled task.
    /// </summary>
    internal static class ConfigStore
    {
        /// <summary>Writes the file; it is read with <see cref="JsonScanner"/> (every run reads it).</summary>
        private static readonly DataContractJsonSerializer Serializer = new DataContractJsonSerializer(typeof(ConfigDocument));

        internal static string RunningAccount => Environment.UserDomainName + "\\" + Environment.UserName;

        /// <summary>
        /// Reads and validates the file. The token's value never becomes a managed string (the
        /// reader only notes where it stands, <see cref="JsonScanner.ReadStringSpan"/>): with
        /// <paramref name="withToken"/> its bytes are kept in <see cref="TokenDocument.Stored"/> for
        /// <see cref="ReadToken"/>, otherwise it is only noted as present.
        /// </summary>
        internal static ConfigDocument Read(string path, bool withToken = false)
        {
            byte[] raw = ReadBytes(path);
            try
            {
                var doc = JsonScanner.TryRead(raw, ReadDocument, out var problem)
                          ?? throw Invalid(path, "it is not a valid XFlowDelivery configuration (JSON): " + problem);
                Validate(doc, path);
                if (doc.Token?.ValueAt is (int start, int length) && length > 0)
                {
                    doc.Token.Present = true;
                    if (withToken)
                    {
                        doc.Token.Stored = new byte[length];
                        Buffer.BlockCopy(raw, start, doc.Token.Stored, 0, length);
                    }
                }
                return doc;
            }
            finally
            {
                Array.Clear(raw, 0, raw.Length);
            }
        }

        private static ConfigDocument ReadDocument(ref JsonScanner json)
        {
            // A file without a schemaVersion is not one this module wrote (Validate refuses 0).
            var doc = new ConfigDocument { SchemaVersion = 0 };
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "schemaVersion": doc.SchemaVersion = json.ReadInt32(); break;
                    case "baseUrl": doc.BaseUrl = json.ReadText(); break;
                    case "sdLoenPath": doc.SdLoenPath = json.ReadText(); break;
                    case "prismePath": doc.PrismePath = json.ReadText(); break;
                    case "statePath": doc.StatePath = json.ReadText(); break;
                    case "caCertificatePath": doc.CaCertificatePath = json.ReadText(); break;
                    case "ackMode": doc.AckMode = json.ReadText()!; break;
                    case "timeoutSec": doc.TimeoutSec = json.ReadInt32(); break;
                    case "deadlineSec": doc.DeadlineSec = json.ReadInt32(); break;
                    case "proxyUrl": doc.ProxyUrl = json.ReadText(); break;
                    case "allowInsecureHttp": doc.AllowInsecureHttp = json.ReadBoolean(); break;
                    case "token":
                        if (doc.Token != null) throw new FormatException("a second token member");
                        doc.Token = json.TryNull() ? null : ReadTokenDocument(ref json);
                        break;
                    case "sdLoenValidation": doc.SdLoenValidation = json.ReadText(); break;
                    case "prismeValidation": doc.PrismeValidation = json.ReadText(); break;
                    case "sdLoenStallAfterMinutes": doc.SdLoenStallAfterMinutes = json.TryNull() ? null : json.ReadInt32(); break;
                    case "prismeStallAfterMinutes": doc.PrismeStallAfterMinutes = json.TryNull() ? null : json.ReadInt32(); break;
                    default: json.SkipValue(); break;
                }
            }
            return doc;
        }

        private static TokenDocument ReadTokenDocument(ref JsonScanner json)
        {
            var token = new TokenDocument();
            json.Expect('{');
            for (bool first = true; json.NextMember(ref first) is string name;)
            {
                switch (name)
                {
                    case "protection": token.Protection = json.ReadText(); break;
                    case "protectedBy": token.ProtectedBy = json.ReadText(); break;
                    // Where the value stands, not the value: it must never become a managed string.
                    case "value":
                        if (token.ValueAt != null) throw new FormatException("a second token value");
                        if (!json.TryNull()) token.ValueAt = json.ReadStringSpan();
                        break;
                    default: json.SkipValue(); break;
                }
            }
            return token;
        }

        /// <summary>
        /// The file as UTF-8 bytes (a UTF-16 file, as Windows PowerShell 5.1 writes by default, is
        /// converted; a byte order mark is dropped), read without a buffer of the FileStream's own,
        /// which nobody would zero. The caller zeroes the result.
        /// </summary>
        private static byte[] ReadBytes(string path)
        {
            byte[] bytes;
            try
            {
                using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1))
                {
                    bytes = PrivateFile.ReadAll(stream);
                }
            }
            catch (Exception ex) when (ex is FileNotFoundException || ex is DirectoryNotFoundException)
            {
                throw new XFlowDeliveryException("ConfigFileNotFound", "ObjectNotFound",
                    $"The configuration file '{path}' does not exist. Create it with New-XFlowDeliveryConfig.", path);
            }
            catch (Exception ex) when (ex is UnauthorizedAccessException || ex is IOException)
            {
                throw new XFlowDeliveryException("ConfigFileUnreadable", "ReadError",
                    $"The configuration file '{path}' cannot be read by {RunningAccount}: {ex.Message} " +
                    "Give this account read access to the file.", path);
            }
            if (bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) return Recode(bytes, new UTF8Encoding(false), 3);
            if (bytes.Length >= 2 && bytes[0] == 0xFF && bytes[1] == 0xFE) return Recode(bytes, new UnicodeEncoding(false, false), 2);
            if (bytes.Length >= 2 && bytes[0] == 0xFE && bytes[1] == 0xFF) return Recode(bytes, new UnicodeEncoding(true, false), 2);
            return bytes;
        }

        private static byte[] Recode(byte[] bytes, Encoding from, int skip)
        {
            var chars = new char[from.GetMaxCharCount(bytes.Length)];
            try
            {
                int count = from.GetChars(bytes, skip, bytes.Length - skip, chars, 0);
                var utf8 = new byte[Encoding.UTF8.GetByteCount(chars, 0, count)];
                Encoding.UTF8.GetBytes(chars, 0, count, utf8, 0);
                return utf8;
            }
            finally
            {
                Array.Clear(chars, 0, chars.Length);
                Array.Clear(bytes, 0, bytes.Length);
            }
        }

        private static void Validate(ConfigDocument doc, string path)
        {
            if (doc.SchemaVersion != ConfigDocument.CurrentSchemaVersion)
                throw Invalid(path, $"its schemaVersion is {doc.SchemaVersion}; this module reads version {ConfigDocument.CurrentSchemaVersion}");
            if (string.IsNullOrWhiteSpace(doc.BaseUrl)) throw Invalid(path, "baseUrl is missing");
            RequireAbsolute(doc.StatePath, "statePath", path, required: true);
            RequireAbsolute(doc.SdLoenPath, "sdLoenPath", path, required: false);
            RequireAbsolute(doc.PrismePath, "prismePath", path, required: false);
            RequireAbsolute(doc.CaCertificatePath, "caCertificatePath", path, required: false);
            if (doc.SdLoenPath == null && doc.PrismePath == null) throw Invalid(path, "neither sdLoenPath nor prismePath is set");
            if (doc.AckMode != "Ack" && doc.AckMode != "None") throw Invalid(path, $"ackMode '{doc.AckMode}' is not Ack or None");
            if (doc.TimeoutSec < 1 || doc.TimeoutSec > 3600) throw Invalid(path, "timeoutSec must be between 1 and 3600");
            if (doc.DeadlineSec < 1 || doc.DeadlineSec > 86400) throw Invalid(path, "deadlineSec must be between 1 and 86400");
            RequireValidationMode(doc.SdLoenValidation, "sdLoenValidation", path);
            RequireValidationMode(doc.PrismeValidation, "prismeValidation", path);
            RequireStallMinutes(doc.SdLoenStallAfterMinutes, "sdLoenStallAfterMinutes", path);
            RequireStallMinutes(doc.PrismeStallAfterMinutes, "prismeStallAfterMinutes", path);
        }

        /// <summary>The values of -SdLoenValidation / -PrismeValidation (docs/formats.md).</summary>
        internal static readonly string[] ValidationModes = { "Off", "Warn", "Quarantine" };

        private static void RequireValidationMode(string? value, string field, string path)
        {
            if (value != null && Array.IndexOf(ValidationModes, value) < 0)
                throw Invalid(path, $"{field} '{value}' is not Off, Warn or Quarantine");
        }

        private static void RequireStallMinutes(int? value, string field, string path)
        {
            if (value is int minutes && (minutes < 1 || minutes > 525600))
                throw Invalid(path, $"{field} must be between 1 and 525600 minutes");
        }

        private static void RequireAbsolute(string? value, string field, string path, bool required)
        {
            if (value == null && !required) return;
            if (string.IsNullOrWhiteSpace(value)) throw Invalid(path, field + " is missing");
            if (!Path.IsPathRooted(value) || (NativeLibraryLoader.IsWindows && !IsFullyQualifiedWindows(value!)))
                throw Invalid(path, $"{field} '{value}' is not an absolute path");
        }

        // "C:\x" and "\\server\share" are absolute; "\x" and "C:x" are rooted but relative to a drive.
        internal static bool IsFullyQualifiedWindows(string p) =>
            p.StartsWith("\\\\", StringComparison.Ordinal)
            || (p.Length >= 3 && char.IsLetter(p[0]) && p[1] == ':' && (p[2] == '\\' || p[2] == '/'));

        private static XFlowDeliveryException Invalid(string path, string why) =>
            new XFlowDeliveryException("InvalidConfigFile", "InvalidData",
                $"The configuration file '{path}' is not valid: {why}. Create it again with New-XFlowDeliveryConfig.", path);

        /// <summary>Decrypts the token. The error names the running account and the fix.</summary>
        internal static SecureString ReadToken(ConfigDocument doc, string path)
        {
            var token = doc.Token;
            if (token == null || !token.Present)
            {
                throw new XFlowDeliveryException("TokenMissing", "AuthenticationError",
                    $"The configuration file '{path}' holds no API token. Run New-XFlowDeliveryConfig -ApiToken … again.", path);
            }
            if (!Enum.TryParse(token.Protection, out TokenProtection protection))
            {
                throw Invalid(path, $"token protection '{token.Protection}' is unknown");
            }
            var text = token.Stored ?? throw new InvalidOperationException("the configuration was read without its token");
            token.Stored = null;
            byte[]? stored = null;
            try
            {
                stored = TokenText.DecodeBase64(text);
                return TokenProtector.Unprotect(stored, protection);
            }
            catch (Exception ex) when (ex is FormatException || ex is ArgumentException || ex is System.ComponentModel.Win32Exception
                                       || ex is PlatformNotSupportedException || ex is DecoderFallbackException)
            {
                string fix = protection == TokenProtection.DpapiCurrentUser
                    ? $"It was protected by {token.ProtectedBy ?? "another account"} with DPAPI scope CurrentUser, which only that account (with its profile loaded) can decrypt. " +
                      $"Run New-XFlowDeliveryConfig as {RunningAccount} (the account the task runs as), or as an administrator with -Scope LocalMachine -ServiceAccount {RunningAccount}."
                    : $"Run New-XFlowDeliveryConfig again on this computer as or for {RunningAccount}.";
                throw new XFlowDeliveryException("TokenUnreadable", "SecurityError",
                    $"The API token in '{path}' cannot be decrypted by {RunningAccount} ({ex.Message}). {fix}", path);
            }
            finally
            {
                Array.Clear(text, 0, text.Length);
                if (stored != null) Array.Clear(stored, 0, stored.Length);
            }
        }

        internal static RunConfigValues ToRunValues(ConfigDocument doc) => new RunConfigValues
        {
            BaseUrl = doc.BaseUrl!,
            SdLoenPath = doc.SdLoenPath,
            PrismePath = doc.PrismePath,
            StatePath = doc.StatePath!,
            CaCertificatePath = doc.CaCertificatePath,
            AckMode = doc.AckMode,
            TimeoutSec = doc.TimeoutSec,
            DeadlineSec = doc.DeadlineSec,
            ProxyUrl = doc.ProxyUrl,
            AllowInsecureHttp = doc.AllowInsecureHttp,
            SdLoenValidation = doc.SdLoenValidation,
            PrismeValidation = doc.PrismeValidation,
            SdLoenStallAfterMinutes = doc.SdLoenStallAfterMinutes,
            PrismeStallAfterMinutes = doc.PrismeStallAfterMinutes,
        };

        internal static XFlowDeliveryConfig Describe(string path, ConfigDocument doc)
        {
            TokenProtection? protection = null;
            if (doc.Token != null && Enum.TryParse(doc.Token.Protection, out TokenProtection parsed)) protection = parsed;
            return new XFlowDeliveryConfig
            {
                Path = path,
                BaseUrl = doc.BaseUrl ?? "",
                SdLoenPath = doc.SdLoenPath,
                PrismePath = doc.PrismePath,
                StatePath = doc.StatePath ?? "",
                CaCertificatePath = doc.CaCertificatePath,
                AckMode = doc.AckMode,
                TimeoutSec = doc.TimeoutSec,
                DeadlineSec = doc.DeadlineSec,
                ProxyUrl = doc.ProxyUrl,
                AllowInsecureHttp = doc.AllowInsecureHttp,
                SdLoenValidation = doc.SdLoenValidation ?? "Warn",
                PrismeValidation = doc.PrismeValidation ?? "Warn",
                SdLoenStallAfterMinutes = doc.SdLoenStallAfterMinutes,
                PrismeStallAfterMinutes = doc.PrismeStallAfterMinutes,
                TokenSet = doc.Token?.Present == true,
                TokenProtection = protection,
                TokenProtectedBy = doc.Token?.ProtectedBy,
            };
        }

        /// <summary>
        /// Writes the file through a temp file in the same folder that is restricted from its first
        /// byte (<see cref="PrivateFile"/>): mode 0600 on Linux/macOS; on Windows SYSTEM,
        /// Administrators and the writing account, plus read for <paramref name="aclAccount"/> (DPAPI
        /// LocalMachine). It then replaces the old file in one rename, so a crash leaves either
        /// the old file or the new one, never none.
        /// </summary>
        internal static void Write(string path, ConfigDocument doc, byte[] protectedToken, string? aclAccount)
        {
            // The document is serialized with a placeholder for the token's value, which is then
            // spliced in as bytes (TokenText): the base64 text never becomes a managed string.
            byte[] shape;
            using (var buffer = new MemoryStream())
            {
                doc.Token!.Value = TokenText.Placeholder;
                try
                {
                    using (var writer = JsonReaderWriterFactory.CreateJsonWriter(buffer, new UTF8Encoding(false), ownsStream: false, indent: true))
                    {
                        Serializer.WriteObject(writer, doc);
                    }
                }
                finally
                {
                    doc.Token.Value = null;
                }
                shape = buffer.ToArray();
            }
            var dir = Path.GetDirectoryName(path)!;
            var temp = Path.Combine(dir, "." + Path.GetFileName(path) + "." + Guid.NewGuid().ToString("N").Substring(0, 8) + ".tmp");
            try
            {
                using (var stream = PrivateFile.CreateNew(temp, aclAccount))
                {
                    TokenText.Splice(shape, protectedToken, stream.Write);
                    stream.Flush(true);
                }
                PrivateFile.Replace(temp, path);
            }
            finally
            {
                if (File.Exists(temp)) File.Delete(temp);
            }
        }
    }
}
