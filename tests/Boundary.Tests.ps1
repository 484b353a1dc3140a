# The boundary between the cmdlets and the native engine under stress: text no JSON reader may
# refuse (noncharacters, lone surrogates) end to end through a run, the history, the status and
# a quarantine release, and Ctrl+C that comes back promptly wherever the engine is stuck.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-boundary'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim

    function script:New-Setup {
        # Import folders, a state folder and a configuration file against the simulator.
        $s = New-XFlowRunFolders -Parent (New-XFlowTestDirectory -Name 'boundary')
        $s | Add-Member -NotePropertyName Config -NotePropertyValue (Join-Path $s.Root 'config.json')
        New-XFlowDeliveryConfig -Path $s.Config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force) `
            -SdLoenPath $s.SdLoen -PrismePath $s.Prisme -StatePath $s.State -CaCertificatePath $script:Sim.CaPath -TimeoutSec 10 -WarningAction SilentlyContinue | Out-Null
        $s
    }

    function script:Invoke-Collect {
        # Invoke-XFlowDelivery @Params; output, non-terminating errors and the terminating one.
        param([hashtable]$Params)
        $terminating = $null
        $out = @()
        try { $out = @(Invoke-XFlowDelivery @Params -ErrorVariable runErrors -ErrorAction SilentlyContinue -WarningAction SilentlyContinue) }
        catch { $terminating = $_ }
        [pscustomobject]@{
            Files       = @($out | Where-Object { $_ -is [XFlowDelivery.Model.XFlowDeliveredFile] })
            Summary     = @($out | Where-Object { $_ -is [XFlowDelivery.Model.XFlowRunSummary] })
            Errors      = @(Select-XFlowNonTerminatingError -Collected @($runErrors) -Terminating $terminating)
            Terminating = $terminating
        }
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Noncharacters and lone surrogates from the server, end to end' {
    BeforeAll {
        Reset-XFlowSim -Sim $script:Sim
        $script:S = New-Setup
        $ffff = [string][char]0xFFFF
        $fffe = [string][char]0xFFFE
        $fdd0 = [string][char]0xFDD0
        $plane1 = [char]::ConvertFromUtf32(0x1FFFF)
        $fffd = [string][char]0xFFFD
        # id, system, name as sent, name expected on disk
        $script:Cases = @(
            @{ Id = "ffff-$ffff"; System = 'SDLoen'; Name = "løn$ffff.csv"; Landed = 'løn_.csv' }
            @{ Id = "fffe-$fffe"; System = 'Prisme'; Name = "${fffe}bom.txt"; Landed = '_bom.txt' }
            @{ Id = 'fdd0-plane1'; System = 'Prisme'; Name = "fdd0$fdd0 plane1$plane1.txt"; Landed = 'fdd0_ plane1_.txt' }
            @{ Id = 'lone-high'; System = 'SDLoen'; Name = 'lone{lone-surrogate:d800}high.csv'; Landed = "lone${fffd}high.csv"; Requested = "lone${fffd}high.csv" }
            @{ Id = 'lone-low'; System = 'SDLoen'; Name = 'lone{lone-surrogate:dc00}low.csv'; Landed = "lone${fffd}low.csv"; Requested = "lone${fffd}low.csv" }
        )
        foreach ($c in $script:Cases) {
            $c.Bytes = [Text.Encoding]::UTF8.GetBytes("$($c.Id);Beløb`r`n")
            $body = @{ deliveries = @(@{ id = $c.Id; system = $c.System; fileName = $c.Name; contentBase64 = [Convert]::ToBase64String($c.Bytes) }) }
            Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'deliveries' -Body $body | Out-Null
        }
        $script:Run = Invoke-Collect @{ ConfigPath = $script:S.Config }
    }

    It 'the run delivers every file under a safe name and ends with its summary, no error' {
        $script:Run.Terminating | Should -BeNullOrEmpty
        $script:Run.Errors | Should -BeNullOrEmpty
        $script:Run.Summary.Count | Should -Be 1
        $script:Run.Summary[0].Outcome | Should -Be 'Succeeded'
        $script:Run.Summary[0].Delivered | Should -Be $script:Cases.Count
        foreach ($c in $script:Cases) {
            $file = @($script:Run.Files | Where-Object Id -EQ $c.Id)
            $file.Count | Should -Be 1 -Because "delivery $($c.Id) is reported once"
            $file[0].FileName | Should -BeExactly $c.Landed
            $folder = if ($c.System -eq 'Prisme') { $script:S.Prisme } else { $script:S.SdLoen }
            $path = Join-Path $folder $c.Landed
            [IO.File]::ReadAllBytes($path) | Should -Be $c.Bytes
        }
        (Get-XFlowSimDeliveries -Sim $script:Sim | Where-Object state -NE 'acked') | Should -BeNullOrEmpty
    }

    It 'the history shows each delivery with the id and name the server sent' {
        $history = @(Get-XFlowDeliveryHistory -ConfigPath $script:S.Config)
        $history.Count | Should -Be $script:Cases.Count
        foreach ($c in $script:Cases) {
            $record = @($history | Where-Object Id -EQ $c.Id)
            $record.Count | Should -Be 1 -Because "$($c.Id) is in the journal once"
            $requested = if ($c.Requested) { $c.Requested } else { $c.Name }
            $record[0].RequestedName | Should -BeExactly $requested
            $record[0].FileName | Should -BeExactly $c.Landed
        }
        @(Get-XFlowDeliveryHistory -ConfigPath $script:S.Config -Id $script:Cases[0].Id).Count | Should -Be 1
    }

    It 'a quarantined delivery with such an id and name shows in the status and can be released' {
        $ffff = [string][char]0xFFFF
        $id = "quarantined-$ffff"
        $name = "q$([char]0xFFFE){lone-surrogate:d800}.csv"
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'wrongSha256' } | Out-Null
        $body = @{ deliveries = @(@{ id = $id; system = 'SDLoen'; fileName = $name; contentBase64 = [Convert]::ToBase64String([byte[]](1, 2, 3)) }) }
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'deliveries' -Body $body | Out-Null

        $run = Invoke-Collect @{ ConfigPath = $script:S.Config }
        $run.Terminating | Should -BeNullOrEmpty
        $run.Summary[0].Outcome | Should -Be 'CompletedWithErrors'
        @($run.Errors).Count | Should -Be 1
        $run.Errors[0].FullyQualifiedErrorId | Should -BeLike 'HashMismatch,*'
        $run.Errors[0].TargetObject | Should -BeExactly $id

        $status = Get-XFlowDeliveryStatus -ConfigPath $script:S.Config
        @($status.Quarantined).Count | Should -Be 1
        $status.Quarantined[0].Id | Should -BeExactly $id
        $status.Quarantined[0].RequestedName | Should -BeExactly "q$([char]0xFFFE)$([char]0xFFFD).csv"

        Remove-XFlowDeliveryQuarantine -ConfigPath $script:S.Config -Id $id -Confirm:$false -PassThru |
            Select-Object -ExpandProperty Id | Should -BeExactly $id
        @((Get-XFlowDeliveryStatus -ConfigPath $script:S.Config).Quarantined).Count | Should -Be 0
        @(Get-XFlowDeliveryHistory -ConfigPath $script:S.Config -Id $id).Count | Should -Be 0 -Because 'a released delivery leaves the journal'
    }
}

Describe 'A delivery id with a lone surrogate: refused by name, never acknowledged under another id' {
    # JSON lets an id hold a lone surrogate (\ud800), which no Rust string can hold: read with
    # U+FFFD in its place, "twin\ud800" would become "twin<U+FFFD>", the id of another delivery.
    BeforeAll {
        $script:Fffd = [string][char]0xFFFD
        $script:Twins = @(
            @{ Id = 'twin{lone-surrogate:d800}'; System = 'SDLoen'; Name = 'lone.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes("lone;1`r`n") }
            @{ Id = "twin$script:Fffd"; System = 'SDLoen'; Name = 'twin.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes("twin;2`r`n") }
            @{ Id = 'plain'; System = 'Prisme'; Name = 'plain.txt'; Bytes = [Text.Encoding]::UTF8.GetBytes("plain;3`r`n") }
        )

        function script:Add-Twins {
            $list = foreach ($t in $script:Twins) {
                @{ id = $t.Id; system = $t.System; fileName = $t.Name; contentBase64 = [Convert]::ToBase64String($t.Bytes) }
            }
            Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'deliveries' -Body @{ deliveries = @($list) } | Out-Null
        }

        function script:Assert-Refused {
            # One UnreadableDeliveryId for the lone-surrogate delivery, nothing else failed.
            param($Run, [string]$Kept)
            $Run.Terminating | Should -BeNullOrEmpty
            @($Run.Errors).Count | Should -Be 1
            $Run.Errors[0].FullyQualifiedErrorId | Should -BeLike 'UnreadableDeliveryId,*'
            $Run.Errors[0].CategoryInfo.Category | Should -Be 'InvalidData'
            $Run.Errors[0].TargetObject | Should -BeExactly "twin$script:Fffd"
            $Run.Errors[0].Exception.Message | Should -BeLike "*lone surrogate*$Kept*"
            $Run.Summary[0].Outcome | Should -Be 'CompletedWithErrors'
            $Run.Summary[0].Failed | Should -Be 1
        }
    }

    It 'ack mode Ack: the other two are delivered and acknowledged, it stays pending on the server, run after run' {
        Reset-XFlowSim -Sim $script:Sim
        Add-Twins
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f

        $run = Invoke-Collect $params
        Assert-Refused $run -Kept 'stays pending on the server'
        $run.Summary[0].Delivered | Should -Be 2
        @($run.Files.Id | Sort-Object) | Should -BeExactly @('plain', "twin$script:Fffd")
        [IO.File]::ReadAllBytes((Join-Path $f.SdLoen 'twin.csv')) | Should -Be $script:Twins[1].Bytes
        Test-Path -LiteralPath (Join-Path $f.SdLoen 'lone.csv') | Should -BeFalse
        $sim = Get-XFlowSimDeliveries -Sim $script:Sim
        $lone = @($sim | Where-Object id -EQ $script:Twins[0].Id)
        $lone.state | Should -Be 'handedOut' -Because 'it is pending on the server: handed out, never acknowledged'
        $lone.ackCount | Should -Be 0
        (@($sim | Where-Object id -EQ "twin$script:Fffd")).state | Should -Be 'acked'

        $history = @(Get-XFlowDeliveryHistory -StatePath $f.State)
        @($history.Id | Sort-Object) | Should -BeExactly @('plain', "twin$script:Fffd")
        @($history | Where-Object RequestedName -EQ 'lone.csv').Count | Should -Be 0 -Because 'nothing is journaled under a changed id'
        $status = Get-XFlowDeliveryStatus -StatePath $f.State
        $status.LastRun.Outcome | Should -Be 'CompletedWithErrors'
        $status.LastRun.Failed | Should -Be 1
        $status.Healthy | Should -BeFalse

        # The next run meets it again and refuses it again; nothing is written twice.
        $again = Invoke-Collect $params
        Assert-Refused $again -Kept 'stays pending on the server'
        $again.Files | Should -BeNullOrEmpty
        (@(Get-XFlowSimDeliveries -Sim $script:Sim | Where-Object id -EQ $script:Twins[0].Id)).ackCount | Should -Be 0
    }

    It 'ack mode None: the page that brought it stays in the spool as the server sent it' {
        Reset-XFlowSim -Sim $script:Sim
        Invoke-XFlowSimControl -Sim $script:Sim -Method PUT -Path 'settings' -Body @{ mode = 'None' } | Out-Null
        Add-Twins
        $f = New-XFlowRunFolders -Parent $script:Work
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f -Extra @{ AckMode = 'None' }

        $run = Invoke-Collect $params
        Assert-Refused $run -Kept 'stays in*spool*'
        @($run.Files.Id | Sort-Object) | Should -BeExactly @('plain', "twin$script:Fffd")
        Test-Path -LiteralPath (Join-Path $f.SdLoen 'lone.csv') | Should -BeFalse
        $spooled = @(Get-ChildItem -LiteralPath (Join-Path $f.State 'spool') -Filter 'page-*.json')
        $spooled.Count | Should -Be 1
        [IO.File]::ReadAllText($spooled[0].FullName) | Should -BeLike '*"twin\ud800"*' -Because 'the page is kept exactly as the server sent it'
        (Get-XFlowDeliveryStatus -StatePath $f.State).InProgress | Should -Be 1

        # Recovery reads the kept page again on the next run: refused again, the others not written again.
        $again = Invoke-Collect $params
        Assert-Refused $again -Kept 'stays in*spool*'
        $again.Files | Should -BeNullOrEmpty
        @(Get-ChildItem -LiteralPath (Join-Path $f.State 'spool') -Filter 'page-*.json').Count | Should -Be 1
    }
}

Describe 'The token never stays in managed memory' -Skip:(-not $IsLinux) {
    # Linux only (a process's memory is read through /proc/self/mem). A child pwsh, which never
    # holds the token as a string, writes or reads a configuration file and then searches all its
    # own private writable memory for the token as .NET would hold it: UTF-16 (a string or char[]),
    # and its base64 text (the file's value) in ASCII and in UTF-16. Found means some copy was not
    # zeroed. The token in UTF-8 is not searched: the engine's HTTP client keeps copies of the
    # request headers that it does not zero (docs/design.md, "Secrets across the boundary").
    BeforeAll {
        $script:MemoryScript = @'
param($Mode, $Manifest, $ConfigPath, $PatternFile, $TokenFile, $BaseUrl, $SdLoenPath, $StatePath)
$ErrorActionPreference = 'Stop'
Add-Type -TypeDefinition @"
using System;
using System.IO;
public static class XFlowMemoryScan
{
    // Counts where each pattern (XOR 0x5A) occurs in the process's private writable memory.
    public static int[] Count(byte[][] masked)
    {
        var hits = new int[masked.Length];
        int longest = 0;
        foreach (var m in masked) longest = Math.Max(longest, m.Length);
        var buffer = new byte[1 << 20];
        using (var mem = new FileStream("/proc/self/mem", FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1))
        {
            foreach (var line in File.ReadAllLines("/proc/self/maps"))
            {
                var fields = line.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                if (!fields[1].StartsWith("rw") || fields[1][3] != 'p') continue;
                var range = fields[0].Split('-');
                long start = Convert.ToInt64(range[0], 16), end = Convert.ToInt64(range[1], 16);
                for (long at = start; at < end; at += buffer.Length - longest)
                {
                    int n;
                    try
                    {
                        mem.Seek(at, SeekOrigin.Begin);
                        n = mem.Read(buffer, 0, (int)Math.Min(buffer.Length, end - at));
                    }
                    catch (IOException) { break; }
                    for (int p = 0; p < masked.Length; p++)
                    {
                        var m = masked[p];
                        int first = m[0] ^ 0x5A;
                        for (int i = 0; i + m.Length <= n; i++)
                        {
                            if (buffer[i] != first) continue;
                            int k = 1;
                            while (k < m.Length && buffer[i + k] == (m[k] ^ 0x5A)) k++;
                            // A pattern that ends in the overlap is counted by the next window.
                            if (k == m.Length && (i < buffer.Length - longest || n < buffer.Length)) hits[p]++;
                        }
                    }
                    Array.Clear(buffer, 0, buffer.Length);
                    if (n < buffer.Length) break;
                }
            }
        }
        return hits;
    }
}
"@
$masked = [byte[][]]@(Get-Content -LiteralPath $PatternFile | ForEach-Object { ,[Convert]::FromBase64String($_) })
Import-Module $Manifest
if ($Mode -eq 'Write') {
    # The token, masked in its file, goes into the SecureString one char at a time: no string.
    $token = [Security.SecureString]::new()
    foreach ($b in [IO.File]::ReadAllBytes($TokenFile)) { $token.AppendChar([char]($b -bxor 0x5A)) }
    New-XFlowDeliveryConfig -Path $ConfigPath -BaseUrl $BaseUrl -ApiToken $token -SdLoenPath $SdLoenPath -StatePath $StatePath -WarningAction SilentlyContinue | Out-Null
    $token.Dispose()
    $done = "written=$(Test-Path -LiteralPath $ConfigPath)"
}
else {
    $run = @(Invoke-XFlowDelivery -ConfigPath $ConfigPath -WarningAction SilentlyContinue)
    $config = Get-XFlowDeliveryConfig -Path $ConfigPath
    $done = "delivered=$($run[-1].Delivered) tokenSet=$($config.TokenSet)"
}
[GC]::Collect()
[GC]::WaitForPendingFinalizers()
"$done hits=$([XFlowMemoryScan]::Count($masked) -join ',')"
'@

        function script:Invoke-MemoryChild {
            # Runs the script above in a child pwsh; returns its one line of output.
            param([string]$Mode, $Setup)
            $base64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($script:Sim.Token))
            # New-XFlowTestToken's characters never make a '/' (escaped "\/" in JSON) or a '+'.
            $base64 | Should -Match '^[A-Za-z0-9=]+$'
            $patterns = [byte[][]](
                [Text.Encoding]::Unicode.GetBytes($script:Sim.Token),
                [Text.Encoding]::ASCII.GetBytes($base64),
                [Text.Encoding]::Unicode.GetBytes($base64)
            )
            # Masked, so that the child never holds a pattern, or the token, in plain.
            $mask = { param([byte[]]$Bytes) [byte[]]@($Bytes | ForEach-Object { $_ -bxor 0x5A }) }
            $patternFile = Join-Path $Setup.Root 'patterns.txt'
            Set-Content -LiteralPath $patternFile -Value @($patterns | ForEach-Object { [Convert]::ToBase64String((& $mask $_)) })
            @(Get-Content -LiteralPath $patternFile).Count | Should -Be 3
            $tokenFile = Join-Path $Setup.Root 'token.masked'
            [IO.File]::WriteAllBytes($tokenFile, (& $mask ([Text.Encoding]::ASCII.GetBytes($script:Sim.Token))))
            $script = Join-Path $Setup.Root 'memory.ps1'
            Set-Content -LiteralPath $script -Encoding utf8 -Value $script:MemoryScript
            $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @(
                $Mode, (Get-XFlowModuleManifest), $Setup.Config, $patternFile, $tokenFile, $script:Sim.BaseUrl, $Setup.SdLoen, $Setup.State)
            $result.ExitCode | Should -Be 0 -Because $result.Output
            if ($Mode -eq 'Write') {
                [IO.File]::ReadAllText($Setup.Config) | Should -BeLike "*`"$base64`"*" -Because 'the file holds the value searched for'
            }
            $result.Output
        }
    }

    It 'after Invoke-XFlowDelivery -ConfigPath and Get-XFlowDeliveryConfig, no form of it is left in the process' {
        Reset-XFlowSim -Sim $script:Sim
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes("a;1`r`n") }) | Out-Null
        $s = New-Setup
        $output = Invoke-MemoryChild -Mode Read -Setup $s
        $output | Should -Match 'delivered=1 tokenSet=True hits=' -Because 'the run used the token from the file'
        $output | Should -Match 'hits=0,0,0\b' -Because "UTF-16 token, ASCII base64, UTF-16 base64: $output"
    }

    It 'after New-XFlowDeliveryConfig, no form of it is left in the process' {
        $s = New-Setup
        Remove-Item -LiteralPath $s.Config
        $output = Invoke-MemoryChild -Mode Write -Setup $s
        $output | Should -Match 'written=True hits='
        $output | Should -Match 'hits=0,0,0\b' -Because "UTF-16 token, ASCII base64, UTF-16 base64: $output"
    }
}

Describe 'Ctrl+C comes back within 2 seconds' -Skip:$IsWindows {
    # Ctrl+C is a stop of the pipeline: PowerShell.Stop() on a pipeline running in its own
    # runspace here (what the console host does on Ctrl+C), SIGINT to a child pwsh below.
    BeforeAll {
        function script:New-Fifo {
            param([string]$Path)
            & mkfifo $Path
            if ($LASTEXITCODE -ne 0) { throw "mkfifo $Path failed" }
        }

        # Presses Ctrl+C from inside the cmdlet's WriteVerbose call whose message starts with a
        # given text: the verbose stream raises DataAdded on the pipeline thread, so the cmdlet
        # goes on only once its StopProcessing has run. WriteVerbose itself does not check for a
        # stop (ShouldProcess and WriteObject do), so the cmdlet's own check is all that guards
        # the code after it.
        Add-Type -TypeDefinition @'
using System;
using System.Management.Automation;
using System.Threading;

public static class XFlowStopAtVerbose
{
    public static DateTime PressedAt;

    public static void Arm(PowerShell ps, string prefix)
    {
        ps.Streams.Verbose.DataAdded += (sender, e) =>
        {
            var record = ((PSDataCollection<VerboseRecord>)sender)[e.Index];
            if (!record.Message.StartsWith(prefix, StringComparison.Ordinal)) return;
            PressedAt = DateTime.UtcNow;
            ps.BeginStop(null, null);
            // BeginStop calls StopProcessing on a thread-pool thread at once; 1 s is ample even
            // on a loaded machine, and still leaves the stop within the 2 s asserted.
            Thread.Sleep(1000);
        };
    }
}
'@

        function script:Start-Pipeline {
            # Start-XFlowPipeline with verbose output on: that is how a test sees progress, and
            # without it no Write* call is made that would notice a stop by itself.
            # -StopAtVerbose: Ctrl+C is pressed while the cmdlet writes a verbose line starting
            # with that text.
            param([string]$Command, [hashtable]$Parameters, [switch]$Quiet, [string]$StopAtVerbose)
            $ps = [powershell]::Create()
            if ($StopAtVerbose) { [XFlowStopAtVerbose]::Arm($ps, $StopAtVerbose) }
            $arguments = $Parameters.Clone()
            if (-not $Quiet) { $arguments['Verbose'] = $true }
            Start-XFlowPipeline -Command $Command -Parameters $arguments -PowerShell $ps
        }

        function script:Wait-Verbose {
            # Until the pipeline has written a verbose line matching $Like.
            param($Pipeline, [string]$Like, [int]$TimeoutSec = 30)
            $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
            while (-not @($Pipeline.PowerShell.Streams.Verbose | Where-Object Message -Like $Like)) {
                if ([DateTime]::UtcNow -gt $deadline -or $Pipeline.Async.IsCompleted) {
                    $errors = @($Pipeline.PowerShell.Streams.Error) -join '; '
                    throw "no verbose line like '$Like' (completed: $($Pipeline.Async.IsCompleted); errors: $errors)"
                }
                Start-Sleep -Milliseconds 50
            }
        }

        function script:Stop-Timed {
            # Presses Ctrl+C: returns how long the stop took (at most 10 s are waited for; a
            # stop that hangs is left behind).
            param($Pipeline)
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $stopping = $Pipeline.PowerShell.BeginStop($null, $null)
            $null = $stopping.AsyncWaitHandle.WaitOne(10000)
            $watch.Stop()
            $watch.Elapsed
        }

        function script:Get-SilentListener {
            # A loopback TCP listener that accepts connections and never answers a byte.
            $listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
            $listener.Start()
            $listener
        }
    }

    It 'Invoke-XFlowDelivery blocked in a state-folder write: the stop returns in time, the run ends later and loses nothing' {
        Reset-XFlowSim -Sim $script:Sim
        $ids = @((Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [byte[]](1, 2, 3) })).ids)
        $f = New-XFlowRunFolders -Parent $script:Work
        New-Item -ItemType Directory -Path $f.State | Out-Null
        # The lock file is a FIFO: opening it for writing blocks until someone reads it, as a
        # write to a hung share blocks; no cancellation reaches a thread stuck in that call.
        $lock = Join-Path $f.State 'run.lock'
        New-Fifo $lock
        $pipeline = Start-Pipeline -Command 'Invoke-XFlowDelivery' -Parameters (Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f)
        try {
            Wait-Verbose -Pipeline $pipeline -Like 'Fetching deliveries*'
            Start-Sleep -Milliseconds 500
            $took = Stop-Timed -Pipeline $pipeline
            $took.TotalSeconds | Should -BeLessThan 2
            $pipeline.Async.IsCompleted | Should -BeTrue
        }
        finally {
            $pipeline.PowerShell.Dispose()
        }
        # Unblock the detached run: it opens the lock file, sees the cancellation and ends. cat
        # reads end-of-file once the run has closed the lock file, i.e. released the lock (cat,
        # because .NET's own open would try to lock the file the run holds).
        & timeout 15 cat $lock | Out-Null
        $LASTEXITCODE | Should -Be 0 -Because 'the detached run ends once unblocked'
        Remove-Item -LiteralPath $lock
        (Get-XFlowSimDeliveries -Sim $script:Sim).state | Should -Be 'pending'
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $f
        $out = @(Invoke-XFlowDelivery @params)
        $out[-1].Outcome | Should -Be 'Succeeded'
        @($out | Where-Object Id -EQ $ids[0]).Count | Should -Be 1
    }

    It 'Ctrl+C (SIGINT) in a console while the run is blocked: back within 2 s, with the warning that the run finishes in the background' {
        Reset-XFlowSim -Sim $script:Sim
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [byte[]](1) }) | Out-Null
        $s = New-Setup
        New-Item -ItemType Directory -Path $s.State -Force | Out-Null
        & chmod 700 $s.State
        # The run blocks opening its lock file (a FIFO nobody reads), as a write to a hung share
        # would, so it cannot end within the cmdlet's bounded wait for it.
        New-Fifo (Join-Path $s.State 'run.lock')
        $script = Join-Path $s.Root 'console.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value @'
param($Manifest, $ConfigPath)
Import-Module $Manifest
try { Invoke-XFlowDelivery -ConfigPath $ConfigPath -Verbose }
finally { [Console]::Out.WriteLine('returned at ' + [DateTime]::UtcNow.ToString('o')) }
'@
        $pwsh = Get-XFlowPwshCommand
        $psi = [Diagnostics.ProcessStartInfo]::new($pwsh.FilePath)
        Add-XFlowArgument -StartInfo $psi -ArgumentList (@($pwsh.Prefix) + @('-NoProfile', '-NonInteractive', '-File', $script, (Get-XFlowModuleManifest), $s.Config))
        $psi.UseShellExecute = $false
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $psi.RedirectStandardInput = $true
        $p = [Diagnostics.Process]::Start($psi)
        try {
            $p.StandardInput.Close()
            $stderr = $p.StandardError.ReadToEndAsync()
            $seen = [Text.StringBuilder]::new()
            $deadline = [DateTime]::UtcNow.AddSeconds(60)
            while ($seen.ToString() -notlike '*Fetching deliveries*') {
                $line = $p.StandardOutput.ReadLineAsync()
                while (-not $line.Wait(100)) {
                    if ([DateTime]::UtcNow -gt $deadline) { throw "the run did not start: $seen $($stderr.Result)" }
                }
                if ($null -eq $line.Result) { throw "the console ended early: $seen $($stderr.Result)" }
                [void]$seen.AppendLine($line.Result)
            }
            Start-Sleep -Milliseconds 500
            $pressed = [DateTime]::UtcNow
            & kill -INT $p.Id
            $rest = $p.StandardOutput.ReadToEndAsync()
            $p.WaitForExit(15000) | Should -BeTrue -Because 'the console ends after Ctrl+C'
            $output = $seen.ToString() + $rest.Result + $stderr.Result
        }
        finally { if (-not $p.HasExited) { Stop-XFlowProcessTree $p } }
        $returned = [regex]::Match($output, 'returned at (\S+)')
        $returned.Success | Should -BeTrue -Because "the stopped command returns ($output)"
        ([DateTime]::Parse($returned.Groups[1].Value).ToUniversalTime() - $pressed).TotalSeconds | Should -BeLessThan 2
        $output | Should -BeLike "*WARNING: The run did not stop within 1 s*finishes in the background*holds the lock on the state folder '$($s.State)'*If this PowerShell process ends first, the run ends with it*"
        (Get-XFlowSimDeliveries -Sim $script:Sim).state | Should -Be 'pending'
    }

    It 'Test-XFlowDeliveryConnection against a host that accepts and never answers: the stop returns in time' {
        $listener = Get-SilentListener
        try {
            $f = New-XFlowRunFolders -Parent $script:Work
            $params = @{
                BaseUrl    = "https://127.0.0.1:$($listener.LocalEndpoint.Port)/api/v1/"
                ApiToken   = ConvertTo-SecureString (New-XFlowTestToken) -AsPlainText -Force
                SdLoenPath = $f.SdLoen
                StatePath  = $f.State
                TimeoutSec = 60
            }
            $pipeline = Start-Pipeline -Command 'Test-XFlowDeliveryConnection' -Parameters $params
            try {
                # Let it connect and wait for the TLS answer that never comes.
                Start-Sleep -Seconds 2
                $pipeline.Async.IsCompleted | Should -BeFalse
                $took = Stop-Timed -Pipeline $pipeline
                $took.TotalSeconds | Should -BeLessThan 2
                $pipeline.Async.IsCompleted | Should -BeTrue
            }
            finally { $pipeline.PowerShell.Dispose() }
            Test-Path -LiteralPath $f.State | Should -BeFalse -Because 'no check runs after the stop'
        }
        finally { $listener.Stop() }
    }

    It 'a stop after the configuration was read and confirmed, before the run starts, starts no run' {
        Reset-XFlowSim -Sim $script:Sim
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [byte[]](1) }) | Out-Null
        $s = New-Setup
        # "Fetching deliveries …" is the cmdlet's last word before it starts the run.
        $pipeline = Start-Pipeline -Command 'Invoke-XFlowDelivery' -Parameters @{ ConfigPath = $s.Config } -StopAtVerbose 'Fetching deliveries'
        try {
            $pipeline.Async.AsyncWaitHandle.WaitOne(15000) | Should -BeTrue -Because 'the stopped pipeline ends'
            ([DateTime]::UtcNow - [XFlowStopAtVerbose]::PressedAt).TotalSeconds | Should -BeLessThan 2
            $pipeline.PowerShell.InvocationStateInfo.State | Should -Be 'Stopped'
            @($pipeline.PowerShell.Streams.Verbose | Where-Object Message -Like 'Fetching deliveries*').Count | Should -Be 1 -Because 'the stop came at that line'
        }
        finally { $pipeline.PowerShell.Dispose() }
        Test-Path -LiteralPath $s.State | Should -BeFalse -Because 'no run started: not even the state folder was created'
        (Get-XFlowSimDeliveries -Sim $script:Sim).handedOutCount | Should -Be 0
    }
}
