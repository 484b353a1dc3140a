# Helpers shared by the Pester tests and build.ps1 -Demo: where things are, the XFlow simulator
# (start/stop/control API), temp folders, hashes, child pwsh processes.
Set-StrictMode -Version Latest

$script:RepoRoot = Split-Path -Parent $PSScriptRoot

function Get-XFlowTestRoot {
    # Where the tests' folders go: $env:XFLOW_TEST_ROOT when set (tests/Invoke-Tests.ps1 sets it to
    # a folder of its run and removes that folder at the end; child processes inherit it), else
    # the temp folder.
    if ($env:XFLOW_TEST_ROOT) { return $env:XFLOW_TEST_ROOT }
    [IO.Path]::GetTempPath()
}

# The machine-wide registry of installations (New-XFlowDeliveryConfig, Register-XFlowDeliveryTask)
# goes to a folder of this test session, never to the machine's own; child pwsh processes inherit it.
if (-not $env:XFLOWDELIVERY_INSTALLATIONS) {
    $env:XFLOWDELIVERY_INSTALLATIONS = Join-Path (Get-XFlowTestRoot) ('xflow-installations-' + [Guid]::NewGuid().ToString('N').Substring(0, 10))
}

function Get-XFlowRepoRoot { $script:RepoRoot }

function Get-XFlowTargetDir {
    if ($env:CARGO_TARGET_DIR) { return $env:CARGO_TARGET_DIR }
    Join-Path $script:RepoRoot 'target'
}

function Get-XFlowModuleManifest {
    # The built module (build.ps1 assembles it); tests never import from the source tree.
    Join-Path $script:RepoRoot 'out/XFlowDelivery/XFlowDelivery.psd1'
}

function Get-XFlowSimPath {
    $name = if ($IsWindows) { 'xflow-sim.exe' } else { 'xflow-sim' }
    Join-Path (Get-XFlowTargetDir) "release/$name"
}

function New-XFlowTestToken {
    # Recognisable, so a leak is easy to find in any output.
    'xft-secret-' + [Guid]::NewGuid().ToString('N')
}

function New-XFlowTestDirectory {
    param([string]$Name = 'xflow-test')
    $dir = Join-Path (Get-XFlowTestRoot) ($Name + '-' + [Guid]::NewGuid().ToString('N').Substring(0, 10))
    New-Item -ItemType Directory -Path $dir -Force | Select-Object -ExpandProperty FullName
}

function Get-XFlowSha256Hex {
    param([Parameter(Mandatory)][byte[]]$Bytes)
    $sha = [Security.Cryptography.SHA256]::Create()
    try { ([BitConverter]::ToString($sha.ComputeHash($Bytes)) -replace '-', '').ToLowerInvariant() }
    finally { $sha.Dispose() }
}

function Get-XFlowFreeTcpPort {
    # A loopback port nobody listens on (bound, read, released).
    $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $listener.Start()
    try { $listener.LocalEndpoint.Port } finally { $listener.Stop() }
}

# Windows PowerShell 5.1 (.NET Framework) runs these helpers too (tests/Invoke-Tests.ps1 in the
# Windows CI job): it has no ProcessStartInfo.ArgumentList, no Process.Kill(bool), no
# Environment.ProcessPath and no Invoke-RestMethod -SkipCertificateCheck.
$script:Desktop = $PSVersionTable.PSEdition -eq 'Desktop'

function ConvertTo-XFlowWindowsArgument {
    # One argument quoted so that a Windows program's command-line parser reads it back unchanged.
    param([AllowEmptyString()][string]$Value)
    if ($Value.Length -gt 0 -and $Value -notmatch '[\s"]') { return $Value }
    $quoted = [Text.StringBuilder]::new('"')
    $backslashes = 0
    foreach ($c in $Value.ToCharArray()) {
        if ($c -eq [char]'\') { $backslashes++; continue }
        $run = if ($c -eq [char]'"') { 2 * $backslashes + 1 } else { $backslashes }
        [void]$quoted.Append([char]'\', $run).Append($c)
        $backslashes = 0
    }
    [void]$quoted.Append([char]'\', 2 * $backslashes).Append('"')
    $quoted.ToString()
}

function Add-XFlowArgument {
    # Adds each argument to a ProcessStartInfo as one argv entry.
    param([Parameter(Mandatory)][Diagnostics.ProcessStartInfo]$StartInfo, [string[]]$ArgumentList = @())
    if ($script:Desktop) {
        $StartInfo.Arguments = ((@($StartInfo.Arguments) + @($ArgumentList | ForEach-Object { ConvertTo-XFlowWindowsArgument $_ })) | Where-Object { $_ }) -join ' '
    }
    else { foreach ($a in $ArgumentList) { $StartInfo.ArgumentList.Add($a) } }
}

# The start of the error Wait-XFlowRunOnce throws for a child that cannot end (Test-XFlowLazyFsHung).
$script:ChildStuck = 'XFLOW-CHILD-STUCK:'

function Stop-XFlowProcessTree {
    param([Parameter(Mandatory)][Diagnostics.Process]$Process)
    if ($script:Desktop) { & taskkill.exe /PID $Process.Id /T /F 2>&1 | Out-Null }
    else { $Process.Kill($true) }
}

function Test-XFlowWindowsAdministrator {
    # Windows, in an elevated administrator's process: what registering a scheduled task and creating
    # an event source need.
    if (-not ($script:Desktop -or $IsWindows)) { return $false }
    ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

function Get-XFlowPwshCommand {
    # How to start another PowerShell like this one: powershell.exe under Windows PowerShell 5.1;
    # under `dotnet pwsh` (local .NET tool) the process is dotnet itself running pwsh.dll.
    if ($script:Desktop) { return [pscustomobject]@{ FilePath = (Join-Path $PSHOME 'powershell.exe'); Prefix = @() } }
    $exe = [Environment]::ProcessPath
    $leaf = [IO.Path]::GetFileNameWithoutExtension($exe)
    if ($leaf -eq 'pwsh') { return [pscustomobject]@{ FilePath = $exe; Prefix = @() } }
    [pscustomobject]@{ FilePath = $exe; Prefix = @((Join-Path $PSHOME 'pwsh.dll')) }
}

function Invoke-XFlowProcess {
    # Runs a program to the end (stdin closed, killed after TimeoutSec); each argument is one argv
    # entry, or with -CommandLine one string parsed the Windows way (as Task Scheduler passes an
    # action's Arguments; .NET parses it so on every OS). $Environment adds or replaces variables
    # ($null removes one).
    # Returns its exit code and its combined output (one string).
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [string]$CommandLine,
        [hashtable]$Environment = @{},
        [string]$WorkingDirectory = [IO.Path]::GetTempPath(),
        [int]$TimeoutSec = 120
    )
    $psi = [Diagnostics.ProcessStartInfo]::new($FilePath)
    if ($PSBoundParameters.ContainsKey('CommandLine')) { $psi.Arguments = $CommandLine }
    else { Add-XFlowArgument -StartInfo $psi -ArgumentList $ArgumentList }
    foreach ($k in $Environment.Keys) {
        if ($null -eq $Environment[$k]) { [void]$psi.Environment.Remove($k) } else { $psi.Environment[$k] = $Environment[$k] }
    }
    $psi.WorkingDirectory = $WorkingDirectory
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.RedirectStandardInput = $true
    $p = [Diagnostics.Process]::Start($psi)
    $p.StandardInput.Close()
    $out = $p.StandardOutput.ReadToEndAsync()
    $err = $p.StandardError.ReadToEndAsync()
    if (-not $p.WaitForExit($TimeoutSec * 1000)) {
        Stop-XFlowProcessTree $p
        throw "'$FilePath' did not finish within $TimeoutSec s"
    }
    $p.WaitForExit()
    [pscustomobject]@{ ExitCode = $p.ExitCode; Output = $out.Result + $err.Result }
}

function Invoke-XFlowChildPwsh {
    # Runs a script file in a fresh `pwsh -NoProfile -NonInteractive -File`; returns its exit code
    # and its combined output (one string).
    param([Parameter(Mandatory)][string]$ScriptPath, [string[]]$ArgumentList = @(), [string]$WorkingDirectory = [IO.Path]::GetTempPath())
    $pwsh = Get-XFlowPwshCommand
    Invoke-XFlowProcess -FilePath $pwsh.FilePath -WorkingDirectory $WorkingDirectory `
        -ArgumentList (@($pwsh.Prefix) + @('-NoProfile', '-NonInteractive', '-File', $ScriptPath) + $ArgumentList)
}

function Split-XFlowSystemdCommand {
    <#
    .SYNOPSIS
        The argv systemd makes of an ExecStart= value: words split at blanks, "..." and '...'
        quoting, backslash escapes, and %% / $$ back to % / $ (the unit files escape those so that
        no specifier or variable is expanded).
    #>
    param([Parameter(Mandatory)][string]$Value)
    $Value = $Value.Replace('%%', '%').Replace('$$', '$')
    $words = [Collections.Generic.List[string]]::new()
    $word = [Text.StringBuilder]::new()
    $inWord = $false
    $quote = [char]0
    for ($i = 0; $i -lt $Value.Length; $i++) {
        $c = $Value[$i]
        if ($c -eq '\' -and $i + 1 -lt $Value.Length) { [void]$word.Append($Value[++$i]); $inWord = $true; continue }
        if ($quote -ne [char]0) {
            if ($c -eq $quote) { $quote = [char]0 } else { [void]$word.Append($c) }
            continue
        }
        if ($c -eq '"' -or $c -eq "'") { $quote = $c; $inWord = $true; continue }
        if ([char]::IsWhiteSpace($c)) {
            if ($inWord) { $words.Add($word.ToString()); [void]$word.Clear(); $inWord = $false }
            continue
        }
        [void]$word.Append($c)
        $inWord = $true
    }
    if ($quote -ne [char]0) { throw "unterminated quote in: $Value" }
    if ($inWord) { $words.Add($word.ToString()) }
    , $words.ToArray()
}

function Start-XFlowSim {
    <#
    .SYNOPSIS
        Starts target/release/xflow-sim on a free loopback port and waits for its ready line
        {"baseUrl","controlUrl","caPath","pid"}. The token goes through the environment
        (XFLOW_SIM_TOKEN), never the command line.
    #>
    param(
        [string]$Token = (New-XFlowTestToken),
        [int]$ReadyTimeoutSec = 60,
        # Plain http on loopback (the module needs -AllowInsecureHttp): the request bodies are
        # then readable in a system-call trace.
        [switch]$PlainHttp
    )
    $exe = Get-XFlowSimPath
    if (-not (Test-Path -LiteralPath $exe)) {
        throw "The XFlow simulator is not built: '$exe' is missing. Run ./build.ps1 first."
    }
    $stateDir = New-XFlowTestDirectory -Name 'xflow-sim-state'
    $psi = [Diagnostics.ProcessStartInfo]::new($exe)
    $simArgs = @('serve', '--port', '0', '--state-dir', $stateDir)
    if ($PlainHttp) { $simArgs += '--http' }
    Add-XFlowArgument -StartInfo $psi -ArgumentList $simArgs
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.RedirectStandardInput = $true
    $controlToken = 'ctl-' + [Guid]::NewGuid().ToString('N')
    # Secrets through the environment only; nothing inherited from the caller's XFLOW_SIM_* vars.
    foreach ($name in @($psi.Environment.Keys | Where-Object { $_ -like 'XFLOW_SIM_*' })) { [void]$psi.Environment.Remove($name) }
    $psi.Environment['XFLOW_SIM_TOKEN'] = $Token
    $psi.Environment['XFLOW_SIM_CONTROL_TOKEN'] = $controlToken
    $process = [Diagnostics.Process]::Start($psi)
    $process.StandardInput.Close()
    # Drain stderr all the time (a full pipe would block the simulator); kept for diagnostics.
    $stderr = $process.StandardError.ReadToEndAsync()
    $readLine = $process.StandardOutput.ReadLineAsync()
    if (-not $readLine.Wait([TimeSpan]::FromSeconds($ReadyTimeoutSec)) -or $null -eq $readLine.Result) {
        if (-not $process.HasExited) { Stop-XFlowProcessTree $process }
        $process.WaitForExit(5000) | Out-Null
        $log = if ($stderr.Wait(2000)) { $stderr.Result } else { '' }
        throw "The XFlow simulator did not print its ready line within $ReadyTimeoutSec s. stderr:`n$log"
    }
    $ready = $readLine.Result | ConvertFrom-Json
    # Keep draining stdout too.
    $stdout = $process.StandardOutput.ReadToEndAsync()
    [pscustomobject]@{
        Process    = $process
        BaseUrl    = [string]$ready.baseUrl
        ControlUrl = [string]$ready.controlUrl
        CaPath     = [string]$ready.caPath
        Token      = $Token
        ControlToken = $controlToken
        StateDir   = $stateDir
        Stdout     = $stdout
        Stderr     = $stderr
    }
}

function Stop-XFlowSim {
    param($Sim)
    if ($null -eq $Sim) { return }
    try {
        if (-not $Sim.Process.HasExited) {
            Stop-XFlowProcessTree $Sim.Process
        }
        $Sim.Process.WaitForExit(10000) | Out-Null
    }
    finally {
        $Sim.Process.Dispose()
        Remove-Item -LiteralPath $Sim.StateDir -Recurse -Force -ErrorAction SilentlyContinue
    }
}

function Get-XFlowSimLog {
    param($Sim)
    if ($Sim.Stderr.IsCompleted) { return $Sim.Stderr.Result }
    '(simulator still running; stderr not complete)'
}

function Invoke-XFlowSimControl {
    <#
    .SYNOPSIS
        Calls the simulator's control API (loopback only). Its certificate is the simulator's own
        CA; certificate checks are skipped for this loopback control channel only, never for
        the delivery API that the module talks to.
    #>
    param(
        [Parameter(Mandatory)]$Sim,
        [ValidateSet('GET', 'POST', 'PUT', 'DELETE')][string]$Method = 'GET',
        [Parameter(Mandatory)][string]$Path,
        $Body
    )
    $uri = [Uri]($Sim.ControlUrl.TrimEnd('/') + '/' + $Path.TrimStart('/'))
    if (-not $uri.IsLoopback) { throw "refusing to call a control API that is not on loopback: $uri" }
    $params = @{ Uri = $uri; Method = $Method; Headers = @{ 'X-Control-Token' = $Sim.ControlToken } }
    if ($uri.Scheme -eq 'https') {
        if ($script:Desktop) { Enable-XFlowLoopbackCertificateTrust } else { $params.SkipCertificateCheck = $true }
    }
    if ($PSBoundParameters.ContainsKey('Body')) {
        $json = if ($Body -is [string]) { $Body } else { ConvertTo-Json -InputObject $Body -Depth 20 -Compress }
        $params.Body = [Text.Encoding]::UTF8.GetBytes($json)
        $params.ContentType = 'application/json; charset=utf-8'
    }
    Invoke-RestMethod @params
}

function Enable-XFlowLoopbackCertificateTrust {
    # Windows PowerShell 5.1: accept any certificate from a loopback address only (the
    # simulator's control API), for this process's .NET web requests; TLS 1.2 on.
    [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
    if (-not ('XFlowLoopbackTrust' -as [type])) {
        Add-Type -TypeDefinition @'
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
public static class XFlowLoopbackTrust {
    public static bool Accept(object sender, X509Certificate certificate, X509Chain chain, SslPolicyErrors errors) {
        if (errors == SslPolicyErrors.None) return true;
        var request = sender as HttpWebRequest;
        return request != null && request.RequestUri.IsLoopback;
    }
}
'@
        [Net.ServicePointManager]::ServerCertificateValidationCallback = [Delegate]::CreateDelegate(
            [Net.Security.RemoteCertificateValidationCallback], [XFlowLoopbackTrust].GetMethod('Accept'))
    }
}

function Reset-XFlowSim {
    param([Parameter(Mandatory)]$Sim)
    Invoke-XFlowSimControl -Sim $Sim -Method POST -Path 'reset' | Out-Null
}

function Add-XFlowSimDelivery {
    # Enqueues deliveries with known bytes: @{ System='SDLoen'; FileName='løn.csv'; Bytes=[byte[]] }.
    param([Parameter(Mandatory)]$Sim, [Parameter(Mandatory)][object[]]$Delivery)
    $list = foreach ($d in $Delivery) {
        @{ system = $d.System; fileName = $d.FileName; contentBase64 = [Convert]::ToBase64String([byte[]]$d.Bytes) }
    }
    Invoke-XFlowSimControl -Sim $Sim -Method POST -Path 'deliveries' -Body @{ deliveries = @($list) }
}

function New-XFlowSimBacklog {
    # Resets the simulator to a backlog of $Count distinct random files for SD Løn and Prisme, in
    # ack mode $AckMode and pages of $PageSize; returns sha256 -> delivery id.
    param(
        [Parameter(Mandatory)]$Sim,
        [ValidateSet('Ack', 'None')][string]$AckMode = 'Ack',
        [Parameter(Mandatory)][int]$PageSize,
        [Parameter(Mandatory)][int]$Count,
        [Parameter(Mandatory)][int]$Size,
        [Parameter(Mandatory)][int]$Seed
    )
    Reset-XFlowSim -Sim $Sim
    Invoke-XFlowSimControl -Sim $Sim -Method PUT -Path 'settings' -Body @{ mode = $AckMode; pageSize = $PageSize } | Out-Null
    Invoke-XFlowSimControl -Sim $Sim -Method POST -Path 'generate' -Body @{
        count = $Count; size = $Size; kind = 'random'; systems = @('SDLoen', 'Prisme'); seed = $Seed
    } | Out-Null
    $bySha = @{}
    foreach ($d in (Get-XFlowSimState -Sim $Sim).deliveries) { $bySha[$d.sha256] = $d.id }
    if ($bySha.Count -ne $Count) { throw "The generated contents are not distinct ($($bySha.Count) of $Count, seed $Seed): change the seed or the size." }
    $bySha
}

function Get-XFlowSimState {
    param([Parameter(Mandatory)]$Sim)
    Invoke-XFlowSimControl -Sim $Sim -Method GET -Path 'state'
}

function Get-XFlowSimDeliveries {
    # The simulator's view of every delivery: id, sha256, state, handedOutCount, ackCount, ...
    param([Parameter(Mandatory)]$Sim)
    @((Get-XFlowSimState -Sim $Sim).deliveries)
}

function New-XFlowRunFolders {
    # A fresh root under $Parent with both import folders ("Løn" and spaces in their names) and
    # the path of a state folder, which the engine creates on its first run.
    param([string]$Parent = (Get-XFlowTestRoot))
    $root = Join-Path $Parent ('run-' + [Guid]::NewGuid().ToString('N').Substring(0, 8))
    $folders = [pscustomobject]@{
        Root   = $root
        SdLoen = Join-Path $root 'SD Løn import'
        Prisme = Join-Path $root 'Prisme import'
        State  = Join-Path $root 'XFlow state'
    }
    New-Item -ItemType Directory -Path $folders.SdLoen, $folders.Prisme -Force | Out-Null
    $folders
}

function Get-XFlowDeliveryParameters {
    # Splatting parameters for Invoke-XFlowDelivery against $Sim into $Folders; $Extra overrides.
    param([Parameter(Mandatory)]$Sim, [Parameter(Mandatory)]$Folders, [hashtable]$Extra = @{})
    $params = @{
        BaseUrl           = $Sim.BaseUrl
        ApiToken          = ConvertTo-SecureString $Sim.Token -AsPlainText -Force
        SdLoenPath        = $Folders.SdLoen
        PrismePath        = $Folders.Prisme
        StatePath         = $Folders.State
        CaCertificatePath = $Sim.CaPath
        TimeoutSec        = 20
    }
    foreach ($k in $Extra.Keys) { $params[$k] = $Extra[$k] }
    $params
}

function Start-XFlowPipeline {
    # Runs one command of the built module in a fresh runspace of this process and returns the
    # PowerShell instance and its async result (for tests that press Ctrl+C with Stop/BeginStop).
    # -PowerShell: an instance already prepared (e.g. armed to stop at some output).
    param(
        [Parameter(Mandatory)][string]$Command,
        [Parameter(Mandatory)][hashtable]$Parameters,
        [powershell]$PowerShell = [powershell]::Create()
    )
    # One statement, never a batch: AddStatement runs each statement as a thread-pool work item
    # that can outlive a stop and then write to the closed runspace's error buffer, which ends
    # this whole process with an unhandled exception (seen twice in CI).
    $null = $PowerShell.AddScript('param($Manifest, $Command, $Parameters) Import-Module $Manifest; & $Command @Parameters')
    $null = $PowerShell.AddParameter('Manifest', (Get-XFlowModuleManifest)).AddParameter('Command', $Command).AddParameter('Parameters', $Parameters)
    [pscustomobject]@{ PowerShell = $PowerShell; Async = $PowerShell.BeginInvoke() }
}

function Start-XFlowRunOnce {
    <#
    .SYNOPSIS
        Starts tests/RunOnce.ps1 (one Invoke-XFlowDelivery run) in a child pwsh against the
        simulator. The token goes through the child's environment, never its arguments. Returns
        a handle for Wait-XFlowRunOnceStart and Wait-XFlowRunOnce; $handle.Process.Kill() is
        SIGKILL on Linux.
    #>
    param(
        [Parameter(Mandatory)]$Sim,
        [Parameter(Mandatory)][string]$StatePath,
        [string]$SdLoenPath,
        [string]$PrismePath,
        [ValidateSet('Ack', 'None')][string]$AckMode = 'Ack',
        [int]$TimeoutSec = 20,
        [string]$ModulePath = (Split-Path -Parent (Get-XFlowModuleManifest)),
        # The run waits for this file to exist (to start several children together).
        [string]$StartGate,
        # A command the child pwsh runs under (e.g. strace ... --); Process is then that command.
        [string[]]$CommandPrefix = @()
    )
    $pwsh = Get-XFlowPwshCommand
    $arguments = @($pwsh.Prefix) + @('-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot 'RunOnce.ps1'),
        '-ModulePath', $ModulePath, '-BaseUrl', $Sim.BaseUrl, '-StatePath', $StatePath, '-AckMode', $AckMode,
        '-TimeoutSec', "$TimeoutSec")
    # A simulator started with -PlainHttp has no CA.
    if ($Sim.CaPath) { $arguments += @('-CaCertificatePath', $Sim.CaPath) } else { $arguments += '-AllowInsecureHttp' }
    if ($SdLoenPath) { $arguments += @('-SdLoenPath', $SdLoenPath) }
    if ($PrismePath) { $arguments += @('-PrismePath', $PrismePath) }
    if ($StartGate) { $arguments += @('-StartGate', $StartGate) }
    $command = @($CommandPrefix) + @($pwsh.FilePath) + $arguments
    $psi = [Diagnostics.ProcessStartInfo]::new($command[0])
    Add-XFlowArgument -StartInfo $psi -ArgumentList @($command | Select-Object -Skip 1)
    $psi.Environment['XFLOW_RUNONCE_TOKEN'] = $Sim.Token
    $psi.WorkingDirectory = [IO.Path]::GetTempPath()
    $psi.UseShellExecute = $false
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    $psi.RedirectStandardInput = $true
    $process = [Diagnostics.Process]::Start($psi)
    $process.StandardInput.Close()
    [pscustomobject]@{
        Process     = $process
        Stderr      = $process.StandardError.ReadToEndAsync()
        Lines       = [Collections.Generic.List[string]]::new()
        PendingLine = $null
        Rest        = $null
    }
}

function Wait-XFlowRunOnceStart {
    <#
    .SYNOPSIS
        Reads the child's stdout up to its XFLOW-RUN-START line (module imported, run about to
        begin). True when it came; false when the child ended first or the timeout passed.
    #>
    param([Parameter(Mandatory)]$Run, [int]$TimeoutMs = 60000)
    $watch = [Diagnostics.Stopwatch]::StartNew()
    while ($watch.ElapsedMilliseconds -lt $TimeoutMs) {
        if ($null -eq $Run.PendingLine) { $Run.PendingLine = $Run.Process.StandardOutput.ReadLineAsync() }
        # A read still pending at the timeout stays on the handle for Wait-XFlowRunOnce.
        if (-not $Run.PendingLine.Wait([int][Math]::Max(1, $TimeoutMs - $watch.ElapsedMilliseconds))) { return $false }
        $line = $Run.PendingLine.Result
        $Run.PendingLine = $null
        if ($null -eq $line) { return $false }
        $Run.Lines.Add($line)
        if ($line -eq 'XFLOW-RUN-START') {
            # Drain the rest from now on: a child blocked on a full stdout pipe never exits.
            $Run.Rest = $Run.Process.StandardOutput.ReadToEndAsync()
            return $true
        }
    }
    $false
}

function Wait-XFlowRunOnce {
    <#
    .SYNOPSIS
        Waits for the child to end (killing it after TimeoutSec) and returns ExitCode, TimedOut,
        Output (stdout + stderr) and Result: the parsed XFLOW-RUN-RESULT object, or $null when
        the run never got that far (killed).
    #>
    param([Parameter(Mandatory)]$Run, [int]$TimeoutSec = 120)
    # Keep reading while waiting: a child blocked on a full stdout pipe never exits.
    if ($null -ne $Run.PendingLine) {
        if (-not $Run.PendingLine.Wait($TimeoutSec * 1000)) { Stop-XFlowProcessTree $Run.Process }
        $line = $Run.PendingLine.Result
        if ($null -ne $line) { $Run.Lines.Add($line) }
        $Run.PendingLine = $null
    }
    if ($null -eq $Run.Rest) { $Run.Rest = $Run.Process.StandardOutput.ReadToEndAsync() }
    $timedOut = -not $Run.Process.WaitForExit($TimeoutSec * 1000)
    if ($timedOut) { Stop-XFlowProcessTree $Run.Process }
    # A killed process still blocked in the kernel (a FUSE daemon that stopped answering) never
    # ends: say so instead of waiting for ever. Stop-XFlowLazyFs frees it.
    if (-not $Run.Process.WaitForExit(60000)) {
        throw "$script:ChildStuck process $($Run.Process.Id) has not ended 60 s after it was killed: it is blocked in the kernel (a FUSE file system that stopped answering?)"
    }
    $Run.Process.WaitForExit()
    foreach ($line in ($Run.Rest.Result -split "\r?\n")) { if ($line) { $Run.Lines.Add($line) } }
    $resultLine = $Run.Lines | Where-Object { $_.StartsWith('XFLOW-RUN-RESULT ') } | Select-Object -Last 1
    $exitCode = $Run.Process.ExitCode
    $Run.Process.Dispose()
    $result = $null
    if ($resultLine) {
        # A child killed while printing leaves half a line: no result then.
        try { $result = $resultLine.Substring('XFLOW-RUN-RESULT '.Length) | ConvertFrom-Json } catch { $result = $null }
    }
    [pscustomobject]@{
        ExitCode = $exitCode
        TimedOut = $timedOut
        Output   = ($Run.Lines -join "`n") + "`n" + $Run.Stderr.Result
        Result   = $result
    }
}

function Invoke-XFlowStress {
    <#
    .SYNOPSIS
        Runs build/Stress.ps1 on the built module in a child pwsh with the given arguments;
        returns ExitCode, Output (colour codes removed) and Rows (its XFLOW-STRESS-ROW summary).
    #>
    param([string[]]$Arguments = @())
    $pwsh = Get-XFlowPwshCommand
    $stress = Join-Path $script:RepoRoot 'build/Stress.ps1'
    $output = & $pwsh.FilePath @($pwsh.Prefix) -NoProfile -NonInteractive -File $stress `
        -Root $script:RepoRoot -ModulePath (Split-Path -Parent (Get-XFlowModuleManifest)) @Arguments 2>&1 | Out-String
    $exit = $LASTEXITCODE
    $output = $output -replace '\x1b\[[0-9;]*m', ''
    $rows = foreach ($m in [regex]::Matches($output, '(?m)^XFLOW-STRESS-ROW (.+)$')) { $m.Groups[1].Value | ConvertFrom-Json }
    [pscustomobject]@{ ExitCode = $exit; Output = $output; Rows = @($rows) }
}

function Get-XFlowLazyFsScript {
    # LazyFS's wrapper from the shared tools beside the repository (CI, /work/main) or beside
    # the folder holding it (git worktrees); $env:XFLOW_LAZYFS_SH overrides. $null if none.
    if ($env:XFLOW_LAZYFS_SH) { return $env:XFLOW_LAZYFS_SH }
    foreach ($up in '..', '../..') {
        $candidate = [IO.Path]::GetFullPath((Join-Path $script:RepoRoot "$up/shared/tools/lazyfs/lazyfs.sh"))
        if (Test-Path -LiteralPath $candidate) { return $candidate }
    }
    $null
}

function Get-XFlowPowerCutProblem {
    <#
    .SYNOPSIS
        Why LazyFS power cuts cannot run here, or $null when they can. Builds LazyFS on first use
        (`lazyfs.sh build`: Debian packages and a compile, about 1.5 minutes, once per machine);
        a failed build throws: it is a broken machine, not a reason to skip.
    #>
    if (-not $IsLinux) { return 'LazyFS power cuts need Linux (FUSE)' }
    if ((& id -u) -ne '0') { return 'LazyFS power cuts need root (FUSE mounts with allow_other, apt-get for the build)' }
    if (-not (Test-Path -LiteralPath '/dev/fuse')) { return '/dev/fuse is missing (no FUSE in this container)' }
    $script = Get-XFlowLazyFsScript
    if (-not $script) { return 'lazyfs.sh was not found in ../shared/tools/lazyfs (set XFLOW_LAZYFS_SH)' }
    $out = & bash $script build 2>&1 | Out-String
    if ($LASTEXITCODE -ne 0) { throw "lazyfs.sh build failed (exit $LASTEXITCODE): $out" }
    $null
}

function Mount-XFlowLazyFs {
    <#
    .SYNOPSIS
        Mounts a LazyFS at $Path (its backing folder is "$Path.backing", which survives a cut as
        a disk would). Returns the control FIFO for Invoke-XFlowPowerCut.
    #>
    param([Parameter(Mandatory)][string]$Path)
    $Path = [IO.Path]::GetFullPath($Path)
    $out = @(& bash (Get-XFlowLazyFsScript) mount $Path 2>&1)
    if ($LASTEXITCODE -eq 0) { return "$($out[-1])".Trim() }
    # lazyfs.sh waits 5 s; LazyFS fills its 1 GiB cache first, which takes longer on a busy
    # machine. Its process goes on: wait for the mount and the FIFO a while more.
    $fifo = "$Path.fifo"
    $watch = [Diagnostics.Stopwatch]::StartNew()
    while ($watch.Elapsed.TotalSeconds -lt 60) {
        if ((Test-XFlowFuseMounted -Path $Path) -and (Test-Path -LiteralPath $fifo)) { return $fifo }
        Start-Sleep -Milliseconds 200
    }
    throw "lazyfs.sh mount '$Path' failed (exit $LASTEXITCODE): $($out -join "`n")"
}

function Invoke-XFlowPowerCut {
    # Drops every write LazyFS holds that was not fsynced, as a power loss does; returns when done.
    # Bounded: if the LazyFS daemon has died, nobody reads its FIFO and the write in lazyfs.sh
    # would block for ever (seen once under heavy load); `timeout` turns that into a failure.
    param([Parameter(Mandatory)][string]$Fifo, [int]$TimeoutSec = 120)
    $out = & timeout $TimeoutSec bash (Get-XFlowLazyFsScript) cut $Fifo 2>&1 | Out-String
    if ($LASTEXITCODE -eq 124) { throw "lazyfs.sh cut '$Fifo' did not return within $TimeoutSec s (is the LazyFS daemon still running?): $out" }
    if ($LASTEXITCODE -ne 0) { throw "lazyfs.sh cut '$Fifo' failed (exit $LASTEXITCODE): $out" }
}

function Test-XFlowLazyFsHung {
    <#
    .SYNOPSIS
        Whether an error means the LazyFS under a test stopped answering rather than anything
        the module did: a child blocked in a FUSE request after it was killed, or a cut its daemon
        never acknowledged. LazyFS deadlocks on its own now and then under heavy load (every
        daemon thread waiting on a lock, seen twice on a 2-core machine at load 8 to 40).
    #>
    param([Parameter(Mandatory)][Management.Automation.ErrorRecord]$ErrorRecord)
    $message = $ErrorRecord.Exception.Message
    $message.StartsWith($script:ChildStuck) -or $message -like 'lazyfs.sh cut * did not return within*'
}

function Stop-XFlowLazyFs {
    # Ends a LazyFS that stopped answering: killing its daemon aborts the FUSE connection, so every
    # process blocked on the mount gets an error and can end; then the mount point is detached.
    param([Parameter(Mandatory)][string]$Path)
    $Path = [IO.Path]::GetFullPath($Path)
    foreach ($p in Get-Process -Name lazyfs -ErrorAction SilentlyContinue) {
        if ($p.CommandLine -like "* $Path --config-path *") { $p.Kill() ; $p.WaitForExit(10000) | Out-Null }
    }
    & fusermount3 -u -z $Path 2>&1 | Out-Null
}

function Test-XFlowFuseMounted {
    param([Parameter(Mandatory)][string]$Path)
    $Path = [IO.Path]::GetFullPath($Path)
    @(Get-Content -LiteralPath '/proc/mounts' | Where-Object { $f = $_ -split ' '; $f[1] -eq $Path -and $f[2] -like 'fuse*' }).Count -gt 0
}

function Dismount-XFlowLazyFs {
    # Unmounts the LazyFS at $Path if one is mounted there (its process then ends).
    param([Parameter(Mandatory)][string]$Path)
    if (-not (Test-XFlowFuseMounted -Path $Path)) { return }
    $out = & bash (Get-XFlowLazyFsScript) umount $Path 2>&1 | Out-String
    if ($LASTEXITCODE -ne 0) { throw "lazyfs.sh umount '$Path' failed (exit $LASTEXITCODE): $out" }
}

function Get-XFlowFolderFiles {
    <#
    .SYNOPSIS
        Every file in the given folders, hidden ones included, with its SHA-256: Name, FullName,
        Sha256, Hidden (what an importer that skips hidden files skips: the Hidden attribute on
        Windows, a leading dot elsewhere) and Temp (an engine temp name, .xflow-*.partial).
    #>
    param([Parameter(Mandatory)][string[]]$Path)
    foreach ($folder in $Path) {
        if (-not (Test-Path -LiteralPath $folder)) { continue }
        foreach ($f in Get-ChildItem -LiteralPath $folder -File -Force -Recurse) {
            [pscustomobject]@{
                Name     = $f.Name
                FullName = $f.FullName
                Sha256   = (Get-FileHash -LiteralPath $f.FullName -Algorithm SHA256).Hash.ToLowerInvariant()
                Hidden   = if ($IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop') {
                    ($f.Attributes -band [IO.FileAttributes]::Hidden) -ne 0
                } else { $f.Name.StartsWith('.') }
                Temp     = $f.Name -like '.xflow-*.partial'
            }
        }
    }
}

function Select-XFlowNonTerminatingError {
    <#
    .SYNOPSIS
        The non-terminating errors of a run, as ErrorRecords, from what -ErrorVariable collected.
        -ErrorVariable also holds the terminating error, sometimes wrapped (a
        CmdletInvocationException when the cmdlet wrote output first); it is left out by its
        exception.
    #>
    param([object[]]$Collected = @(), [Management.Automation.ErrorRecord]$Terminating)
    foreach ($item in $Collected) {
        $record = if ($item -is [Management.Automation.ErrorRecord]) { $item }
                  elseif ($item -is [Management.Automation.IContainsErrorRecord]) { $item.ErrorRecord }
                  else { continue }
        if ($Terminating -and [object]::ReferenceEquals($record.Exception, $Terminating.Exception)) { continue }
        $record
    }
}

Export-ModuleMember -Function *
