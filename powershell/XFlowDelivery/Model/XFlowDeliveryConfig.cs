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
        public bool TokenSet { get; set; }
        public TokenProtection? TokenProtection { get; set; }

        /// <summary>The account that protected the token (DPAPI CurrentUser: the only one that can read it).</summary>
        public string? TokenProtectedBy { get; set; }
    }
}
