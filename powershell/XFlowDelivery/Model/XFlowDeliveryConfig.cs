using XFlowDelivery.Config;

namespace XFlowDelivery.Model
{
    /// <summary>A configuration file as Get-XFlowDeliveryConfig shows it: never the token, only whether one is set.</summary>
    public sealed class XFlowDeliveryConfig
    {
        public string Path { get; set; } = "";
        public string BaseUrl { get; set; } = "";
        public string? SdLoenPath { get; set; }
        public string? PrismePath { get; set; }
        public string StatePath { get; set; } = "";
        public string? CaCertificatePath { get; set; }
        public string AckMode { get; set; } = "Ack";
        public int TimeoutSec { get; set; }
        public int DeadlineSec { get; set; }
        public string? ProxyUrl { get; set; }
        public bool AllowInsecureHttp { get; set; }
        /// <summary>Off, Warn or Quarantine: how SD Løn files are checked before they are published.</summary>
        public string SdLoenValidation { get; set; } = "Warn";
        /// <summary>Off, Warn or Quarantine: how Prisme files (G69/G68) are checked before they are published.</summary>
        public string PrismeValidation { get; set; } = "Warn";
        /// <summary>Importer-stall threshold for SD Løn in minutes (null: no alarm).</summary>
        public int? SdLoenStallAfterMinutes { get; set; }
        /// <summary>Importer-stall threshold for Prisme in minutes (null: no alarm).</summary>
        public int? PrismeStallAfterMinutes { get; set; }
        public bool TokenSet { get; set; }
        public TokenProtection? TokenProtection { get; set; }

        /// <summary>The account that protected the token (DPAPI CurrentUser: the only one that can read it).</summary>
        public string? TokenProtectedBy { get; set; }
    }
}
