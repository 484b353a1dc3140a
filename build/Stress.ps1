#Requires -Version 7.0
<#
.SYNOPSIS
    The kill -9 reliability harness: runs the real module in real pwsh processes against the
    XFlow simulator, kills them with SIGKILL at random moments, lets them run again, and checks
    that every delivery lands exactly once, byte-identical, never partially visible, and is never
    acknowledged before it is durable. Prints a summary per ack mode; exits 1 on any violation.

.DESCRIPTION
    Per ack mode (Ack, None) and trial:
      1. reset the simulator, set its mode and a small page size, generate a backlog of distinct
         random files for SD Løn and Prisme;
      2. up to -KillsPerTrial times: start tests/RunOnce.ps1 in a child pwsh (the token in its
         environment), wait until it is about to call Invoke-XFlowDelivery, sleep a random
         -MinDelayMs..-MaxDelayMs, SIGKILL it; then check what is visible right now:
           - every delivery the server counts as acknowledged has its bytes in an import folder
             (acknowledged before durable otherwise; in mode None any acknowledgement is wrong),
           - every visible file is byte-identical to some delivery (a partial file otherwise),
           - no delivery is visible twice;
      3. one more run, not killed, then: no hidden temp file left, the spool empty, each
         delivery exactly once (mode Ack: all acknowledged, nothing lost; mode None: nothing
         lost beyond the page in flight at each kill — a lost delivery is charged to the first
         kill after which the server had forgotten it without its file being visible, and no
         kill may be charged more than one page).
    The delays come from a seeded PRNG: each trial prints its seed, and
    `build/Stress.ps1 -Mode <mode> -Trials 1 -Seed <seed>` repeats its kill schedule (where a kill
    lands still depends on timing).

.EXAMPLE
    dotnet pwsh ./build.ps1 -Stress -Trials 50
.EXAMPLE
    dotnet pwsh build/Stress.ps1 -Mode None -Trials 1 -Seed 123456
#>
[CmdletBinding()]
param(
    [string]$Root = (Split-Path -Parent $PSScriptRoot),
    [string]$ModulePath = (Join-Path (Split-Path -Parent $PSScriptRoot) 'out/XFlowDelivery'),
    [ValidateRange(1, 100000)][int]$Trials = 20,
    [ValidateSet('Ack', 'None')][string[]]$Mode = @('Ack', 'None'),
    [ValidateRange(1, 50)][int]$KillsPerTrial = 3,
    [ValidateRange(1, 100000)][int]$Deliveries = 400,
    [ValidateRange(1, 16777216)][int]$DeliverySize = 4096,
    [ValidateRange(1, 1000)][int]$PageSize = 20,
    [ValidateRange(0, 600000)][int]$MinDelayMs = 50,
    [ValidateRange(0, 600000)][int]$MaxDelayMs = 1500,
    [ValidateRange(1, 1000000000)][int]$Seed = (Get-Random -Minimum 1 -Maximum 1000000000)
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
if ($MaxDelayMs -lt $MinDelayMs) { throw "-MaxDelayMs ($MaxDelayMs) is less than -MinDelayMs ($MinDelayMs)." }
Import-Module (Join-Path $Root 'tests/TestHelpers.psm1') -Force
if (-not (Test-Path -LiteralPath (Join-Path $ModulePath 'XFlowDelivery.psd1'))) {
    throw "The module is not built: '$ModulePath' has no XFlowDelivery.psd1. Run ./build.ps1 first."
}

function Wait-SimSettled {
    # A request the killed child sent just before it died may still be served: wait until the
    # simulator's request count stops moving before judging its state (bounded: ~3 s).
    param($Sim)
    $last = -1
    for ($i = 0; $i -lt 30; $i++) {
        $count = (Invoke-XFlowSimControl -Sim $Sim -Path 'state?summary=true').requestCount
        if ($count -eq $last) { return }
        $last = $count
        Start-Sleep -Milliseconds 100
    }
}

function Format-RunFailure {
    # Why a child run failed: its terminating ErrorId and message, or its output when it printed
    # no result.
    param($Run)
    if ($Run.Result) { "$($Run.Result.terminating) $($Run.Result.message)" } else { $Run.Output }
}

function Get-Snapshot {
    # What the server and the folders say right now.
    param($Sim, $Folders)
    $state = Get-XFlowSimState -Sim $Sim
    $files = @(Get-XFlowFolderFiles -Path $Folders.SdLoen, $Folders.Prisme)
    [pscustomobject]@{
        Deliveries = @($state.deliveries)
        Visible    = @($files | Where-Object { -not $_.Hidden })
        Hidden     = @($files | Where-Object Hidden)
    }
}

function Test-Visible {
    # The invariants that hold at every instant, even right after a kill. Returns violation texts.
    param($Snapshot, [hashtable]$KnownSha, [string]$AckMode, [string]$Where)
    $present = @{}
    foreach ($f in $Snapshot.Visible) { $present[$f.Sha256] = 1 + [int]$present[$f.Sha256] }
    foreach ($f in $Snapshot.Visible) {
        if (-not $KnownSha.ContainsKey($f.Sha256)) { "${Where}: partial: visible file '$($f.FullName)' matches no delivery" }
    }
    foreach ($sha in $present.Keys) {
        if ($present[$sha] -gt 1 -and $KnownSha.ContainsKey($sha)) { "${Where}: duplicate: delivery $($KnownSha[$sha]) is visible $($present[$sha]) times" }
    }
    foreach ($d in $Snapshot.Deliveries) {
        if ($d.ackCount -gt 0 -and $AckMode -eq 'None') { "${Where}: acknowledged in mode None: $($d.id)" }
        elseif ($d.ackCount -gt 0 -and -not $present.ContainsKey($d.sha256)) { "${Where}: acked before durable: $($d.id) is acknowledged but its file is not in an import folder" }
    }
}

function Invoke-Trial {
    param($Sim, [string]$AckMode, [int]$TrialSeed, [string]$Label)
    $rng = [Random]::new($TrialSeed)
    Reset-XFlowSim -Sim $Sim
    Invoke-XFlowSimControl -Sim $Sim -Method PUT -Path 'settings' -Body @{ mode = $AckMode; pageSize = $PageSize } | Out-Null
    Invoke-XFlowSimControl -Sim $Sim -Method POST -Path 'generate' -Body @{
        count = $Deliveries; size = $DeliverySize; kind = 'random'; systems = @('SDLoen', 'Prisme'); seed = $TrialSeed
    } | Out-Null
    $knownSha = @{}
    foreach ($d in (Get-XFlowSimState -Sim $Sim).deliveries) { $knownSha[$d.sha256] = $d.id }
    if ($knownSha.Count -ne $Deliveries) { throw "${Label}: the generated contents are not distinct ($($knownSha.Count) of $Deliveries); change -Seed or -DeliverySize" }

    $dir = New-XFlowTestDirectory -Name 'xflow-stress'
    $folders = [pscustomobject]@{
        SdLoen = Join-Path $dir 'SD Løn'
        Prisme = Join-Path $dir 'Prisme'
        State  = Join-Path $dir 'state'
    }
    New-Item -ItemType Directory -Path $folders.SdLoen, $folders.Prisme -Force | Out-Null
    $result = [ordered]@{ Kills = 0; Delivered = 0; Duplicates = 0; Lost = 0; LostBound = 0; Partials = 0; AckedBeforeDurable = 0; Violations = [Collections.Generic.List[string]]::new() }
    $runArgs = @{ Sim = $Sim; StatePath = $folders.State; SdLoenPath = $folders.SdLoen; PrismePath = $folders.Prisme; AckMode = $AckMode; ModulePath = $ModulePath }
    # Mode None: per kill, the deliveries the server had forgotten without their file being
    # visible. Those not published by the end are charged to the first kill that left them so.
    $atRisk = [Collections.Generic.List[object]]::new()
    try {
        for ($k = 1; $k -le $KillsPerTrial; $k++) {
            $run = Start-XFlowRunOnce @runArgs
            if (-not (Wait-XFlowRunOnceStart -Run $run)) {
                $r = Wait-XFlowRunOnce -Run $run
                throw "${Label}: the child pwsh did not reach the run (exit $($r.ExitCode)):`n$($r.Output)"
            }
            Start-Sleep -Milliseconds $rng.Next($MinDelayMs, $MaxDelayMs + 1)
            $killed = $false
            if (-not $run.Process.HasExited) {
                $run.Process.Kill()   # SIGKILL on Linux: no cleanup code runs
                $killed = $true
            }
            $r = Wait-XFlowRunOnce -Run $run
            if (-not $killed) {
                # The run finished before its kill: it must have ended cleanly.
                if ($r.ExitCode -ne 0) { $result.Violations.Add("${Label} run ${k}: ended with exit $($r.ExitCode): $(Format-RunFailure $r)") }
                continue
            }
            $result.Kills++
            Wait-SimSettled -Sim $Sim
            $snap = Get-Snapshot -Sim $Sim -Folders $folders
            foreach ($v in @(Test-Visible -Snapshot $snap -KnownSha $knownSha -AckMode $AckMode -Where "$Label kill $k")) {
                $result.Violations.Add($v)
                if ($v -match ': partial: ') { $result.Partials++ }
                elseif ($v -match ': acked before durable: ') { $result.AckedBeforeDurable++ }
                elseif ($v -match ': duplicate: ') { $result.Duplicates++ }
            }
            $visible = @{}
            foreach ($f in $snap.Visible) { $visible[$f.Sha256] = $true }
            $atRisk.Add(@($snap.Deliveries | Where-Object { $_.state -eq 'forgotten' -and -not $visible.ContainsKey($_.sha256) } | ForEach-Object id))
        }

        $final = Wait-XFlowRunOnce -Run (Start-XFlowRunOnce @runArgs)
        if ($final.ExitCode -ne 0 -or $null -eq $final.Result) {
            $result.Violations.Add("${Label} final run: exit $($final.ExitCode): $(Format-RunFailure $final)")
        }
        elseif (@($final.Result.errors).Count -gt 0) {
            $result.Violations.Add("${Label} final run: errors $(@($final.Result.errors | ForEach-Object errorId) -join ', ')")
        }
        $snap = Get-Snapshot -Sim $Sim -Folders $folders
        foreach ($v in @(Test-Visible -Snapshot $snap -KnownSha $knownSha -AckMode $AckMode -Where "$Label final")) {
            $result.Violations.Add($v)
            if ($v -match ': partial: ') { $result.Partials++ }
            elseif ($v -match ': acked before durable: ') { $result.AckedBeforeDurable++ }
            elseif ($v -match ': duplicate: ') { $result.Duplicates++ }
        }
        foreach ($h in $snap.Hidden) {
            $result.Partials++
            $result.Violations.Add("$Label final: temp file left: '$($h.FullName)'")
        }
        $spool = @(Get-ChildItem -LiteralPath (Join-Path $folders.State 'spool') -File -Force -ErrorAction SilentlyContinue)
        if ($spool.Count -gt 0) { $result.Violations.Add("$Label final: $($spool.Count) files left in the spool") }

        $visible = @{}
        foreach ($f in $snap.Visible) { $visible[$f.Sha256] = $true }
        $result.Delivered = $visible.Count
        $missing = @($snap.Deliveries | Where-Object { -not $visible.ContainsKey($_.sha256) })
        if ($AckMode -eq 'Ack') {
            $result.Lost = $missing.Count
            foreach ($d in $missing) { $result.Violations.Add("$Label final: lost: $($d.id) ($($d.state)) is not in an import folder") }
            foreach ($d in @($snap.Deliveries | Where-Object state -NE 'acked')) { $result.Violations.Add("$Label final: $($d.id) is $($d.state), not acknowledged") }
        }
        else {
            foreach ($d in @($missing | Where-Object state -NE 'forgotten')) { $result.Violations.Add("$Label final: $($d.id) is still $($d.state) on the server after the final run") }
            $lost = @($missing | Where-Object state -EQ 'forgotten' | ForEach-Object id)
            $result.Lost = $lost.Count
            $result.LostBound = $PageSize * $result.Kills
            $charged = @{}
            foreach ($id in $lost) {
                $kill = 0
                for ($i = 0; $i -lt $atRisk.Count -and $kill -eq 0; $i++) { if ($atRisk[$i] -contains $id) { $kill = $i + 1 } }
                if ($kill -eq 0) { $result.Violations.Add("$Label final: lost: $id was forgotten by the server and never published, with no kill to blame") }
                else { $charged[$kill] = 1 + [int]$charged[$kill] }
            }
            foreach ($kill in $charged.Keys) {
                if ($charged[$kill] -gt $PageSize) { $result.Violations.Add("$Label kill ${kill}: lost $($charged[$kill]) deliveries, more than one page ($PageSize)") }
            }
        }
    }
    finally {
        Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
    }
    [pscustomobject]$result
}

Write-Host "==> kill -9 harness: $Trials trial(s) per mode ($($Mode -join ', ')), up to $KillsPerTrial kills each after $MinDelayMs..$MaxDelayMs ms, $Deliveries deliveries of $DeliverySize bytes, page size $PageSize, seed $Seed" -ForegroundColor Cyan
$sim = Start-XFlowSim
$rows = [Collections.Generic.List[object]]::new()
$allViolations = [Collections.Generic.List[string]]::new()
$watch = [Diagnostics.Stopwatch]::StartNew()
try {
    foreach ($ackMode in $Mode) {
        $row = [ordered]@{ Mode = $ackMode; Trials = 0; Kills = 0; Delivered = 0; Duplicates = 0; Lost = 0; LostBound = 0; Partials = 0; AckedBeforeDurable = 0; Violations = 0 }
        for ($t = 0; $t -lt $Trials; $t++) {
            $trialSeed = [int]((($Seed - 1 + [long]$t) % 1000000000) + 1)
            $label = "$ackMode trial $($t + 1) (seed $trialSeed)"
            $r = Invoke-Trial -Sim $sim -AckMode $ackMode -TrialSeed $trialSeed -Label $label
            $row.Trials++
            foreach ($key in 'Kills', 'Delivered', 'Duplicates', 'Lost', 'LostBound', 'Partials', 'AckedBeforeDurable') { $row[$key] += $r.$key }
            $row.Violations += $r.Violations.Count
            $allViolations.AddRange($r.Violations)
            $verdict = if ($r.Violations.Count -eq 0) { 'ok' } else { "$($r.Violations.Count) VIOLATION(S)" }
            Write-Host ("{0}: {1} kills, {2} delivered, {3} lost (bound {4}), {5}" -f $label, $r.Kills, $r.Delivered, $r.Lost, $r.LostBound, $verdict)
            foreach ($v in $r.Violations) { Write-Host "    $v" -ForegroundColor Red }
        }
        $rows.Add([pscustomobject]$row)
    }
}
finally {
    Stop-XFlowSim -Sim $sim
}

Write-Host ''
Write-Host "==> kill -9 harness summary (seed $Seed, $([int]$watch.Elapsed.TotalSeconds) s)" -ForegroundColor Cyan
$rows | Format-Table -AutoSize | Out-String -Width 200 | Write-Host
Write-Host 'Lost: Ack = deliveries missing at the end (must be 0); None = deliveries the server forgot and that never landed, allowed only from the page in flight at a kill (LostBound = page size x kills).'
$total = $allViolations.Count
if ($total -gt 0) {
    Write-Host "violations: $total" -ForegroundColor Red
    exit 1
}
Write-Host 'violations: 0' -ForegroundColor Green
exit 0
