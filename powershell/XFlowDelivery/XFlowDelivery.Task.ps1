<#
.SYNOPSIS
    Scheduled-task entry point: one XFlowDelivery run from a configuration file, one exit code.

.DESCRIPTION
    For running one scheduled run by hand:
        pwsh.exe -NoProfile -NonInteractive -File <module>\XFlowDelivery.Task.ps1 -ConfigPath <file>
    (or powershell.exe), and for tasks registered by earlier builds, whose command line runs this
    script of the newest installed version, so it stays in the module. The command line
    Register-XFlowDeliveryTask registers now does the same itself (import, then
    Invoke-XFlowDelivery -AsScheduledTask), without this script (docs/monitoring.md).
    Always ends with an explicit exit code below 256, so Task Scheduler's Last Run Result and
    event 201 carry it (docs/monitoring.md):
        0  nothing needs attention (delivered, nothing pending, or another run holds the lock)
        1  unexpected error        2  configuration          3  authentication or token
        4  network or server       5  import folder (missing, access denied, disk full)
        6  some deliveries quarantined or refused
        7  an importer has stopped: files published into an import folder are still there past
           the configured threshold (-SdLoenStallAfterMinutes / -PrismeStallAfterMinutes)
    On Windows it also writes one event per run to the Application log, source XFlowDelivery,
    event id 100 + exit code. Writing the event never changes the exit code. All of this but a
    failed import is done by Invoke-XFlowDelivery -AsScheduledTask.
    Works in Windows PowerShell 5.1 and PowerShell 7 (no 7-only syntax).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$ConfigPath
)

try {
    # The assembly beside this script, not the manifest: a task run needs none of the manifest's
    # format data. Its path by string expansion: Join-Path would load a whole module, and even a
    # .NET call such as [IO.Path]::Combine costs a fresh process about 20 ms; '/' separates paths
    # on Windows too (docs/benchmarks.md).
    Import-Module -Name "$PSScriptRoot/XFlowDelivery.dll" -ErrorAction Stop
}
catch {
    # Without the module nothing else can report the run: its line, exit code 1, and the event.
    # No .NET member here: compiling one costs every run, even when this never runs; the event
    # write is text until it runs (the same as XFlowDeliveryTaskDefinition.ImportFailureEventScript).
    $line = 'XFlowDelivery run did not start: the module could not be imported; exit code 1. First error: ' + $_
    $line
    # NOT RUN HERE (Windows only; Windows PowerShell 5.1 has no $IsWindows).
    if ($IsWindows -ne $false) {
        Invoke-Expression "try { [System.Diagnostics.EventLog]::WriteEntry('XFlowDelivery', `$line, 'Error', 101) } catch { [Console]::Error.WriteLine('XFlowDelivery: could not write the event log entry: ' + `$_.Exception.Message) }"
    }
    exit 1
}
# The cmdlet does the rest, in C#: every script statement costs a fresh process its first run.
# It prints a line per delivered file and the run's line, writes the event on Windows, and
# returns the exit code; a failure is reported in that line and code, not thrown.
exit (Invoke-XFlowDelivery -ConfigPath $ConfigPath -AsScheduledTask)
