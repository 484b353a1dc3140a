using System;
using System.Management.Automation;
using System.Security;
using XFlowDelivery.Config;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// The connection parameters shared by Invoke-XFlowDelivery and Test-XFlowDeliveryConnection:
    /// either explicit (parameter set Explicit) or a configuration file (-ConfigPath).
    /// </summary>
    public abstract class XFlowRunCmdletBase : XFlowCmdletBase
    {
        private protected const string ExplicitSet = "Explicit";

        /// <summary>XFlow API base URL, e.g. https://xflow.example.dk/api/v1/. https only, unless -AllowInsecureHttp with a loopback address.</summary>
        [Parameter(Mandatory = true, Position = 0, ParameterSetName = ExplicitSet)]
        [ValidateNotNull]
        public Uri BaseUrl { get; set; } = null!;

        /// <summary>The XFlow public API token. Never written to any output, log or error.</summary>
        [Parameter(Mandatory = true, ParameterSetName = ExplicitSet)]
        [ValidateNotNull]
        public SecureString ApiToken { get; set; } = null!;

        /// <summary>Import folder of SD Løn. Omit if this server does not deliver to SD Løn.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateNotNullOrEmpty]
        public string? SdLoenPath { get; set; }

        /// <summary>Import folder of Prisme. Omit if this server does not deliver to Prisme.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateNotNullOrEmpty]
        public string? PrismePath { get; set; }

        /// <summary>Folder for the engine's own state (journal, lock).</summary>
        [Parameter(Mandatory = true, ParameterSetName = ExplicitSet)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>PEM file with an extra CA certificate to trust for the XFlow server.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateNotNullOrEmpty]
        public string? CaCertificatePath { get; set; }

        /// <summary>Ack (default): acknowledge each delivery after it is published. None: do not acknowledge.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateSet("Ack", "None")]
        public string AckMode { get; set; } = "Ack";

        /// <summary>Timeout of each HTTP request, in seconds (1–3600).</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateRange(1, 3600)]
        public int TimeoutSec { get; set; } = 100;

        /// <summary>The whole run stops after this many seconds (default 600).</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateRange(1, 86400)]
        public int? DeadlineSec { get; set; }

        /// <summary>An explicit HTTP proxy (http://host:port); without it: HTTPS_PROXY/ALL_PROXY, then (Windows) WinINet, then the machine WinHTTP proxy.</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        [ValidateNotNullOrEmpty]
        public Uri? ProxyUrl { get; set; }

        /// <summary>Allow plain http, only to a loopback address (testing).</summary>
        [Parameter(ParameterSetName = ExplicitSet)]
        public SwitchParameter AllowInsecureHttp { get; set; }

        /// <summary>A configuration file written by New-XFlowDeliveryConfig (how the scheduled task runs).</summary>
        [Parameter(Mandatory = true, ParameterSetName = ConfigSet)]
        [ValidateNotNullOrEmpty]
        public string ConfigPath { get; set; } = null!;

        /// <summary>The configuration file the settings came from (null with explicit parameters).</summary>
        private protected string? ConfigFile { get; private set; }

        /// <summary>
        /// The run settings and the token from the parameters or the configuration file.
        /// <paramref name="ownsToken"/>: the token was decrypted here and must be disposed by the caller.
        /// </summary>
        private protected RunConfigValues ReadRunSettings(out SecureString token, out bool ownsToken)
        {
            if (ParameterSetName != ConfigSet)
            {
                token = ApiToken;
                ownsToken = false;
                return ExplicitValues();
            }
            var doc = LoadConfig(ConfigPath, out var configFile, withToken: true);
            ConfigFile = configFile;
            try
            {
                token = ConfigStore.ReadToken(doc, configFile);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
                throw; // unreachable: Fail throws
            }
            ownsToken = true;
            WriteVerbose($"Configuration read from {configFile}.");
            return ConfigStore.ToRunValues(doc);
        }

        private RunConfigValues ExplicitValues()
        {
            if (!BaseUrl.IsAbsoluteUri)
            {
                Fail("InvalidBaseUrl", ErrorCategory.InvalidArgument, $"BaseUrl '{BaseUrl.OriginalString}' is not an absolute URL.", BaseUrl);
            }
            var values = new RunConfigValues
            {
                BaseUrl = BaseUrl.OriginalString,
                SdLoenPath = SdLoenPath == null ? null : ResolvePath(SdLoenPath, nameof(SdLoenPath)),
                PrismePath = PrismePath == null ? null : ResolvePath(PrismePath, nameof(PrismePath)),
                StatePath = ResolvePath(StatePath, nameof(StatePath)),
                CaCertificatePath = CaCertificatePath == null ? null : ResolvePath(CaCertificatePath, nameof(CaCertificatePath)),
                AckMode = AckMode,
                TimeoutSec = TimeoutSec,
                DeadlineSec = DeadlineSec,
                ProxyUrl = ProxyUrl?.OriginalString,
                AllowInsecureHttp = AllowInsecureHttp.IsPresent,
            };
            if (values.SdLoenPath == null && values.PrismePath == null)
            {
                Fail("NoImportFolder", ErrorCategory.InvalidArgument,
                    "Give -SdLoenPath, -PrismePath or both: without an import folder there is nothing to deliver to.", null);
            }
            return values;
        }

    }
}
