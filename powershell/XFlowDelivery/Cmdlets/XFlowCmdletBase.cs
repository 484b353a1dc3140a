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
                Terminate(ErrorMapping.FromLoadFailure(ex));
            }
        }

        /// <summary>Ends the cmdlet with the exception's ErrorId, category and target.</summary>
        protected void Fail(XFlowDeliveryException ex) => Terminate(ErrorMapping.ToErrorRecord(ex));

        protected void Fail(string errorId, ErrorCategory category, string message, object? target) =>
            Terminate(ErrorMapping.FromCmdlet(errorId, category, message, target));

        /// <summary>
        /// Every failure that ends the cmdlet comes here: a terminating error, unless the cmdlet
        /// reports the failure itself (Invoke-XFlowDelivery -AsScheduledTask). Never returns.
        /// </summary>
        private protected virtual void Terminate(ErrorRecord record) => ThrowTerminatingError(record);

        /// <summary>-TaskPath of the task cmdlets as the Task Scheduler API takes it; InvalidTaskPath when it names no folder.</summary>
        private protected string TaskFolderFrom(string taskPath)
        {
            var folder = XFlowDeliveryTaskDefinition.TaskFolderFor(taskPath);
            if (folder == null)
            {
                Fail("InvalidTaskPath", ErrorCategory.InvalidArgument,
                    $"-TaskPath '{taskPath}' does not name a Task Scheduler folder: give folder names separated by backslashes, such as \\XFlowDelivery\\ or \\Kommune\\XFlowDelivery\\, without empty names, . or .., or any of < > : \" / | ? *.", taskPath);
            }
            return folder!;
        }

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

        /// <summary>
        /// Reads a configuration file (ErrorIds ConfigFileNotFound, ConfigFileUnreadable, InvalidConfigFile);
        /// <paramref name="withToken"/>: keeps the token's value for <see cref="ConfigStore.ReadToken"/>.
        /// </summary>
        private protected ConfigDocument LoadConfig(string configPath, out string resolvedPath, bool withToken = false)
        {
            resolvedPath = ResolvePath(configPath, "ConfigPath");
            try
            {
                return ConfigStore.Read(resolvedPath, withToken);
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

        /// <summary>How often the pipeline thread looks for the engine's next event or answer (and for a stop).</summary>
        private protected const uint PollMilliseconds = 200;

        private readonly object _stopGate = new object();
        private bool _stopping;
        private XfdHandle? _active;

        /// <summary>Ctrl+C / pipeline stop: runs on another thread; only asks the engine to cancel what is running.</summary>
        protected override void StopProcessing()
        {
            XfdHandle? active;
            lock (_stopGate)
            {
                _stopping = true;
                active = _active;
            }
            active?.Cancel();
        }

        /// <summary>Whether the pipeline is being stopped. Checked before the engine starts anything.</summary>
        private protected bool StopRequested
        {
            get { lock (_stopGate) return _stopping; }
        }

        /// <summary>Makes <paramref name="work"/> what a stop cancels (null: nothing); cancels it at once if the stop came first.</summary>
        private protected void Track(XfdHandle? work)
        {
            lock (_stopGate)
            {
                _active = work;
                if (_stopping) work?.Cancel();
            }
        }

        /// <summary>
        /// Asks the engine a question without secrets; an engine error ends the cmdlet with its
        /// ErrorId. The answer is read with DataContractJsonSerializer unless <paramref name="read"/> is given.
        /// </summary>
        private protected unsafe T Call<T>(string requestJson, EngineJson.Reader<T>? read = null) where T : class
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(requestJson);
            fixed (byte* request = bytes)
            {
                return Ask<T>(StartCall(request, bytes.Length), read);
            }
        }

        /// <summary>Starts an engine call (the engine keeps its own copy of the request). Nothing starts after a stop.</summary>
        private protected unsafe XfdCallHandle StartCall(byte* request, int length)
        {
            if (StopRequested) throw new PipelineStoppedException();
            try
            {
                return EngineCall.Start(request, length);
            }
            catch (XFlowDeliveryException ex)
            {
                Fail(ex);
                throw; // unreachable: Fail throws
            }
        }

        /// <summary>
        /// Waits for the call's answer on the pipeline thread, polling so that Ctrl+C is noticed
        /// within <see cref="PollMilliseconds"/>; a stopped call is cancelled and abandoned, never
        /// waited for. An engine error ends the cmdlet with its ErrorId. Disposes the call.
        /// </summary>
        private protected unsafe T Ask<T>(XfdCallHandle call, EngineJson.Reader<T>? read = null) where T : class
        {
            read ??= EngineJson.ReadAnswer<T>;
            using (call) // xfd_call_free: cancels a call still going and never waits for it
            {
                Track(call);
                try
                {
                    while (true)
                    {
                        if (StopRequested) throw new PipelineStoppedException();
                        if (EngineCall.TryTake(call, PollMilliseconds, read, out var answer)) return answer!;
                    }
                }
                catch (XFlowDeliveryException ex)
                {
                    if (StopRequested) throw new PipelineStoppedException();
                    Fail(ex);
                    throw; // unreachable: Fail throws
                }
                finally
                {
                    Track(null);
                }
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
