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
$describe = 'unexpected error'
try {
    Import-Module -Name (Join-Path $PSScriptRoot 'XFlowDelivery.psd1') -ErrorAction Stop
    $runErrors = @()
    Invoke-XFlowDelivery -ConfigPath $ConfigPath -ErrorVariable runErrors -Confirm:$false -WhatIf:$false |
        ForEach-Object {
            if ($_ -is [XFlowDelivery.Model.XFlowRunSummary]) { $summary = $_ }
            else { 'Delivered {0} {1} ({2} bytes)' -f $_.System, $_.Path, $_.Size }
        }
    if ($null -ne $summary) { $exitCode = $summary.ExitCode }
    if (@($runErrors).Count -gt 0) { $firstError = @($runErrors)[0] }
}
catch {
    $firstError = $_
    if ($null -ne $summary) { $exitCode = $summary.ExitCode }
    elseif ('XFlowDelivery.ExitCodes' -as [type]) { $exitCode = [XFlowDelivery.ExitCodes]::FromError($_) }
    else { $exitCode = 1 }
    [Console]::Error.WriteLine('XFlowDelivery: ' + $_.Exception.Message)
}

if ('XFlowDelivery.ExitCodes' -as [type]) { $describe = [XFlowDelivery.ExitCodes]::Describe($exitCode) }
$line = if ($null -ne $summary) {
    'XFlowDelivery run {0}: {1}; {2} delivered, {3} failed, {4} skipped, {5} acknowledged again; exit code {6} ({7}).' -f `
        $summary.RunId, $summary.Outcome, $summary.Delivered, $summary.Failed, $summary.Skipped, $summary.Reacknowledged, $exitCode, $describe
} else {
    'XFlowDelivery run did not start; exit code {0} ({1}).' -f $exitCode, $describe
}
if ($null -ne $summary) {
    # Named on every run until the folder drains, whatever else the run found.
    foreach ($stall in @($summary.Stalls)) { $line += ' Import stalled: ' + $stall.ToString() + '.' }
}
if ($null -ne $firstError) {
    $errorText = ("$($firstError.Exception.Message)" -split "`r?`n")[0]
    if ($errorText.Length -gt 1000) { $errorText = $errorText.Substring(0, 1000) }
    $line += ' First error: ' + $errorText
}
$line

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
