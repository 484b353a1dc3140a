using System;
using System.IO;
using System.Management.Automation;
using XFlowDelivery.Config;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>What every XFlowDelivery cmdlet shares: the native engine check, path resolution, the config file.</summary>
    public abstract class XFlowCmdletBase : PSCmdlet
    {
        /// <summary>Parameter sets of the cmdlets that take a state folder or a configuration file.</summary>
        private protected const string StateSet = "StatePath";
        private protected const string ConfigSet = "ConfigFile";

        protected override void BeginProcessing()
        {
            try
            {
                NativeLibraryLoader.EnsureLoaded();
            }
            catch (XFlowDeliveryLoadException ex)
            {
                ThrowTerminatingError(ErrorMapping.FromLoadFailure(ex));
            }
        }

        /// <summary>Ends the cmdlet with the exception's ErrorId, category and target.</summary>
        protected void Fail(XFlowDeliveryException ex) => ThrowTerminatingError(ErrorMapping.ToErrorRecord(ex));

        protected void Fail(string errorId, ErrorCategory category, string message, object? target) =>
            ThrowTerminatingError(ErrorMapping.FromCmdlet(errorId, category, message, target));

        /// <summary>
        /// A file system path, made absolute against PowerShell's current location (not the process
        /// working directory); ErrorId InvalidPath for other providers or unusable input.
        /// </summary>
        protected string ResolvePath(string path, string parameterName)
        {
            string resolved = "";
            ProviderInfo? provider = null;
            try
            {
                resolved = SessionState.Path.GetUnresolvedProviderPathFromPSPath(path, out provider, out _);
            }
            catch (Exception ex) when (ex is ItemNotFoundException || ex is System.Management.Automation.DriveNotFoundException
                                       || ex is ProviderNotFoundException || ex is NotSupportedException
                                       || ex is ArgumentException || ex is PSInvalidOperationException)
            {
                Fail("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' is not a valid file system path: {ex.Message}", path);
            }
            if (!string.Equals(provider?.Name, "FileSystem", StringComparison.OrdinalIgnoreCase))
            {
                Fail("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' is on the {provider?.Name} provider; give a file system path.", path);
            }
            if (!Path.IsPathRooted(resolved))
            {
                Fail("InvalidPath", ErrorCategory.InvalidArgument,
                    $"-{parameterName} '{path}' does not resolve to an absolute path.", path);
            }
            return resolved;
        }

        /// <summary>Reads a configuration file (ErrorIds ConfigFileNotFound, ConfigFileUnreadable, InvalidConfigFile).</summary>
        private protected ConfigDocument LoadConfig(string configPath, out string resolvedPath)
        {
            resolvedPath = ResolvePath(configPath, "ConfigPath");
            try
            {
                return ConfigStore.Read(resolvedPath);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
                throw; // unreachable: Fail throws
            }
        }

        /// <summary>
        /// The state folder from -StatePath, or from the configuration file given by -ConfigPath
        /// (parameter sets make exactly one of them bound; the other stays null).
        /// </summary>
        private protected string StatePathFrom(string? statePath, string? configPath, out ConfigDocument? config)
        {
            config = null;
            if (configPath == null) return ResolvePath(statePath!, "StatePath");
            config = LoadConfig(configPath, out _);
            return config.StatePath!;
        }

        /// <summary>Asks the engine (xfd_call); an engine error ends the cmdlet with its ErrorId.</summary>
        private protected T Call<T>(string requestJson) where T : class
        {
            try
            {
                return EngineCall.Invoke<T>(requestJson);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
                throw; // unreachable: Fail throws
            }
        }

        /// <summary>Appends ,"name":"value" to a JSON request being built (nothing for null).</summary>
        private protected static void Member(System.Text.StringBuilder json, string name, string? value)
        {
            if (value == null) return;
            json.Append(",\"").Append(name).Append("\":");
            EngineJson.AppendString(json, value);
        }
    }
}
