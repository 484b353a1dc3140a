using System;
using System.IO;
using System.Management.Automation;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Removes the scheduled task \XFlowDelivery\XFlowDelivery (Windows) or the systemd service and timer (Linux). Nothing registered is not an error.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Unregister, "XFlowDeliveryTask", SupportsShouldProcess = true)]
    public sealed class UnregisterXFlowDeliveryTaskCommand : XFlowCmdletBase
    {
        /// <summary>Linux: the folder the units were written to (default /etc/systemd/system).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? UnitDirectory { get; set; }

        protected override void ProcessRecord()
        {
            if (NativeLibraryLoader.IsWindows)
            {
                UnregisterWindows();
                return;
            }
            var directory = UnitDirectory == null ? RegisterXFlowDeliveryTaskCommand.DefaultUnitDirectory : ResolvePath(UnitDirectory, nameof(UnitDirectory));
            var units = new[]
            {
                Path.Combine(directory, XFlowDeliveryTaskDefinition.TimerUnit),
                Path.Combine(directory, XFlowDeliveryTaskDefinition.ServiceUnit),
            };
            if (!File.Exists(units[0]) && !File.Exists(units[1]))
            {
                WriteVerbose($"No XFlowDelivery units in '{directory}': nothing to remove.");
                return;
            }
            if (!ShouldProcess(string.Join(", ", units), "Stop, disable and remove")) return;
            bool system = directory == RegisterXFlowDeliveryTaskCommand.DefaultUnitDirectory;
            if (system && RegisterXFlowDeliveryTaskCommand.RunSystemctl("disable --now " + XFlowDeliveryTaskDefinition.TimerUnit) is string failure)
            {
                WriteWarning("systemctl disable failed (the units are removed anyway): " + failure);
            }
            try
            {
                foreach (var unit in units) File.Delete(unit);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                Fail("TaskRemovalFailed", ErrorCategory.PermissionDenied, $"Removing the units from '{directory}' failed: {ex.Message} Run as root.", directory);
            }
            if (system) RegisterXFlowDeliveryTaskCommand.RunSystemctl("daemon-reload");
        }

        // NOT RUN HERE (Windows only).
        private void UnregisterWindows()
        {
            try
            {
                if (!TaskScheduler.Exists())
                {
                    WriteVerbose($"The scheduled task {XFlowDeliveryTaskDefinition.TaskPath} does not exist: nothing to remove.");
                    return;
                }
                if (!ShouldProcess(XFlowDeliveryTaskDefinition.TaskPath, "Unregister scheduled task")) return;
                TaskScheduler.Unregister();
            }
            catch (Exception ex) when (ex is System.Reflection.TargetInvocationException || ex is System.Runtime.InteropServices.COMException || ex is UnauthorizedAccessException)
            {
                Fail("TaskRemovalFailed", ErrorCategory.PermissionDenied,
                    $"Removing {XFlowDeliveryTaskDefinition.TaskPath} failed: {(ex.InnerException ?? ex).Message} Run as administrator.", XFlowDeliveryTaskDefinition.TaskPath);
            }
        }
    }
}
