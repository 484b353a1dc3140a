using System;
using System.IO;
using System.Management.Automation;
using System.Security;
using XFlowDelivery.Config;
using XFlowDelivery.Model;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Writes an XFlowDelivery configuration file with the API token protected at rest.</para>
    /// <para type="description">Windows: the token is encrypted with DPAPI (CurrentUser: run this as the
    /// service account itself; LocalMachine: the file's ACL is limited to the service account and
    /// Administrators). Linux/macOS: the token is stored base64-encoded, NOT encrypted, in a file only
    /// its owner can read (mode 0600).</para>
    /// </summary>
    [Cmdlet(VerbsCommon.New, "XFlowDeliveryConfig", SupportsShouldProcess = true)]
    [OutputType(typeof(XFlowDeliveryConfig))]
    public sealed class NewXFlowDeliveryConfigCommand : XFlowCmdletBase
    {
        /// <summary>Where to write the configuration file (e.g. C:\ProgramData\XFlowDelivery\config.json).</summary>
        [Parameter(Mandatory = true, Position = 0)]
        [ValidateNotNullOrEmpty]
        public string Path { get; set; } = null!;

        /// <summary>XFlow API base URL (https).</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNull]
        public Uri BaseUrl { get; set; } = null!;

        /// <summary>The XFlow public API token.</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNull]
        public SecureString ApiToken { get; set; } = null!;

        /// <summary>Import folder of SD Løn (must exist).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? SdLoenPath { get; set; }

        /// <summary>Import folder of Prisme (must exist).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? PrismePath { get; set; }

        /// <summary>Folder for the engine's state (journal, lock); created on the first run.</summary>
        [Parameter(Mandatory = true)]
        [ValidateNotNullOrEmpty]
        public string StatePath { get; set; } = null!;

        /// <summary>PEM file with an extra CA certificate to trust for the XFlow server.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? CaCertificatePath { get; set; }

        /// <summary>Ack (default) or None.</summary>
        [Parameter]
        [ValidateSet("Ack", "None")]
        public string AckMode { get; set; } = "Ack";

        /// <summary>Timeout of each HTTP request in seconds (1–3600, default 100).</summary>
        [Parameter]
        [ValidateRange(1, 3600)]
        public int TimeoutSec { get; set; } = 100;

        /// <summary>The whole run stops after this many seconds (default 600).</summary>
        [Parameter]
        [ValidateRange(1, 86400)]
        public int DeadlineSec { get; set; } = 600;

        /// <summary>An explicit HTTP proxy; without it: HTTPS_PROXY/ALL_PROXY, then (Windows) WinINet, then the machine WinHTTP proxy.</summary>
        [Parameter]
        [ValidateNotNull]
        public Uri? ProxyUrl { get; set; }

        /// <summary>Allow plain http, only to a loopback address (testing).</summary>
        [Parameter]
        public SwitchParameter AllowInsecureHttp { get; set; }

        /// <summary>How SD Løn files are checked before they are published: Off, Warn (default: deliver, and report each finding as a warning) or Quarantine (keep the file out of the folder until released). SD Løn's format is not public: only an empty file or bytes not valid in the declared encoding are found.</summary>
        [Parameter]
        [ValidateSet("Off", "Warn", "Quarantine")]
        public string SdLoenValidation { get; set; } = "Warn";

        /// <summary>How Prisme files (G69 postings, G68 payments) are checked before they are published: Off, Warn (default) or Quarantine.</summary>
        [Parameter]
        [ValidateSet("Off", "Warn", "Quarantine")]
        public string PrismeValidation { get; set; } = "Warn";

        /// <summary>Importer-stall alarm for SD Løn: a file this module published still in the import folder after this many minutes ends the run with exit code 7. Off unless set.</summary>
        [Parameter]
        [ValidateRange(1, 525600)]
        public int? SdLoenStallAfterMinutes { get; set; }

        /// <summary>Importer-stall alarm for Prisme (minutes); off unless set.</summary>
        [Parameter]
        [ValidateRange(1, 525600)]
        public int? PrismeStallAfterMinutes { get; set; }

        /// <summary>Windows DPAPI scope: CurrentUser (default) or LocalMachine (needs -ServiceAccount, elevation).</summary>
        [Parameter]
        [ValidateSet("CurrentUser", "LocalMachine")]
        public string Scope { get; set; } = "CurrentUser";

        /// <summary>With -Scope LocalMachine: the account the task runs as; only it and Administrators may read the file.</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? ServiceAccount { get; set; }

        /// <summary>Replace an existing configuration file.</summary>
        [Parameter]
        public SwitchParameter Force { get; set; }

        protected override void ProcessRecord()
        {
            var path = ResolvePath(Path, nameof(Path));
            var doc = new ConfigDocument
            {
                BaseUrl = ValidateBaseUrl(),
                SdLoenPath = ExistingFolder(SdLoenPath, nameof(SdLoenPath)),
                PrismePath = ExistingFolder(PrismePath, nameof(PrismePath)),
                StatePath = ResolvePath(StatePath, nameof(StatePath)),
                CaCertificatePath = CaCertificatePath == null ? null : ExistingFile(CaCertificatePath, nameof(CaCertificatePath)),
                AckMode = AckMode,
                TimeoutSec = TimeoutSec,
                DeadlineSec = DeadlineSec,
                ProxyUrl = ValidateProxy(),
                AllowInsecureHttp = AllowInsecureHttp.IsPresent,
                SdLoenValidation = SdLoenValidation,
                PrismeValidation = PrismeValidation,
                SdLoenStallAfterMinutes = SdLoenStallAfterMinutes,
                PrismeStallAfterMinutes = PrismeStallAfterMinutes,
            };
            if (doc.SdLoenPath == null && doc.PrismePath == null)
            {
                Fail("NoImportFolder", ErrorCategory.InvalidArgument, "Give -SdLoenPath, -PrismePath or both.", null);
            }
            if (ApiToken.Length == 0)
            {
                Fail("EmptyToken", ErrorCategory.InvalidArgument, "-ApiToken is empty.", "ApiToken");
            }
            var directory = System.IO.Path.GetDirectoryName(path);
            if (string.IsNullOrEmpty(directory) || !Directory.Exists(directory))
            {
                Fail("FolderNotFound", ErrorCategory.ObjectNotFound, $"The folder of -Path '{path}' does not exist; create it first.", path);
            }
            if (File.Exists(path) && !Force)
            {
                Fail("ConfigFileExists", ErrorCategory.ResourceExists, $"'{path}' already exists; use -Force to replace it.", path);
            }

            var entries = Installations.Read();
            var installation = InstallationEntry.From(doc, path, Installations.ForConfig(entries, path)?.TaskName);
            if (Installations.FindConflict(installation, entries) is XFlowDeliveryException conflict)
            {
                Fail(conflict);
            }

            var protection = ChooseProtection();
            string? aclAccount = protection == TokenProtection.DpapiLocalMachine ? ServiceAccount : null;
            if (!ShouldProcess(path, $"Write XFlowDelivery configuration (token protection {protection})")) return;

            byte[]? protectedToken = null;
            try
            {
                doc.Token = new TokenDocument
                {
                    Protection = protection.ToString(),
                    ProtectedBy = ConfigStore.RunningAccount,
                    Present = true,
                };
                protectedToken = TokenProtector.Protect(ApiToken, protection);
                ConfigStore.Write(path, doc, protectedToken, aclAccount);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is System.ComponentModel.Win32Exception)
            {
                Fail("ConfigFileUnwritable", ErrorCategory.WriteError, $"Cannot write '{path}': {ex.Message}", path);
            }
            finally
            {
                if (protectedToken != null) Array.Clear(protectedToken, 0, protectedToken.Length);
            }
            try
            {
                Installations.Record(installation);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                WriteWarning($"The installation could not be recorded in '{Installations.Directory}' ({ex.Message}), so other installations on this server cannot check their folders against it; Register-XFlowDeliveryTask (as administrator) records it.");
            }
            if (protection == TokenProtection.OwnerOnlyFile)
            {
                WriteWarning($"The API token in '{path}' is NOT encrypted: it is stored base64-encoded in a file that only {Environment.UserName} and root can read (mode 0600). " +
                             "Anyone who can act as that account or as root can read the token.");
            }
            WriteObject(ConfigStore.Describe(path, doc));
        }

        private TokenProtection ChooseProtection()
        {
            if (!NativeLibraryLoader.IsWindows)
            {
                if (MyInvocation.BoundParameters.ContainsKey(nameof(Scope)) || ServiceAccount != null)
                {
                    WriteWarning("-Scope and -ServiceAccount apply to Windows DPAPI only; on this system the file is restricted to its owner. " +
                                 "Run this command as the account the service runs as.");
                }
                return TokenProtection.OwnerOnlyFile;
            }
            if (Scope == "LocalMachine")
            {
                if (ServiceAccount == null)
                {
                    Fail("ServiceAccountRequired", ErrorCategory.InvalidArgument,
                        "-Scope LocalMachine lets any account on this computer decrypt the token, so the file is limited to Administrators and the service account: give -ServiceAccount DOMAIN\\name (or DOMAIN\\gmsa$).", "ServiceAccount");
                }
                return TokenProtection.DpapiLocalMachine;
            }
            return TokenProtection.DpapiCurrentUser;
        }

        private string ValidateBaseUrl()
        {
            if (!BaseUrl.IsAbsoluteUri)
            {
                Fail("InvalidBaseUrl", ErrorCategory.InvalidArgument, $"BaseUrl '{BaseUrl.OriginalString}' is not an absolute URL.", BaseUrl);
            }
            bool https = BaseUrl.Scheme == Uri.UriSchemeHttps;
            bool allowedHttp = BaseUrl.Scheme == Uri.UriSchemeHttp && AllowInsecureHttp && BaseUrl.IsLoopback;
            if (!https && !allowedHttp)
            {
                Fail("InsecureUrl", ErrorCategory.InvalidArgument,
                    $"BaseUrl '{BaseUrl.OriginalString}' is not https. Plain http is allowed only to a loopback address with -AllowInsecureHttp.", BaseUrl);
            }
            if (!string.IsNullOrEmpty(BaseUrl.UserInfo))
            {
                Fail("InvalidBaseUrl", ErrorCategory.InvalidArgument, "BaseUrl must not carry credentials; use -ApiToken.", BaseUrl.Host);
            }
            return BaseUrl.OriginalString;
        }

        private string? ValidateProxy()
        {
            if (ProxyUrl == null) return null;
            if (!ProxyUrl.IsAbsoluteUri || (ProxyUrl.Scheme != Uri.UriSchemeHttp && ProxyUrl.Scheme != Uri.UriSchemeHttps))
            {
                Fail("InvalidProxyUrl", ErrorCategory.InvalidArgument, $"ProxyUrl '{ProxyUrl.OriginalString}' is not an http:// or https:// URL.", ProxyUrl);
            }
            return ProxyUrl.OriginalString;
        }

        private string? ExistingFolder(string? path, string parameterName)
        {
            if (path == null) return null;
            var resolved = ResolvePath(path, parameterName);
            if (!Directory.Exists(resolved))
            {
                Fail("FolderNotFound", ErrorCategory.ObjectNotFound,
                    $"-{parameterName} '{resolved}' does not exist. Create the import folder (or fix the path) first.", resolved);
            }
            return resolved;
        }

        private string ExistingFile(string path, string parameterName)
        {
            var resolved = ResolvePath(path, parameterName);
            if (!File.Exists(resolved))
            {
                Fail("FileNotFound", ErrorCategory.ObjectNotFound, $"-{parameterName} '{resolved}' does not exist.", resolved);
            }
            return resolved;
        }
    }
}
