<#
.SYNOPSIS
    One measurement inside a fresh pwsh, for build/Bench.ps1: the idle run, Get-XFlowDeliveryStatus
    and Get-XFlowDeliveryHistory -Since (Get-Date).AddDays(-1) on an empty state folder and on one
    with a year of history, interleaved, after one untimed call of each; prints one line of JSON
    with every time in milliseconds.

    The history is also timed on a state folder holding only the last day of that year: the same
    deliveries come out as from the year's journal (the empty one returns none, so against it the
    history measures its output, not the journal's size). "<journal>.historyRows" says how many
    deliveries each returned.

.DESCRIPTION
    The API token comes from the environment variable XFLOW_API_TOKEN (never an argument). Both
    state folders use the same import folders and the same (idle) simulator, so the only
    difference between the two is the journal.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$ModulePath,
    [Parameter(Mandatory)][string]$BaseUrl,
    [Parameter(Mandatory)][string]$CaCertificatePath,
    [Parameter(Mandatory)][string]$SdLoenPath,
    [Parameter(Mandatory)][string]$PrismePath,
    [Parameter(Mandatory)][string]$EmptyStatePath,
    [Parameter(Mandatory)][string]$YearStatePath,
    [Parameter(Mandatory)][string]$LastDayStatePath,
    [ValidateRange(1, 1000)][int]$Repeat = 10
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
$token = ConvertTo-SecureString $env:XFLOW_API_TOKEN -AsPlainText -Force

$steps = [ordered]@{
    idle    = {
        param($state)
        # Quarantined deliveries in the year's journal are reported as errors on every run.
        Invoke-XFlowDelivery -BaseUrl $BaseUrl -ApiToken $token -SdLoenPath $SdLoenPath -PrismePath $PrismePath `
            -StatePath $state -CaCertificatePath $CaCertificatePath -AckMode Ack -ErrorAction SilentlyContinue | Out-Null
    }
    status  = { param($state) Get-XFlowDeliveryStatus -StatePath $state -SdLoenPath $SdLoenPath -PrismePath $PrismePath | Out-Null }
    history = { param($state) Get-XFlowDeliveryHistory -StatePath $state -Since (Get-Date).AddDays(-1) | Out-Null }
}
$states = @{ empty = $EmptyStatePath; year = $YearStatePath; lastDay = $LastDayStatePath }
# The last day's journal holds the year's last day only, its 3 quarantined deliveries included:
# each step's baseline with the same output (errors, status counts, history rows) and no year
# behind it.
$journals = @{ idle = 'empty', 'year', 'lastDay'; status = 'empty', 'year', 'lastDay'; history = 'empty', 'year', 'lastDay' }
$times = @{}
foreach ($step in $steps.Keys) { foreach ($journal in $journals[$step]) { $times["$journal.$step"] = [Collections.Generic.List[double]]::new() } }
$result = [ordered]@{}
foreach ($journal in $journals.history) {
    $result["$journal.historyRows"] = @(Get-XFlowDeliveryHistory -StatePath $states[$journal] -Since (Get-Date).AddDays(-1)).Count
}
$watch = [Diagnostics.Stopwatch]::new()
foreach ($i in 0..$Repeat) {
    foreach ($step in $steps.Keys) {
        foreach ($journal in $journals[$step]) {
            $watch.Restart()
            & $steps[$step] $states[$journal]
            $ms = $watch.Elapsed.TotalMilliseconds
            if ($i -gt 0) { $times["$journal.$step"].Add($ms) }
        }
    }
}
foreach ($key in $times.Keys | Sort-Object) { $result[$key] = @($times[$key]) }
$result | ConvertTo-Json -Compress
