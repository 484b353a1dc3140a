using System;
using System.IO;
using System.Management.Automation;
using XFlowDelivery.Native;

namespace XFlowDelivery.Cmdlets
{
    /// <summary>
    /// <para type="synopsis">Removes the scheduled task \XFlowDelivery\XFlowDelivery (or the one named by -TaskName and -TaskPath) on Windows, or its systemd service and timer on Linux. Nothing registered is not an error.</para>
    /// </summary>
    [Cmdlet(VerbsLifecycle.Unregister, "XFlowDeliveryTask", SupportsShouldProcess = true)]
    public sealed class UnregisterXFlowDeliveryTaskCommand : XFlowCmdletBase
    {
        /// <summary>The task's name, as Register-XFlowDeliveryTask gave it (default XFlowDelivery).</summary>
        [Parameter]
        [ValidatePattern(@"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
        public string TaskName { get; set; } = XFlowDeliveryTaskDefinition.TaskName;

        /// <summary>Windows only: the Task Scheduler folder, as Register-XFlowDeliveryTask -TaskPath gave it (default \XFlowDelivery\).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string TaskPath { get; set; } = XFlowDeliveryTaskDefinition.TaskFolder + "\\";

        /// <summary>Linux: the folder the units were written to (default /etc/systemd/system).</summary>
        [Parameter]
        [ValidateNotNullOrEmpty]
        public string? UnitDirectory { get; set; }

        protected override void ProcessRecord()
        {
            var taskFolder = TaskFolderFrom(TaskPath);
            if (NativeLibraryLoader.IsWindows)
            {
                UnregisterWindows(taskFolder);
                return;
            }
            var directory = UnitDirectory == null ? RegisterXFlowDeliveryTaskCommand.DefaultUnitDirectory : ResolvePath(UnitDirectory, nameof(UnitDirectory));
            var units = new[]
            {
                Path.Combine(directory, XFlowDeliveryTaskDefinition.TimerUnitFor(TaskName)),
                Path.Combine(directory, XFlowDeliveryTaskDefinition.ServiceUnitFor(TaskName)),
            };
            if (!File.Exists(units[0]) && !File.Exists(units[1]))
            {
                WriteVerbose($"No XFlowDelivery units in '{directory}': nothing to remove.");
                return;
            }
            if (!ShouldProcess(string.Join(", ", units), "Stop, disable and remove")) return;
            bool system = directory == RegisterXFlowDeliveryTaskCommand.DefaultUnitDirectory;
            if (system && RegisterXFlowDeliveryTaskCommand.RunSystemctl("disable --now " + XFlowDeliveryTaskDefinition.TimerUnitFor(TaskName)) is string failure)
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
        private void UnregisterWindows(string taskFolder)
        {
            var path = XFlowDeliveryTaskDefinition.TaskPathFor(taskFolder, TaskName);
            try
            {
                if (!TaskScheduler.Exists(taskFolder, TaskName))
                {
                    WriteVerbose($"The scheduled task {path} does not exist: nothing to remove.");
                    return;
                }
                if (!ShouldProcess(path, "Unregister scheduled task")) return;
                TaskScheduler.Unregister(taskFolder, TaskName);
            }
            catch (Exception ex) when (ex is System.Reflection.TargetInvocationException || ex is System.Runtime.InteropServices.COMException || ex is UnauthorizedAccessException)
            {
                Fail("TaskRemovalFailed", ErrorCategory.PermissionDenied,
                    $"Removing {path} failed: {(ex.InnerException ?? ex).Message} Run as administrator.", path);
            }
        }
    }
}
