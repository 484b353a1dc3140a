<#
.SYNOPSIS
    Scheduled-task entry point: one XFlowDelivery run from a configuration file, one exit code.

.DESCRIPTION
    Run by the task Register-XFlowDeliveryTask registers: its -Command finds the newest installed
    XFlowDelivery by name and runs this script of that version, passing the exit code on; by hand:
        pwsh.exe -NoProfile -NonInteractive -File <module>\XFlowDelivery.Task.ps1 -ConfigPath <file>
    (or powershell.exe). Always ends with an explicit exit code below 256, so Task Scheduler's
    Last Run Result and event 201 carry it (docs/monitoring.md):
        0  nothing needs attention (delivered, nothing pending, or another run holds the lock)
        1  unexpected error        2  configuration          3  authentication or token
        4  network or server       5  import folder (missing, access denied, disk full)
        6  some deliveries quarantined or refused
        7  an importer has stopped: files published into an import folder are still there past
           the configured threshold (-SdLoenStallAfterMinutes / -PrismeStallAfterMinutes)
    On Windows it also writes one event per run to the Application log, source XFlowDelivery,
    event id 100 + exit code. Writing the event never changes the exit code.
    Works in Windows PowerShell 5.1 and PowerShell 7 (no 7-only syntax).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string]$ConfigPath
)

$exitCode = 1
$summary = $null
$firstError = $null
$imported = $false
try {
    # The assembly beside this script, not the manifest: a task run needs none of the manifest's
    # format data, and Join-Path would load a whole module. Both cost a fresh process more than
    # the run itself (docs/benchmarks.md).
    Import-Module -Name ([IO.Path]::Combine($PSScriptRoot, 'XFlowDelivery.dll')) -ErrorAction Stop
    $imported = $true
    $runErrors = @()
    Invoke-XFlowDelivery -ConfigPath $ConfigPath -ErrorVariable runErrors -Confirm:$false -WhatIf:$false |
        ForEach-Object {
            if ($_ -is [XFlowDelivery.Model.XFlowRunSummary]) { $summary = $_ }
            else { [Console]::Out.WriteLine(('Delivered {0} {1} ({2} bytes)' -f $_.System, $_.Path, $_.Size)) }
        }
    if ($null -ne $summary) { $exitCode = $summary.ExitCode }
    if ($runErrors.Count -gt 0) { $firstError = $runErrors[0] }
}
catch {
    $firstError = $_
    if ($null -ne $summary) { $exitCode = $summary.ExitCode }
    elseif ($imported) { $exitCode = [XFlowDelivery.ExitCodes]::FromError($_) }
    [Console]::Error.WriteLine('XFlowDelivery: ' + $_.Exception.Message)
}

$line = if ($imported) { [XFlowDelivery.TaskReport]::Line($summary, $exitCode, $firstError) }
        else { "XFlowDelivery run did not start: the module could not be imported; exit code $exitCode. First error: $($firstError.Exception.Message)" }
# Straight to standard output: the pipeline's formatting would cost a fresh process about 25 ms.
[Console]::Out.WriteLine($line)

# NOT RUN HERE (Windows only). Works in 5.1 (no $IsWindows there) and 7, and costs a fresh
# process less than reading $PSVersionTable.
if ([Environment]::OSVersion.Platform -eq [PlatformID]::Win32NT) {
    try {
        $level = if ($exitCode -eq 0) { 'Information' } elseif ($exitCode -eq 6) { 'Warning' } else { 'Error' }
        [System.Diagnostics.EventLog]::WriteEntry('XFlowDelivery', $line, [System.Diagnostics.EventLogEntryType]$level, 100 + $exitCode)
    }
    catch {
        # The source is registered by Register-XFlowDeliveryTask (as administrator); without it the
        # run's result still reaches Task Scheduler through the exit code.
        [Console]::Error.WriteLine('XFlowDelivery: could not write the event log entry: ' + $_.Exception.Message)
    }
}
exit $exitCode
