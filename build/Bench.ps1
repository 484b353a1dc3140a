#Requires -Version 7.0
<#
.SYNOPSIS
    The benchmarks behind `build.ps1 -Bench [-Quick]`: Invoke-XFlowDelivery against the reference
    script (bench/Reference-Delivery.ps1) and the disk's durable-publish limit, measured side by
    side in one run on one machine. Writes out/bench/results.json and prints a table.

.DESCRIPTION
    build.ps1 has built the module (release) and the simulator; this script builds the Rust
    micro-benchmark (rust/xflow-bench) and then measures, against target/release/xflow-sim over
    loopback HTTPS:
      1. Backlog drain: N deliveries of 4 KiB, SD Løn and Prisme, drained by Invoke-XFlowDelivery,
         by the reference script, and the disk's limit (xflow-bench disk-limit: create, write,
         make durable, no-replace rename, flush the renames, B files at a time, by each durable
         method the platform offers; the best setting is the limit), and the server's limit
         (xflow-bench server-limit: the backlog fetched and acknowledged page by page, nothing
         written). Rounds of all of them in a random order each; every round is reported, the
         best round of each counts (interference only ever slows down).
      2. Idle run (nothing pending): fresh `pwsh -NoProfile` processes (bare, module + one run,
         reference script), interleaved, medians; and the median of repeated runs in one warm
         session.
      3. Memory: peak resident memory (VmHWM) of a fresh pwsh draining a small and a large
         backlog, and of one that only imported the module.
      4. Large: one delivery (the simulator's `oversize` fault), and one page of 100 deliveries of
         4 MiB: peak memory over the import-only pwsh, throughput.
      5. Journal: the idle run, Get-XFlowDeliveryStatus and Get-XFlowDeliveryHistory -Since a day
         ago on a state folder with a year of history (xflow-bench year-journal) against an
         empty one, the history also against a state folder holding only that year's last day
         (the same deliveries come out), and the state folder's size.
    Every drain is checked: every delivery is a file in its folder, no temp file is left, the
    server has every one acknowledged. Targets are reported, never asserted (CI runs -Quick).
    Every child gets the API token through its environment, never its command line.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$Root,
    [Parameter(Mandatory)][string]$ModulePath,
    [switch]$Quick
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$PSNativeCommandUseErrorActionPreference = $false

Import-Module (Join-Path $Root 'tests/TestHelpers.psm1') -Force

$Settings = if ($Quick) {
    @{ DrainCount = 300; DiskCount = 300; DrainRounds = 1; FileSize = 4096; IdleRepeats = 3; WarmRepeats = 3
       MemorySmall = 1000; MemoryLarge = 3000; MemoryFileSize = 2048; LargeBytes = 16MB; LargePageCount = 10; LargePageBytes = 1MB
       YearRuns = 17500; YearDeliveries = 15000; JournalRepeats = 3 }
} else {
    # The disk limit publishes DiskCount files per setting: enough for a steady rate; seven runs
    # of the full backlog per round would triple the bench's time.
    @{ DrainCount = 5000; DiskCount = 2000; DrainRounds = 3; FileSize = 4096; IdleRepeats = 15; WarmRepeats = 10
       MemorySmall = 1000; MemoryLarge = 50000; MemoryFileSize = 2048; LargeBytes = 256MB; LargePageCount = 100; LargePageBytes = 4MB
       YearRuns = 175000; YearDeliveries = 150000; JournalRepeats = 10 }
}
# The disk's durable-publish limit is the best of these (xflow-bench disk-limit): the naive
# one file at a time, pages of 100 each fsynced on 1 to 8 threads, the engine's own (a page of
# 100 on publish::STAGING_WORKERS = 4 threads under one publish::BatchFlush: one syncfs on
# ext4, XFS, Btrfs; else each file fsynced), and every other durable method Linux offers for a
# batch: writeback started for all then fdatasync each (sfr), one syncfs, O_DSYNC writes.
# io_uring has no crate in the offline mirror. Windows (not run here) has only fsync
# (FlushFileBuffers).
$DiskSettings = @(
    @{ Method = 'fsync'; Batch = 1; Workers = 1 }
    @{ Method = 'engine'; Batch = 100; Workers = 4 }
    @{ Method = 'fsync'; Batch = 100; Workers = 1 }
    @{ Method = 'fsync'; Batch = 100; Workers = 4 }
    @{ Method = 'fsync'; Batch = 100; Workers = 8 }
) + ($IsLinux ? @(
    @{ Method = 'sfr'; Batch = 100; Workers = 1 }
    @{ Method = 'syncfs'; Batch = 100; Workers = 1 }
    @{ Method = 'odsync'; Batch = 100; Workers = 4 }
) : @()) | ForEach-Object { [pscustomobject]($_ + @{ Name = "$($_.Method).batch$($_.Batch).workers$($_.Workers)" }) }
$ChildTimeoutSec = 600

$ModuleManifest = Join-Path $ModulePath 'XFlowDelivery.psd1'
$RunScript = Join-Path $Root 'bench/Invoke-BenchRun.ps1'
$ReferenceScript = Join-Path $Root 'bench/Reference-Delivery.ps1'
$JournalScript = Join-Path $Root 'bench/Measure-Journal.ps1'
$ResultsDir = Join-Path $Root 'out/bench'
$TargetDir = Get-XFlowTargetDir
$BenchExe = Join-Path $TargetDir ('release/xflow-bench' + ($IsWindows ? '.exe' : ''))

function Write-Step([string]$Message) {
    Write-Host "==> $Message" -ForegroundColor Cyan
}

function Invoke-BenchProcess {
    <#
    Runs a process to the end with stdin closed; returns its exit code, stdout, stderr and wall
    time (start to exit, milliseconds). Secrets go in -Environment, never in -ArgumentList.
    #>
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [hashtable]$Environment = @{},
        [string]$StandardInput
    )
    $psi = [Diagnostics.ProcessStartInfo]::new($FilePath)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add($a) }
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $watch = [Diagnostics.Stopwatch]::StartNew()
    $p = [Diagnostics.Process]::Start($psi)
    try {
        if ($StandardInput) { $p.StandardInput.Write($StandardInput) }
        $p.StandardInput.Close()
        $out = $p.StandardOutput.ReadToEndAsync()
        $err = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit($ChildTimeoutSec * 1000)) {
            $p.Kill($true)
            throw "'$FilePath $($ArgumentList -join ' ')' did not finish within $ChildTimeoutSec s"
        }
        $p.WaitForExit()
        $watch.Stop()
        [pscustomobject]@{
            ExitCode     = $p.ExitCode
            Stdout       = $out.Result
            Stderr       = $err.Result
            Milliseconds = $watch.Elapsed.TotalMilliseconds
        }
    }
    finally { $p.Dispose() }
}

function Invoke-Pwsh {
    # A fresh `pwsh -NoProfile ...` like this one (under `dotnet pwsh`: dotnet pwsh.dll), or the
    # one -Pwsh names (Build-ShippedPwsh).
    param([string[]]$ArgumentList, [hashtable]$Environment = @{}, $Pwsh = (Get-XFlowPwshCommand))
    Invoke-BenchProcess -FilePath $Pwsh.FilePath -ArgumentList (@($Pwsh.Prefix) + '-NoProfile' + $ArgumentList) -Environment $Environment
}

function Get-JsonResult {
    # The last stdout line of a child that must have succeeded, as an object.
    param([Parameter(Mandatory)]$Result, [Parameter(Mandatory)][string]$What)
    $last = @($Result.Stdout -split "`r?`n" | Where-Object { $_.Trim() }) | Select-Object -Last 1
    if ($Result.ExitCode -ne 0 -or -not $last) {
        throw "$What failed (exit code $($Result.ExitCode)):`n$($Result.Stdout)`n$($Result.Stderr)"
    }
    $last | ConvertFrom-Json
}

function Get-Median([double[]]$Values) {
    $sorted = @($Values | Sort-Object)
    $mid = [int][Math]::Floor($sorted.Count / 2)
    if ($sorted.Count % 2) { return $sorted[$mid] }
    ($sorted[$mid - 1] + $sorted[$mid]) / 2
}

function New-RunFolders {
    # Fresh import folders (with "Løn" and a space, as on a real server) and state folder, under
    # $Root (the bench's work folder on disk unless told).
    param([string]$Name, [string]$Root = $script:Work)
    $root = Join-Path $Root $Name
    $f = [pscustomobject]@{
        SdLoen = Join-Path $root 'SD Løn'
        Prisme = Join-Path $root 'Prisme'
        State  = Join-Path $root 'state'
    }
    New-Item -ItemType Directory -Path $f.SdLoen, $f.Prisme, $f.State -Force | Out-Null
    $f
}

function Reset-Backlog {
    # An empty simulator, then `Count` generated deliveries of about `Size` bytes (none: idle).
    param([int]$Count, [int]$Size = $Settings.FileSize)
    Reset-XFlowSim -Sim $script:Sim
    if ($Count -gt 0) {
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{
            count = $Count; size = $Size; systems = @('SDLoen', 'Prisme'); kind = 'sample'
        } | Out-Null
    }
}

function Assert-Drained {
    # Every delivery is a file in its folder, no temp file is left, and the server has every
    # one acknowledged: a bench that lost or duplicated files would measure nothing.
    param($Folders, [int]$Expected, [string]$What)
    $files = @(Get-ChildItem -LiteralPath $Folders.SdLoen, $Folders.Prisme -File -Force)
    $temp = @($files | Where-Object Name -Like '.xflow-*.partial')
    $state = Invoke-XFlowSimControl -Sim $script:Sim -Path 'state?summary=true'
    if ($files.Count -ne $Expected -or $temp.Count -ne 0 -or $state.counts.acked -ne $Expected -or $state.counts.pending -ne 0) {
        throw "$What did not drain the backlog: $($files.Count) files ($($temp.Count) temp) for $Expected deliveries; server: $($state.counts.acked) acknowledged, $($state.counts.pending) pending."
    }
}

function Invoke-OurRun {
    # One fresh pwsh running Invoke-XFlowDelivery (bench/Invoke-BenchRun.ps1): run times, peak memory.
    param($Folders, [int]$Repeat = 1)
    $result = Invoke-Pwsh -Environment $script:ChildEnv -ArgumentList @(
        '-NonInteractive', '-File', $RunScript, '-ModulePath', $ModuleManifest,
        '-BaseUrl', $script:Sim.BaseUrl, '-CaCertificatePath', $script:Sim.CaPath,
        '-SdLoenPath', $Folders.SdLoen, '-PrismePath', $Folders.Prisme, '-StatePath', $Folders.State,
        '-Repeat', "$Repeat")
    Get-JsonResult -Result $result -What 'Invoke-XFlowDelivery'
}

function Invoke-ReferenceRun {
    param($Folders)
    Invoke-Pwsh -Environment $script:ChildEnv -ArgumentList @(
        '-NonInteractive', '-File', $ReferenceScript, '-BaseUrl', $script:Sim.BaseUrl,
        '-SdLoenPath', $Folders.SdLoen, '-PrismePath', $Folders.Prisme)
}

function Measure-Drain {
    <#
    Rounds of: every disk-limit setting (one xflow-bench process each), our drain and the
    reference drain, in a fresh random order per round, so no step always follows the same
    other (a file-heavy step slows the file creation of the next). Nothing is deleted until the
    bench ends. Every round is reported; the best round of each counts, since interference from
    other work only ever slows a round down. Where a memory file system has room, each round
    also runs our drain with the import folders and the journal in memory: nothing it does
    waits for a disk, so its rate is what the cores allow the drain on this machine.
    #>
    $n = $Settings.DrainCount
    $ours = [Collections.Generic.List[double]]::new()
    $inMemory = [Collections.Generic.List[double]]::new()
    $reference = [Collections.Generic.List[double]]::new()
    $server = [Collections.Generic.List[double]]::new()
    $disk = [Collections.Generic.List[object]]::new()
    $orders = [Collections.Generic.List[string]]::new()
    foreach ($round in 1..$Settings.DrainRounds) {
        $steps = @($DiskSettings | ForEach-Object { [pscustomobject]@{ Kind = 'disk'; Setting = $_ } }) +
            [pscustomobject]@{ Kind = 'ours'; Setting = $null } + [pscustomobject]@{ Kind = 'reference'; Setting = $null } +
            [pscustomobject]@{ Kind = 'server'; Setting = $null }
        if ($script:MemoryWork) { $steps += [pscustomobject]@{ Kind = 'inMemory'; Setting = $null } }
        $steps = @($steps | Get-Random -Count $steps.Count)
        $orders.Add((($steps | ForEach-Object { if ($_.Setting) { $_.Setting.Name } else { $_.Kind } }) -join ' '))
        foreach ($step in $steps) {
            switch ($step.Kind) {
                'disk' {
                    $s = $step.Setting
                    Write-Step "drain round $round/$($Settings.DrainRounds): disk limit $($s.Name), $($Settings.DiskCount) files"
                    $diskDir = Join-Path $script:Work "disk-$round-$($s.Name)"
                    New-Item -ItemType Directory -Path $diskDir -Force | Out-Null
                    $r = Invoke-BenchProcess -FilePath $BenchExe -ArgumentList @('disk-limit', '--dir', $diskDir,
                        '--count', "$($Settings.DiskCount)", '--size', "$($Settings.FileSize)", '--methods', $s.Method,
                        '--batches', "$($s.Batch)", '--workers', "$($s.Workers)")
                    $one = (Get-JsonResult -Result $r -What 'xflow-bench disk-limit').results[0]
                    $disk.Add([pscustomobject]@{ Round = $round; Name = $s.Name; FilesPerSec = $one.filesPerSec })
                }
                { $_ -in 'ours', 'inMemory' } {
                    # The same drain; inMemory puts its folders and journal on the memory file system.
                    $memory = $step.Kind -eq 'inMemory'
                    $where = if ($memory) { ", folders and journal in memory ($script:MemoryWork)" } else { '' }
                    Write-Step "drain round ${round}: Invoke-XFlowDelivery, $n deliveries$where"
                    Reset-Backlog -Count $n
                    $f = New-RunFolders "ours-$round" -Root ($memory ? $script:MemoryWork : $script:Work)
                    $run = Invoke-OurRun -Folders $f
                    Assert-Drained -Folders $f -Expected $n -What "Invoke-XFlowDelivery$where"
                    ($memory ? $inMemory : $ours).Add($run.runMs[0])
                }
                'reference' {
                    Write-Step "drain round ${round}: reference script, $n deliveries"
                    Reset-Backlog -Count $n
                    $f = New-RunFolders "reference-$round"
                    $ref = Get-JsonResult -Result (Invoke-ReferenceRun -Folders $f) -What 'the reference script'
                    Assert-Drained -Folders $f -Expected $n -What 'the reference script'
                    $reference.Add($ref.milliseconds)
                }
                'server' {
                    Write-Step "drain round ${round}: server limit (xflow-bench server-limit), $n deliveries fetched and acknowledged, nothing written"
                    Reset-Backlog -Count $n
                    $f = New-RunFolders "server-$round"
                    # The run configuration (token included) goes on stdin, never the command line.
                    $config = @{ baseUrl = $script:Sim.BaseUrl; apiToken = $script:Sim.Token; caCertificatePath = $script:Sim.CaPath
                        sdLoenPath = $f.SdLoen; prismePath = $f.Prisme; statePath = $f.State } | ConvertTo-Json -Compress
                    $r = Get-JsonResult -What 'xflow-bench server-limit' -Result (
                        Invoke-BenchProcess -FilePath $BenchExe -ArgumentList @('server-limit') -StandardInput $config)
                    $state = Invoke-XFlowSimControl -Sim $script:Sim -Path 'state?summary=true'
                    if ($r.deliveries -ne $n -or $state.counts.acked -ne $n) {
                        throw "xflow-bench server-limit acknowledged $($r.deliveries) of $n deliveries (server: $($state.counts.acked) acknowledged)"
                    }
                    $server.Add($r.filesPerSec)
                }
            }
        }
    }
    $settings = foreach ($s in $DiskSettings) {
        $rounds = @($disk | Where-Object Name -EQ $s.Name | Sort-Object Round | ForEach-Object FilesPerSec)
        [pscustomobject]@{ Name = $s.Name; FilesPerSec = ($rounds | Measure-Object -Maximum).Maximum; Rounds = $rounds }
    }
    [pscustomobject]@{
        OursPerSec        = $n / (($ours | Measure-Object -Minimum).Minimum / 1000)
        InMemoryPerSec    = $inMemory.Count ? $n / (($inMemory | Measure-Object -Minimum).Minimum / 1000) : $null
        InMemoryRoundsMs  = @($inMemory)
        ReferencePerSec   = $n / (($reference | Measure-Object -Minimum).Minimum / 1000)
        ServerPerSec      = ($server | Measure-Object -Maximum).Maximum
        ServerRounds      = @($server)
        DiskSettings      = @($settings)
        DiskBest          = $settings | Sort-Object FilesPerSec -Descending | Select-Object -First 1
        OursRoundsMs      = @($ours)
        ReferenceRoundsMs = @($reference)
        Orders            = @($orders)
    }
}

function Build-Floor {
    # bench/Floor: the smallest binary module; returns the -Command that imports and calls it the
    # way the task's command line does ours, without finding it first.
    $out = Join-Path $script:Work 'floor'
    & dotnet build (Join-Path $Root 'bench/Floor/XFlowFloor.csproj') -c Release -nologo -v:quiet -o $out | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "dotnet build bench/Floor/XFlowFloor.csproj failed with exit code $LASTEXITCODE" }
    "try { Import-Module -Name '$(Join-Path $out 'XFlowFloor.dll')' -ErrorAction Stop } catch { exit 1 }; exit (Invoke-XFlowFloor)"
}

function Get-AssemblyCode([string]$Path) {
    # 'ReadyToRun' for an assembly with ahead-of-time code (a managed native header), 'IL' for
    # one without, 'native' for a file that is no .NET assembly.
    $stream = [IO.File]::OpenRead($Path)
    try {
        $pe = [Reflection.PortableExecutable.PEReader]::new($stream)
        if (-not $pe.HasMetadata) { 'native' }
        elseif ($pe.PEHeaders.CorHeader.ManagedNativeHeaderDirectory.Size -gt 0) { 'ReadyToRun' }
        else { 'IL' }
    }
    catch [BadImageFormatException] { 'native' }
    finally { $stream.Dispose() }
}

function Build-ShippedPwsh {
    <#
    PowerShell as its release packages ship it (MSI, zip, deb, rpm): PowerShell's Release builds
    compile every assembly ahead of time (PublishReadyToRun) for each platform package; only the
    framework-dependent packages, such as the .NET tool this machine runs, ship IL alone, which
    a fresh process then compiles method by method. The same assemblies are compiled here with
    crossgen2 of the runtime they run on, into a copy of $PSHOME. Returns how to start it, or the
    reason it was not made.
    #>
    $sma = [Management.Automation.PSObject].Assembly.Location
    if ((Get-AssemblyCode $sma) -eq 'ReadyToRun') { return [pscustomobject]@{ Pwsh = $null; Reason = "this pwsh is already compiled ahead of time ($sma): bare pwsh is as shipped" } }
    if ($PSVersionTable.PSEdition -ne 'Core') { return [pscustomobject]@{ Pwsh = $null; Reason = 'not pwsh' } }
    $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
    $arch = [Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString().ToLowerInvariant()
    $rid = "$os-$arch"
    $targetOs = @{ win = 'windows'; osx = 'osx'; linux = 'linux' }[$os]   # crossgen2's names
    $version = [Environment]::Version.ToString(3)
    $project = Join-Path $Root 'bench/Shipped/Crossgen2.proj'
    $restore = & dotnet restore $project -nologo -v:quiet "-p:Crossgen2Version=$version" "-p:Crossgen2Rid=$rid" 2>&1
    if ($LASTEXITCODE -ne 0) { return [pscustomobject]@{ Pwsh = $null; Reason = "crossgen2 $version for $rid could not be restored: $($restore -join ' ')" } }
    $packages = (& dotnet msbuild $project -nologo -getProperty:NuGetPackageRoot "-p:Crossgen2Version=$version" "-p:Crossgen2Rid=$rid").Trim()
    $crossgen = Join-Path $packages "microsoft.netcore.app.crossgen2.$rid/$version/tools/crossgen2$($IsWindows ? '.exe' : '')"
    if (-not (Test-Path -LiteralPath $crossgen)) { throw "crossgen2 was restored but is not at $crossgen" }
    $shipped = Join-Path $script:Work 'pwsh-as-shipped'
    Copy-Item -LiteralPath $PSHOME -Destination $shipped -Recurse
    $framework = [Runtime.InteropServices.RuntimeEnvironment]::GetRuntimeDirectory()
    $assemblies = @(Get-ChildItem -LiteralPath $PSHOME -Filter *.dll -File | Where-Object { (Get-AssemblyCode $_.FullName) -eq 'IL' })
    $failed = $assemblies | ForEach-Object -ThrottleLimit ([Environment]::ProcessorCount) -Parallel {
        $output = & $using:crossgen $_.FullName -o (Join-Path $using:shipped $_.Name) -r "$using:PSHOME/*.dll" -r "$using:framework/*.dll" `
            --targetos $using:targetOs --targetarch $using:arch -O 2>&1
        if ($LASTEXITCODE -ne 0) { "$($_.Name): $($output -join ' ')" }
    }
    if ($failed) { throw "crossgen2 failed for: $($failed -join '; ')" }
    # Started as this one is: `dotnet <copy>/pwsh.dll`, or the copy's own executable.
    $current = Get-XFlowPwshCommand
    $pwsh = if ($current.Prefix) { [pscustomobject]@{ FilePath = $current.FilePath; Prefix = @((Join-Path $shipped 'pwsh.dll')) } }
            else { [pscustomobject]@{ FilePath = (Join-Path $shipped (Split-Path -Leaf $current.FilePath)); Prefix = @() } }
    [pscustomobject]@{ Pwsh = $pwsh; Reason = "$($assemblies.Count) assemblies of $PSHOME compiled by crossgen2 $version ($rid)" }
}

function Measure-Idle {
    Reset-Backlog -Count 0
    $f = New-RunFolders 'idle'
    # What an administrator's scheduled task runs: its command line as Register-XFlowDeliveryTask
    # registers it (the newest module found by name through PSModulePath, imported, and
    # Invoke-XFlowDelivery -AsScheduledTask), with a configuration file written here once, token
    # protected as New-XFlowDeliveryConfig does; the entry script of earlier registrations; the
    # floor. Bare pwsh, the floor and the command line also in pwsh as shipped (Build-ShippedPwsh).
    Import-Module $ModuleManifest
    $config = Join-Path (Split-Path -Parent $f.State) 'task.json'
    New-XFlowDeliveryConfig -Path $config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force) `
        -SdLoenPath $f.SdLoen -PrismePath $f.Prisme -StatePath $f.State -CaCertificatePath $script:Sim.CaPath -Force -WarningAction SilentlyContinue | Out-Null
    $entryScript = Join-Path (Split-Path -Parent $ModuleManifest) 'XFlowDelivery.Task.ps1'
    $taskCommand = [XFlowDelivery.XFlowDeliveryTaskDefinition]::EntryCommand($config, (Join-Path (Split-Path -Parent $ModuleManifest) 'XFlowDelivery.dll'))
    $modulePath = @{ PSModulePath = Split-Path -Parent (Split-Path -Parent $ModuleManifest) }
    $floorCommand = Build-Floor
    Write-Step 'idle: pwsh as shipped (its assemblies compiled ahead of time)'
    $shipped = Build-ShippedPwsh
    Write-Step "idle: $($shipped.Reason)"
    $starts = [ordered]@{
        Bare          = @{ What = 'bare pwsh'; Args = @('-c', 'exit') }
        Floor         = @{ What = 'the floor module'; Args = @('-NonInteractive', '-Command', $floorCommand) }
        Script        = @{ What = 'the task entry script'; Args = @('-NonInteractive', '-File', $entryScript, '-ConfigPath', $config) }
        Ours          = @{ What = 'the task''s command line'; Args = @('-NonInteractive', '-Command', $taskCommand); Env = $modulePath }
    }
    if ($shipped.Pwsh) {
        foreach ($k in 'Bare', 'Floor', 'Ours') {
            $starts["Shipped$k"] = @{ What = "$($starts[$k].What) (pwsh as shipped)"; Args = $starts[$k].Args; Env = $starts[$k]['Env']; Pwsh = $shipped.Pwsh }
        }
    }
    $times = @{}
    foreach ($k in @($starts.Keys) + 'Reference') { $times[$k] = [Collections.Generic.List[double]]::new() }
    # One untimed start of each first (disk cache), then interleaved in a random order so drift
    # hits all alike.
    foreach ($i in 0..$Settings.IdleRepeats) {
        foreach ($k in @($starts.Keys) | Get-Random -Count $starts.Count) {
            $s = $starts[$k]
            $run = @{ ArgumentList = $s.Args }
            if ($s['Env']) { $run.Environment = $s['Env'] }
            if ($s['Pwsh']) { $run.Pwsh = $s['Pwsh'] }
            $r = Invoke-Pwsh @run
            if ($r.ExitCode -ne 0) { throw "idle run of $($s.What) failed:`n$($r.Stdout)`n$($r.Stderr)" }
            if ($i -gt 0) { $times[$k].Add($r.Milliseconds) }
        }
        $r = Invoke-ReferenceRun -Folders $f
        if ($r.ExitCode -ne 0) { throw "idle run of the reference script failed:`n$($r.Stdout)`n$($r.Stderr)" }
        if ($i -gt 0) { $times.Reference.Add($r.Milliseconds) }
    }
    Write-Step "idle: $($Settings.WarmRepeats) runs in one warm session"
    $warm = Invoke-OurRun -Folders $f -Repeat $Settings.WarmRepeats
    if (@(Get-ChildItem -LiteralPath $f.SdLoen, $f.Prisme -Force).Count -ne 0) { throw 'an idle run wrote a file' }
    $medians = @{}
    foreach ($k in $times.Keys) { $medians[$k] = $times[$k].Count ? (Get-Median $times[$k]) : $null }
    # One start's cost over another's: the median of their differences round by round, which the
    # machine's drift between rounds hits far less than the difference of separate medians.
    $over = {
        param($a, $b)
        if (-not $times[$a].Count) { return $null }
        Get-Median @(for ($i = 0; $i -lt $times[$a].Count; $i++) { $times[$a][$i] - $times[$b][$i] })
    }
    [pscustomobject]@{
        BareMs        = $medians.Bare
        FloorMs       = $medians.Floor
        ScriptMs      = $medians.Script
        OursMs        = $medians.Ours
        ShippedBareMs  = $medians.ShippedBare
        ShippedFloorMs = $medians.ShippedFloor
        ShippedOursMs  = $medians.ShippedOurs
        ShippedReason  = $shipped.Reason
        ReferenceMs   = $medians.Reference
        WarmMs        = Get-Median $warm.runMs
        OursOverBare         = & $over 'Ours' 'Bare'
        FloorOverBare        = & $over 'Floor' 'Bare'
        OursOverFloor        = & $over 'Ours' 'Floor'
        ScriptOverBare       = & $over 'Script' 'Bare'
        ShippedOursOverBare  = & $over 'ShippedOurs' 'ShippedBare'
        ShippedFloorOverBare = & $over 'ShippedFloor' 'ShippedBare'
        ShippedOursOverFloor = & $over 'ShippedOurs' 'ShippedFloor'
    }
}

function Measure-Memory {
    $import = Get-JsonResult -Result (Invoke-Pwsh -ArgumentList @('-NonInteractive', '-File', $RunScript,
        '-ModulePath', $ModuleManifest, '-ImportOnly')) -What 'importing the module'
    $peaks = foreach ($n in $Settings.MemorySmall, $Settings.MemoryLarge) {
        Write-Step "memory: Invoke-XFlowDelivery draining $n pending deliveries"
        Reset-Backlog -Count $n -Size $Settings.MemoryFileSize
        $f = New-RunFolders "memory-$n"
        $run = Invoke-OurRun -Folders $f
        Assert-Drained -Folders $f -Expected $n -What "the $n-delivery drain"
        [pscustomobject]@{ Count = $n; PeakKiB = $run.peakKiB; Ms = $run.runMs[0] }
    }
    [pscustomobject]@{ ImportPeakKiB = $import.peakKiB; ImportMs = $import.importMs; Runs = @($peaks) }
}

function Measure-LargeFile {
    $bytes = $Settings.LargeBytes
    Reset-Backlog -Count 0
    # `oversize` puts one random delivery of exactly this size at the head of the next GET.
    Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{
        kind = 'oversize'; on = 'get'; nth = 1; params = @{ size = $bytes; system = 'SDLoen' }
    } | Out-Null
    $f = New-RunFolders 'large'
    $run = Invoke-OurRun -Folders $f
    Assert-Drained -Folders $f -Expected 1 -What 'the large delivery'
    $file = Get-ChildItem -LiteralPath $f.SdLoen -File
    if ($file.Length -ne $bytes) { throw "the large delivery landed with $($file.Length) bytes, not $bytes" }
    [pscustomobject]@{ Bytes = $bytes; PeakKiB = $run.peakKiB; Ms = $run.runMs[0] }
}

function Measure-LargePage {
    # One page of LargePageCount deliveries of LargePageBytes each (the engine asks for 100).
    $count = $Settings.LargePageCount
    Reset-Backlog -Count $count -Size $Settings.LargePageBytes
    $f = New-RunFolders 'large-page'
    $run = Invoke-OurRun -Folders $f
    Assert-Drained -Folders $f -Expected $count -What 'the page of large deliveries'
    [pscustomobject]@{ Count = $count; Bytes = $Settings.LargePageBytes; PeakKiB = $run.peakKiB; Ms = $run.runMs[0] }
}

function Measure-Journal {
    <#
    A journal with a year of history (xflow-bench year-journal: a run every 3 minutes, the
    deliveries and a few quarantined ones) against an empty one: the idle run, status and the
    last day's history, timed in one warm pwsh (bench/Measure-Journal.ps1), medians. The history
    also against a journal of only the year's last day, which returns the same deliveries.
    #>
    Reset-Backlog -Count 0
    $empty = New-RunFolders 'journal-empty'
    $year = New-RunFolders 'journal-year'
    $lastDay = New-RunFolders 'journal-last-day'
    $generate = @('year-journal', '--sd-loen', $year.SdLoen, '--prisme', $year.Prisme, '--runs', "$($Settings.YearRuns)",
        '--deliveries', "$($Settings.YearDeliveries)", '--quarantined', '3', '--days', '365')
    $made = Get-JsonResult -What 'xflow-bench year-journal' -Result (Invoke-BenchProcess -FilePath $BenchExe -ArgumentList ($generate + @('--state', $year.State)))
    # The same year, only its last day written: the history's fair baseline (same output, no year behind it).
    $null = Get-JsonResult -What 'xflow-bench year-journal --only-last-days 1' -Result (Invoke-BenchProcess -FilePath $BenchExe -ArgumentList ($generate + @('--state', $lastDay.State, '--only-last-days', '1')))
    $times = Get-JsonResult -What 'the journal measurement' -Result (Invoke-Pwsh -Environment $script:ChildEnv -ArgumentList @(
        '-NonInteractive', '-File', $JournalScript, '-ModulePath', $ModuleManifest, '-BaseUrl', $script:Sim.BaseUrl,
        '-CaCertificatePath', $script:Sim.CaPath, '-SdLoenPath', $year.SdLoen, '-PrismePath', $year.Prisme,
        '-EmptyStatePath', $empty.State, '-YearStatePath', $year.State, '-LastDayStatePath', $lastDay.State,
        '-Repeat', "$($Settings.JournalRepeats)"))
    $after = (Get-ChildItem -LiteralPath $year.State -Recurse -File -Force | Measure-Object Length -Sum).Sum
    [pscustomobject]@{
        Runs = $made.runs; Deliveries = $made.deliveries; StateBytes = $made.stateBytes; StateBytesAfter = $after
        Medians = [ordered]@{
            emptyIdle = Get-Median $times.'empty.idle'; yearIdle = Get-Median $times.'year.idle'
            emptyStatus = Get-Median $times.'empty.status'; yearStatus = Get-Median $times.'year.status'
            emptyHistory = Get-Median $times.'empty.history'; yearHistory = Get-Median $times.'year.history'
            lastDayIdle = Get-Median $times.'lastDay.idle'; lastDayStatus = Get-Median $times.'lastDay.status'
            lastDayHistory = Get-Median $times.'lastDay.history'
        }
        HistoryRows = [ordered]@{ year = $times.'year.historyRows'; lastDay = $times.'lastDay.historyRows' }
    }
}

function Get-LoadAverage {
    # Other work on the machine while the bench ran (Linux; elsewhere not available).
    if (Test-Path -LiteralPath '/proc/loadavg') { ((Get-Content -LiteralPath '/proc/loadavg') -split ' ')[0..2] -join ' ' } else { 'n/a' }
}

function Get-Machine {
    $cpu = if (Test-Path -LiteralPath '/proc/cpuinfo') {
        (Get-Content -LiteralPath '/proc/cpuinfo' | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^[^:]*:\s*', ''
    } else { $env:PROCESSOR_IDENTIFIER }
    $kernel = if ($IsLinux) { (& uname -r).Trim() } else { [Environment]::OSVersion.VersionString }
    [ordered]@{
        cores      = [Environment]::ProcessorCount
        kernel     = $kernel
        os         = [Runtime.InteropServices.RuntimeInformation]::OSDescription
        cpu        = $cpu
        powershell = "$($PSVersionTable.PSVersion)"
        dotnet     = [Runtime.InteropServices.RuntimeInformation]::FrameworkDescription
        loadAverageAtStart = $script:LoadAtStart
        loadAverageAtEnd   = Get-LoadAverage
    }
}

# --- run ------------------------------------------------------------------------------------

Write-Step 'cargo build --release -p xflow-bench'
Push-Location $Root
try {
    # Built with the module's crates, so cargo reuses their release artifacts.
    & cargo build --release -p xflow-delivery-ffi -p xflow-sim -p xflow-bench
    if ($LASTEXITCODE -ne 0) { throw "cargo build -p xflow-bench failed with exit code $LASTEXITCODE" }
}
finally { Pop-Location }

$script:Work = New-XFlowTestDirectory -Name 'xflow-bench'
# A memory file system for the drain without a disk (Linux /dev/shm, if it has room for a
# drain's files, journal and WAL several times over).
$script:MemoryWork = if ($IsLinux -and (Test-Path -LiteralPath '/dev/shm') -and
    [IO.DriveInfo]::new('/dev/shm').AvailableFreeSpace -gt 8 * $Settings.DrainCount * $Settings.FileSize + 64MB) {
    Join-Path '/dev/shm' ('xflow-bench-' + [Guid]::NewGuid().ToString('N').Substring(0, 10))
}
$script:LoadAtStart = Get-LoadAverage
$script:Sim = $null
$benchWatch = [Diagnostics.Stopwatch]::StartNew()
try {
    Write-Step 'start the XFlow simulator'
    $script:Sim = Start-XFlowSim
    $script:ChildEnv = @{ XFLOW_API_TOKEN = $script:Sim.Token }

    $drain = Measure-Drain
    Write-Step "idle: fresh pwsh processes, $($Settings.IdleRepeats) each (bare, the floor module, the task entry script, the task's command line; bare, floor and command line in pwsh as shipped; reference)"
    $idle = Measure-Idle
    $memory = Measure-Memory
    Write-Step "large file: one delivery of $($Settings.LargeBytes / 1MB) MiB"
    $large = Measure-LargeFile
    Write-Step "large page: $($Settings.LargePageCount) deliveries of $($Settings.LargePageBytes / 1MB) MiB"
    $largePage = Measure-LargePage
    Write-Step "journal: a year of history ($($Settings.YearRuns) runs, $($Settings.YearDeliveries) deliveries) against an empty one"
    $journal = Measure-Journal
}
finally {
    Stop-XFlowSim -Sim $script:Sim
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
    if ($script:MemoryWork) { Remove-Item -LiteralPath $script:MemoryWork -Recurse -Force -ErrorAction SilentlyContinue }
}

$small = $memory.Runs[0]
$big = $memory.Runs[1]
$MiB = { param($kib) [Math]::Round($kib / 1024, 1) }
$figures = [ordered]@{
    'drain.ours'               = @{ value = [Math]::Round($drain.OursPerSec, 1); unit = 'deliveries/s' }
    'drain.reference'          = @{ value = [Math]::Round($drain.ReferencePerSec, 1); unit = 'deliveries/s' }
    'drain.diskLimit'          = @{ value = [Math]::Round($drain.DiskBest.FilesPerSec, 1); unit = 'files/s'; setting = $drain.DiskBest.Name }
    'drain.oursRounds'         = @{ value = @($drain.OursRoundsMs | ForEach-Object { [Math]::Round($_) }); unit = 'ms' }
    'drain.referenceRounds'    = @{ value = @($drain.ReferenceRoundsMs | ForEach-Object { [Math]::Round($_) }); unit = 'ms' }
    'drain.oursInMemory'       = $drain.InMemoryPerSec ? @{ value = [Math]::Round($drain.InMemoryPerSec, 1); unit = 'deliveries/s' } : @{ value = 'not run: no memory file system with room (Linux /dev/shm)'; unit = '' }
    'drain.oursInMemoryRounds' = @{ value = @($drain.InMemoryRoundsMs | ForEach-Object { [Math]::Round($_) }); unit = 'ms' }
    'drain.serverLimit'        = @{ value = [Math]::Round($drain.ServerPerSec, 1); unit = 'deliveries/s' }
    'drain.serverLimitRounds'  = @{ value = @($drain.ServerRounds | ForEach-Object { [Math]::Round($_) }); unit = 'deliveries/s' }
    'idle.barePwsh'            = @{ value = [Math]::Round($idle.BareMs); unit = 'ms' }
    'idle.floor'               = @{ value = [Math]::Round($idle.FloorMs); unit = 'ms' }
    'idle.ours'                = @{ value = [Math]::Round($idle.OursMs); unit = 'ms' }
    'idle.oursEntryScript'     = @{ value = [Math]::Round($idle.ScriptMs); unit = 'ms' }
    'idle.shippedBarePwsh'     = $idle.ShippedBareMs ? @{ value = [Math]::Round($idle.ShippedBareMs); unit = 'ms' } : @{ value = 'not run'; unit = '' }
    'idle.shippedFloor'        = $idle.ShippedFloorMs ? @{ value = [Math]::Round($idle.ShippedFloorMs); unit = 'ms' } : @{ value = 'not run'; unit = '' }
    'idle.shippedOurs'         = $idle.ShippedOursMs ? @{ value = [Math]::Round($idle.ShippedOursMs); unit = 'ms' } : @{ value = 'not run'; unit = '' }
    'idle.reference'           = @{ value = [Math]::Round($idle.ReferenceMs); unit = 'ms' }
    'idle.oursWarm'            = @{ value = [Math]::Round($idle.WarmMs, 1); unit = 'ms' }
    'idle.importModule'        = @{ value = [Math]::Round($memory.ImportMs); unit = 'ms' }
    'memory.importOnly'        = @{ value = & $MiB $memory.ImportPeakKiB; unit = 'MiB' }
    "memory.drain$($small.Count)" = @{ value = & $MiB $small.PeakKiB; unit = 'MiB' }
    "memory.drain$($big.Count)" = @{ value = & $MiB $big.PeakKiB; unit = 'MiB' }
    'large.size'               = @{ value = $large.Bytes / 1MB; unit = 'MiB' }
    'large.peak'               = @{ value = & $MiB $large.PeakKiB; unit = 'MiB' }
    'large.peakOverImport'     = @{ value = & $MiB ($large.PeakKiB - $memory.ImportPeakKiB); unit = 'MiB' }
    'large.throughput'         = @{ value = [Math]::Round(($large.Bytes / 1MB) / ($large.Ms / 1000), 1); unit = 'MiB/s' }
    'largePage.deliveries'     = @{ value = $largePage.Count; unit = 'deliveries' }
    'largePage.deliverySize'   = @{ value = $largePage.Bytes / 1MB; unit = 'MiB' }
    'largePage.peakOverImport' = @{ value = & $MiB ($largePage.PeakKiB - $memory.ImportPeakKiB); unit = 'MiB' }
    'largePage.throughput'     = @{ value = [Math]::Round(($largePage.Count * $largePage.Bytes / 1MB) / ($largePage.Ms / 1000), 1); unit = 'MiB/s' }
    'journal.yearStateSize'    = @{ value = & $MiB ($journal.StateBytes / 1KB); unit = 'MiB'; runs = $journal.Runs; deliveries = $journal.Deliveries }
    'journal.yearStateSizeAfterRuns' = @{ value = & $MiB ($journal.StateBytesAfter / 1KB); unit = 'MiB' }
}
foreach ($k in $journal.Medians.Keys) {
    $figures["journal.$k"] = @{ value = [Math]::Round($journal.Medians[$k], 1); unit = 'ms' }
}
foreach ($k in $journal.HistoryRows.Keys) {
    $figures["journal.${k}HistoryRows"] = @{ value = $journal.HistoryRows[$k]; unit = 'deliveries' }
}
foreach ($d in $drain.DiskSettings) {
    $figures["drain.diskLimit.$($d.Name)"] = @{ value = @($d.Rounds | ForEach-Object { [Math]::Round($_) }); unit = 'files/s' }
}

$ratios = [ordered]@{
    drainOursOverReference   = [Math]::Round($drain.OursPerSec / $drain.ReferencePerSec, 2)
    drainOursOverDiskLimit   = [Math]::Round($drain.OursPerSec / $drain.DiskBest.FilesPerSec, 2)
    # The most the drain could reach of the disk limit on these cores: its rate with no disk at all.
    drainInMemoryOverDiskLimit = $drain.InMemoryPerSec ? [Math]::Round($drain.InMemoryPerSec / $drain.DiskBest.FilesPerSec, 2) : $null
    # In mode Ack a page cannot be fetched before the last one is acknowledged (the server hands
    # out unacknowledged deliveries again), so the server's time and the files' time add up: the
    # best any client can reach here publishes at the disk limit with the server at its own.
    drainSerialCeilingOverDiskLimit = [Math]::Round((1 / (1 / $drain.DiskBest.FilesPerSec + 1 / $drain.ServerPerSec)) / $drain.DiskBest.FilesPerSec, 2)
    drainOursOverSerialCeiling = [Math]::Round($drain.OursPerSec * (1 / $drain.DiskBest.FilesPerSec + 1 / $drain.ServerPerSec), 2)
    # Idle differences are medians of the differences round by round (Measure-Idle).
    idleOverheadOverBareMs   = [Math]::Round($idle.OursOverBare)
    # What any binary module's import and first cmdlet cost (bench/Floor), and ours beyond that.
    idleFloorOverBareMs      = [Math]::Round($idle.FloorOverBare)
    idleOverheadOverFloorMs  = [Math]::Round($idle.OursOverFloor)
    # The entry script that tasks registered by earlier builds run.
    idleEntryScriptOverBareMs = [Math]::Round($idle.ScriptOverBare)
    # The same in pwsh as shipped (its assemblies compiled ahead of time, as the release packages are).
    idleShippedOverheadOverBareMs = $null -ne $idle.ShippedOursOverBare ? [Math]::Round($idle.ShippedOursOverBare) : $null
    idleShippedFloorOverBareMs    = $null -ne $idle.ShippedFloorOverBare ? [Math]::Round($idle.ShippedFloorOverBare) : $null
    idleShippedOverheadOverFloorMs = $null -ne $idle.ShippedOursOverFloor ? [Math]::Round($idle.ShippedOursOverFloor) : $null
    idleReferenceOverBareMs  = [Math]::Round($idle.ReferenceMs - $idle.BareMs)
    idleOursOverReference    = [Math]::Round($idle.OursMs / $idle.ReferenceMs, 2)
    memoryGrowthMiB          = & $MiB ($big.PeakKiB - $small.PeakKiB)
    journalYearOverEmptyIdle    = [Math]::Round($journal.Medians.yearIdle / $journal.Medians.emptyIdle, 2)
    journalYearOverEmptyStatus  = [Math]::Round($journal.Medians.yearStatus / $journal.Medians.emptyStatus, 2)
    journalYearOverEmptyHistory = [Math]::Round($journal.Medians.yearHistory / $journal.Medians.emptyHistory, 2)
    journalYearOverLastDayIdle    = [Math]::Round($journal.Medians.yearIdle / $journal.Medians.lastDayIdle, 2)
    journalYearOverLastDayStatus  = [Math]::Round($journal.Medians.yearStatus / $journal.Medians.lastDayStatus, 2)
    journalYearOverLastDayHistory = [Math]::Round($journal.Medians.yearHistory / $journal.Medians.lastDayHistory, 2)
}
# Only the full run's sizes are what the targets speak of; -Quick reports them for form's sake.
$targets = @(
    [ordered]@{ name = 'drain >= 3x reference'; actual = $ratios.drainOursOverReference; limit = 3; met = $ratios.drainOursOverReference -ge 3 }
    [ordered]@{ name = 'drain >= 70% of disk limit'; actual = $ratios.drainOursOverDiskLimit; limit = 0.7; met = $ratios.drainOursOverDiskLimit -ge 0.7 }
    [ordered]@{ name = 'idle overhead <= 150 ms over bare pwsh (this pwsh)'; actual = $ratios.idleOverheadOverBareMs; limit = 150; met = $ratios.idleOverheadOverBareMs -le 150 }
    if ($null -ne $ratios.idleShippedOverheadOverBareMs) {
        [ordered]@{ name = 'idle overhead <= 150 ms over bare pwsh (pwsh as shipped)'; actual = $ratios.idleShippedOverheadOverBareMs; limit = 150; met = $ratios.idleShippedOverheadOverBareMs -le 150 }
    }
    [ordered]@{ name = 'warm idle run <= 40 ms'; actual = $figures['idle.oursWarm'].value; limit = 40; met = $figures['idle.oursWarm'].value -le 40 }
    [ordered]@{ name = "memory growth <= 30 MB ($($small.Count) -> $($big.Count) pending)"; actual = $ratios.memoryGrowthMiB; limit = 30; met = $ratios.memoryGrowthMiB -le 30 }
    foreach ($baseline in @{ Key = 'Empty'; Text = 'an empty one' }, @{ Key = 'LastDay'; Text = "the last day's only (same output)" }) {
        foreach ($k in 'Idle', 'Status', 'History') {
            $v = $ratios["journalYearOver$($baseline.Key)$k"]
            [ordered]@{ name = "$($k.ToLowerInvariant()) on a year's journal within 10% of $($baseline.Text)"; actual = $v; limit = 1.1; met = $v -le 1.1 }
        }
    }
    [ordered]@{ name = "$($large.Bytes / 1MB) MiB delivery in <= 64 MiB (peak over import-only pwsh)"; actual = $figures['large.peakOverImport'].value; limit = 64; met = $figures['large.peakOverImport'].value -le 64 }
    [ordered]@{ name = "page of $($largePage.Count) x $($largePage.Bytes / 1MB) MiB in <= 64 MiB (peak over import-only pwsh)"; actual = $figures['largePage.peakOverImport'].value; limit = 64; met = $figures['largePage.peakOverImport'].value -le 64 }
)
$results = [ordered]@{
    date       = [DateTimeOffset]::UtcNow.ToString('o')
    quick      = [bool]$Quick
    durationSec = [Math]::Round($benchWatch.Elapsed.TotalSeconds)
    machine    = Get-Machine
    parameters = [ordered]@{
        drainDeliveries = $Settings.DrainCount; diskLimitFiles = $Settings.DiskCount; drainRounds = $Settings.DrainRounds; fileBytes = $Settings.FileSize
        pageSize = 100; diskSettings = @($DiskSettings | ForEach-Object Name); idleRepeats = $Settings.IdleRepeats; warmRepeats = $Settings.WarmRepeats
        memoryBacklogs = @($Settings.MemorySmall, $Settings.MemoryLarge); memoryFileBytes = $Settings.MemoryFileSize
        largeBytes = $Settings.LargeBytes; largePageCount = $Settings.LargePageCount; largePageBytes = $Settings.LargePageBytes; yearRuns = $Settings.YearRuns; yearDeliveries = $Settings.YearDeliveries; journalRepeats = $Settings.JournalRepeats
    }
    shippedPwsh = $idle.ShippedReason
    figures    = $figures
    drainOrder = @($drain.Orders)
    ratios     = $ratios
    targets    = $targets
}
New-Item -ItemType Directory -Path $ResultsDir -Force | Out-Null
$resultsPath = Join-Path $ResultsDir 'results.json'
$results | ConvertTo-Json -Depth 10 | Set-Content -LiteralPath $resultsPath -Encoding utf8NoBOM

$figures.GetEnumerator() | ForEach-Object {
    $v = $_.Value.value
    [pscustomobject]@{ Figure = $_.Key; Value = ($v -is [array]) ? ($v -join ', ') : $v; Unit = $_.Value.unit }
} | Format-Table -AutoSize | Out-String -Width 200 | Out-Host
for ($i = 0; $i -lt $drain.Orders.Count; $i++) { Write-Host "drain round $($i + 1) order: $($drain.Orders[$i])" }
$ratios.GetEnumerator() | ForEach-Object { [pscustomobject]@{ Ratio = $_.Key; Value = $_.Value } } |
    Format-Table -AutoSize | Out-String -Width 200 | Out-Host
$targets | ForEach-Object { [pscustomobject]$_ } | Format-Table -AutoSize | Out-String -Width 200 | Out-Host
Write-Host "pwsh as shipped: $($idle.ShippedReason)"
$m = $results.machine
Write-Host "$($m.cores) cores, kernel $($m.kernel), $($m.cpu); load average $($m.loadAverageAtStart) at start, $($m.loadAverageAtEnd) at end; $($results.date); $($results.durationSec) s$($Quick ? ' (quick: small sizes, targets not meaningful)' : '')"
Write-Host "results: $resultsPath"
