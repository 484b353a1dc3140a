using System.Runtime.Serialization;

namespace XFlowDelivery.Config
{
    /// <summary>
    /// The configuration file (JSON, camelCase, written by New-XFlowDeliveryConfig). Everything a
    /// scheduled run needs; the API token only in protected form (<see cref="TokenDocument"/>).
    /// Written by DataContractJsonSerializer, read by ConfigStore.ReadDocument: a member a
    /// hand-edited file leaves out keeps the default set here.
    /// </summary>
    [DataContract]
    internal sealed class ConfigDocument
    {
        internal const int CurrentSchemaVersion = 1;

        [DataMember(Name = "schemaVersion", Order = 0)] public int SchemaVersion { get; set; } = CurrentSchemaVersion;
        [DataMember(Name = "baseUrl", Order = 1)] public string? BaseUrl { get; set; }
        [DataMember(Name = "sdLoenPath", Order = 2, EmitDefaultValue = false)] public string? SdLoenPath { get; set; }
        [DataMember(Name = "prismePath", Order = 3, EmitDefaultValue = false)] public string? PrismePath { get; set; }
        [DataMember(Name = "statePath", Order = 4)] public string? StatePath { get; set; }
        [DataMember(Name = "caCertificatePath", Order = 5, EmitDefaultValue = false)] public string? CaCertificatePath { get; set; }
        [DataMember(Name = "ackMode", Order = 6)] public string AckMode { get; set; } = DefaultAckMode;
        [DataMember(Name = "timeoutSec", Order = 7)] public int TimeoutSec { get; set; } = DefaultTimeoutSec;
        [DataMember(Name = "deadlineSec", Order = 8)] public int DeadlineSec { get; set; } = DefaultDeadlineSec;
        [DataMember(Name = "proxyUrl", Order = 9, EmitDefaultValue = false)] public string? ProxyUrl { get; set; }
        [DataMember(Name = "allowInsecureHttp", Order = 10)] public bool AllowInsecureHttp { get; set; }
        [DataMember(Name = "token", Order = 11)] public TokenDocument? Token { get; set; }
        /// <summary>Off, Warn or Quarantine (docs/formats.md); absent (older files): Warn.</summary>
        [DataMember(Name = "sdLoenValidation", Order = 12, EmitDefaultValue = false)] public string? SdLoenValidation { get; set; }
        [DataMember(Name = "prismeValidation", Order = 13, EmitDefaultValue = false)] public string? PrismeValidation { get; set; }
        /// <summary>Importer-stall threshold in minutes; absent: no alarm (docs/monitoring.md).</summary>
        [DataMember(Name = "sdLoenStallAfterMinutes", Order = 14, EmitDefaultValue = false)] public int? SdLoenStallAfterMinutes { get; set; }
        [DataMember(Name = "prismeStallAfterMinutes", Order = 15, EmitDefaultValue = false)] public int? PrismeStallAfterMinutes { get; set; }

        internal const string DefaultAckMode = "Ack";
        internal const int DefaultTimeoutSec = 100;
        internal const int DefaultDeadlineSec = 600;
    }

    /// <summary>The protected API token and how to unprotect it.</summary>
    [DataContract]
    internal sealed class TokenDocument
    {
        /// <summary>One of <see cref="TokenProtection"/>'s names.</summary>
        [DataMember(Name = "protection", Order = 0)] public string? Protection { get; set; }

        /// <summary>The account that wrote it (DOMAIN\user): who can decrypt a CurrentUser token.</summary>
        [DataMember(Name = "protectedBy", Order = 1)] public string? ProtectedBy { get; set; }

        /// <summary>
        /// In the file: base64 of the DPAPI ciphertext, or (OwnerOnlyFile) of the UTF-8 token
        /// itself. Never held here: only <see cref="TokenText.Placeholder"/> while the document is
        /// written; when read, <see cref="ValueAt"/> says where it stands in the file's bytes.
        /// </summary>
        [DataMember(Name = "value", Order = 2)] public string? Value { get; set; }

        /// <summary>Where the value's JSON text stands in the bytes it was read from (offset, length).</summary>
        internal (int Start, int Length)? ValueAt;

        /// <summary>The file holds a value (set when read or written).</summary>
        internal bool Present;

        /// <summary>The value's JSON text as bytes, kept only until <see cref="ConfigStore.ReadToken"/> decodes and zeroes it.</summary>
        internal byte[]? Stored;
    }

    /// <summary>How the token is kept at rest.</summary>
    public enum TokenProtection
    {
        /// <summary>Windows DPAPI, user scope: only the account that wrote the file can decrypt it.</summary>
        DpapiCurrentUser,

        /// <summary>Windows DPAPI, machine scope: any account on this computer can decrypt it, so the
        /// file's ACL is limited to the service account and Administrators.</summary>
        DpapiLocalMachine,

        /// <summary>Linux/macOS: the token is stored base64-encoded (NOT encrypted) in a file only its
        /// owner can read (mode 0600).</summary>
        OwnerOnlyFile,
    }
}
