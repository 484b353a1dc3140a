<#
.SYNOPSIS
    One measurement inside a fresh pwsh, for build/Bench.ps1: imports the built module, runs
    Invoke-XFlowDelivery (once, or warm-up plus -Repeat timed runs) and prints one line of JSON
    with the run times and the process's peak resident memory.

.DESCRIPTION
    The API token comes from the environment variable XFLOW_API_TOKEN (never an argument).
    Delivered objects are discarded as they stream (Out-Null), as a scheduled task would; the
    caller checks the folders and the server instead of counting pipeline output.
    -ImportOnly: import the module and report peak memory only (the memory baseline).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$ModulePath,
    [string]$BaseUrl,
    [string]$CaCertificatePath,
    [string]$SdLoenPath,
    [string]$PrismePath,
    [string]$StatePath,
    # More than 1: one untimed warm-up run, then this many timed runs in this session.
    [ValidateRange(1, 1000)][int]$Repeat = 1,
    [switch]$ImportOnly
)
$ErrorActionPreference = 'Stop'

function Get-PeakResidentKiB {
    # Linux: VmHWM, the kernel's peak resident set of this process. Elsewhere (Windows, not run
    # here) the documented PeakWorkingSet64, the same idea.
    if (Test-Path -LiteralPath '/proc/self/status') {
        $line = Get-Content -LiteralPath '/proc/self/status' | Where-Object { $_ -like 'VmHWM:*' }
        return [long]($line -replace '[^0-9]', '')
    }
    [Diagnostics.Process]::GetCurrentProcess().PeakWorkingSet64 / 1KB
}

$watch = [Diagnostics.Stopwatch]::StartNew()
Import-Module $ModulePath
$importMs = $watch.Elapsed.TotalMilliseconds
if ($ImportOnly) {
    [pscustomobject]@{ importMs = $importMs; peakKiB = Get-PeakResidentKiB } | ConvertTo-Json -Compress
    return
}

$params = @{
    BaseUrl           = $BaseUrl
    ApiToken          = ConvertTo-SecureString $env:XFLOW_API_TOKEN -AsPlainText -Force
    SdLoenPath        = $SdLoenPath
    PrismePath        = $PrismePath
    StatePath         = $StatePath
    CaCertificatePath = $CaCertificatePath
    AckMode           = 'Ack'
    TimeoutSec        = 100
}
if ($Repeat -gt 1) {
    Invoke-XFlowDelivery @params | Out-Null
}
$runs = foreach ($i in 1..$Repeat) {
    $watch.Restart()
    Invoke-XFlowDelivery @params | Out-Null
    $watch.Elapsed.TotalMilliseconds
}
[pscustomobject]@{ importMs = $importMs; runMs = @($runs); peakKiB = Get-PeakResidentKiB } | ConvertTo-Json -Compress
