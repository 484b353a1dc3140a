# The scheduled task: the entry script XFlowDelivery.Task.ps1 in a child process
# (`pwsh -NoProfile -NonInteractive -File <script> -ConfigPath <file>`, for runs by hand and tasks
# registered by earlier builds) with one exit code per outcome, the task definitions
# Register-XFlowDeliveryTask produces, and their command line run as systemd and Task Scheduler
# run it (the newest module found by name and imported, the exit code passed through);
# on Windows, as administrator, the task registered in Task Scheduler (a folder of its own) and the
# runs' events in the Application log.
BeforeDiscovery {
    # -Skip conditions are evaluated at discovery, before BeforeAll.
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
    $script:Elevated = Test-XFlowWindowsAdministrator
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-task'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:EntryScript = Join-Path (Split-Path -Parent (Get-XFlowModuleManifest)) 'XFlowDelivery.Task.ps1'
    $script:Sim = Start-XFlowSim
    $script:Outputs = [Collections.Generic.List[string]]::new()
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
    $script:Elevated = Test-XFlowWindowsAdministrator

    function script:New-TaskSetup {
        # Folders and a configuration file (written by the module itself) for one scenario.
        param([string]$Token = $script:Sim.Token, [string]$BaseUrl = $script:Sim.BaseUrl, [int]$TimeoutSec = 20, [hashtable]$Extra = @{})
        $root = New-XFlowTestDirectory -Name 'task'
        $setup = [pscustomobject]@{
            Root   = $root
            SdLoen = Join-Path $root 'SD Løn'
            Prisme = Join-Path $root 'Prisme'
            State  = Join-Path $root 'state'
            Config = Join-Path $root 'xflow config.json'
        }
        New-Item -ItemType Directory -Path $setup.SdLoen, $setup.Prisme -Force | Out-Null
        New-XFlowDeliveryConfig -Path $setup.Config -BaseUrl $BaseUrl -ApiToken (ConvertTo-SecureString $Token -AsPlainText -Force) `
            -SdLoenPath $setup.SdLoen -PrismePath $setup.Prisme -StatePath $setup.State -CaCertificatePath $script:Sim.CaPath `
            -TimeoutSec $TimeoutSec -WarningAction SilentlyContinue @Extra | Out-Null
        $setup
    }

    function script:Invoke-TaskScript {
        param([Parameter(Mandatory)][string]$ConfigPath, [string]$ScriptPath = $script:EntryScript)
        $result = Invoke-XFlowChildPwsh -ScriptPath $ScriptPath -ArgumentList @('-ConfigPath', $ConfigPath)
        $script:Outputs.Add($result.Output)
        $result
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'The task entry script''s exit codes (pwsh -File, child process)' {
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'is shipped in the module' {
        Test-Path -LiteralPath $script:EntryScript | Should -BeTrue
    }

    It 'exits 0 after delivering, and 0 again when nothing is pending' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen', 'Prisme') } | Out-Null
        $first = Invoke-TaskScript -ConfigPath $setup.Config
        $first.ExitCode | Should -Be 0 -Because $first.Output
        $first.Output | Should -Match 'Succeeded; 2 delivered'
        $files = @(Get-ChildItem -LiteralPath $setup.SdLoen, $setup.Prisme -File)
        $files.Count | Should -Be 2
        # A line per delivered file as it lands, then the run's line last.
        $lines = @($first.Output -split '\r?\n' | Where-Object { $_ })
        $lines.Count | Should -Be 3 -Because $first.Output
        foreach ($file in $files) {
            $system = if ($file.DirectoryName -eq $setup.SdLoen) { 'SDLoen' } else { 'Prisme' }
            $lines[0..1] | Should -Contain "Delivered $system $($file.FullName) ($($file.Length) bytes)"
        }
        $lines[2] | Should -Match '^XFlowDelivery run [0-9a-f-]{36}: Succeeded; 2 delivered, 0 failed, 0 skipped, 0 acknowledged again; exit code 0 \(no action needed\)\.$'
        $second = Invoke-TaskScript -ConfigPath $setup.Config
        $second.ExitCode | Should -Be 0 -Because $second.Output
        $second.Output | Should -Match 'Succeeded; 0 delivered'
    }

    It 'exits 0 when another run holds the state folder''s lock, and touches nothing' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        New-Item -ItemType Directory -Path $setup.State -Force | Out-Null
        $lock = Join-Path $setup.State 'run.lock'
        if ($script:OnWindows) {
            # This process holds the lock: a byte-range lock (LockFile) that the engine's LockFileEx
            # over the whole file runs into, as it would into a running delivery's.
            $held = [IO.File]::Open($lock, 'OpenOrCreate', 'ReadWrite', 'ReadWrite, Delete')
            try {
                $held.Lock(0, 1)
                $result = Invoke-TaskScript -ConfigPath $setup.Config
            }
            finally { $held.Dispose() }
        }
        else {
            # Another process holds the lock (flock, as a running delivery would).
            $psi = [Diagnostics.ProcessStartInfo]::new('python3')
            foreach ($a in '-c', 'import fcntl,sys; f=open(sys.argv[1],"a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); sys.stdin.read()', $lock) { $psi.ArgumentList.Add($a) }
            $psi.RedirectStandardInput = $true
            $psi.RedirectStandardOutput = $true
            $psi.UseShellExecute = $false
            $holder = [Diagnostics.Process]::Start($psi)
            try {
                $holder.StandardOutput.ReadLine() | Should -Be 'locked'
                $result = Invoke-TaskScript -ConfigPath $setup.Config
            }
            finally {
                $holder.StandardInput.Close()
                if (-not $holder.WaitForExit(10000)) { $holder.Kill() }
                $holder.Dispose()
            }
        }
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match 'Locked'
        @(Get-ChildItem -LiteralPath $setup.SdLoen -Force).Count | Should -Be 0
        (Get-XFlowSimState -Sim $script:Sim).counts.pending | Should -Be 1
    }

    It 'exits 2 when the configuration file is missing or not valid' {
        $setup = New-TaskSetup
        $missing = Invoke-TaskScript -ConfigPath (Join-Path $setup.Root 'nope.json')
        $missing.ExitCode | Should -Be 2 -Because $missing.Output
        $missing.Output | Should -Match 'does not exist'
        Set-Content -LiteralPath $setup.Config -Value '{ "schemaVersion": 1, "baseUrl": ' -Encoding utf8
        $broken = Invoke-TaskScript -ConfigPath $setup.Config
        $broken.ExitCode | Should -Be 2 -Because $broken.Output
        $broken.Output | Should -Match 'not valid'
    }

    It 'exits 3 when XFlow refuses the token, and nothing is written' {
        $setup = New-TaskSetup -Token ($script:Sim.Token + '-revoked')
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 3 -Because $result.Output
        @(Get-ChildItem -LiteralPath $setup.SdLoen -Force).Count | Should -Be 0
    }

    It 'exits 3 when the token in the file cannot be decrypted, naming the running account' {
        $setup = New-TaskSetup
        $doc = Get-Content -LiteralPath $setup.Config -Raw | ConvertFrom-Json
        $doc.token.protection = 'DpapiCurrentUser'
        $doc.token.protectedBy = 'KOMMUNE\someone-else'
        # A blob no DPAPI key opens: on Windows too, where this account would decrypt its own token.
        $doc.token.value = [Convert]::ToBase64String([byte[]](1..64))
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $setup.Config -Encoding utf8
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 3 -Because $result.Output
        $result.Output | Should -Match ([regex]::Escape("$([Environment]::UserDomainName)\$([Environment]::UserName)"))
        $result.Output | Should -Match 'New-XFlowDeliveryConfig'
    }

    It 'exits 4 when the server cannot be reached' {
        $setup = New-TaskSetup -BaseUrl "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/api/v1/" -TimeoutSec 5
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 4 -Because $result.Output
        $result.Output | Should -Match 'Failed'
    }

    It 'exits 5 when an import folder is missing, and acknowledges nothing' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        Remove-Item -LiteralPath $setup.SdLoen -Recurse -Force
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 5 -Because $result.Output
        (Get-XFlowSimState -Sim $script:Sim).counts.pending | Should -Be 1
    }

    It 'exits 6 when a delivery is quarantined (content does not match its sha256), and on the next run while it stays quarantined' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen') } | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'wrongSha256' } | Out-Null
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 6 -Because $result.Output
        $result.Output | Should -Match 'CompletedWithErrors'
        $result.Output | Should -Match 'First error: .*sha256'
        @(Get-ChildItem -LiteralPath $setup.SdLoen -File).Count | Should -Be 1
    }

    It 'exits 6 when a delivery names an unknown system' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'unknownSystem' } | Out-Null
        $result = Invoke-TaskScript -ConfigPath $setup.Config
        $result.ExitCode | Should -Be 6 -Because $result.Output
    }

    It 'exits 7 while an importer has stopped, naming the folder and the oldest file on every run, and 0 once the folder drains' {
        $setup = New-TaskSetup -Extra @{ PrismeStallAfterMinutes = 1 }
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'Prisme'; FileName = 'G69_first.txt'; Bytes = [Text.Encoding]::ASCII.GetBytes("x`r`n") },
            @{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [Text.Encoding]::ASCII.GetBytes("y`r`n") }
        ) | Out-Null
        $first = Invoke-TaskScript -ConfigPath $setup.Config
        $first.ExitCode | Should -Be 0 -Because $first.Output
        # A file the module did not publish is not its business.
        Set-Content -LiteralPath (Join-Path $setup.Prisme 'manual.txt') -Value 'not ours'
        Start-Sleep -Seconds 62
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'Prisme'; FileName = 'G69_second.txt'; Bytes = [Text.Encoding]::ASCII.GetBytes("z`r`n") }) | Out-Null
        foreach ($run in 1, 2) {
            $stalled = Invoke-TaskScript -ConfigPath $setup.Config
            $stalled.ExitCode | Should -Be 7 -Because $stalled.Output
            $stalled.Output | Should -Match 'ImportStalled'
            $stalled.Output | Should -Match ([regex]::Escape("Import stalled: Prisme import folder $($setup.Prisme): 1 file(s) not picked up after 1 min; oldest G69_first.txt (1 min)"))
            $stalled.Output | Should -Match 'an importer has stopped'
        }
        $status = Get-XFlowDeliveryStatus -ConfigPath $setup.Config
        $status.Healthy | Should -BeFalse
        $status.ImportStalls.Count | Should -Be 1
        $status.ImportStalls[0].OldestFile | Should -Be 'G69_first.txt'
        $status.LastRun.ExitCode | Should -Be 7

        Remove-Item -LiteralPath (Join-Path $setup.Prisme 'G69_first.txt')
        $drained = Invoke-TaskScript -ConfigPath $setup.Config
        $drained.ExitCode | Should -Be 0 -Because $drained.Output
        $drained.Output | Should -Not -Match 'Import stalled'
        (Get-XFlowDeliveryStatus -ConfigPath $setup.Config).ImportStalls.Count | Should -Be 0
    }

    It 'exits 1 when the script itself fails (the module cannot be loaded)' {
        $setup = New-TaskSetup
        $lonely = Join-Path $setup.Root 'lonely'
        New-Item -ItemType Directory -Path $lonely | Out-Null
        Copy-Item -LiteralPath $script:EntryScript -Destination $lonely
        $result = Invoke-TaskScript -ConfigPath $setup.Config -ScriptPath (Join-Path $lonely 'XFlowDelivery.Task.ps1')
        $result.ExitCode | Should -Be 1 -Because $result.Output
        $result.Output | Should -Match 'XFlowDelivery run did not start: the module could not be imported; exit code 1\. First error: .*XFlowDelivery\.dll'
    }

    It 'never prints the token, whatever the outcome' {
        $script:Outputs.Count | Should -BeGreaterThan 5
        foreach ($output in $script:Outputs) {
            $output.Contains($script:Sim.Token) | Should -BeFalse
        }
    }
}

Describe 'Invoke-XFlowDelivery -AsScheduledTask (what the entry script runs), in this process' {
    BeforeAll {
        function script:Invoke-AsTask {
            # Runs the cmdlet as the entry script does, with standard output captured; returns what
            # it wrote to the pipeline, to the error stream and to standard output.
            param([Parameter(Mandatory)][string]$ConfigPath)
            $console = [Console]::Out
            $captured = [IO.StringWriter]::new()
            [Console]::SetOut($captured)
            try {
                $output = @(Invoke-XFlowDelivery -ConfigPath $ConfigPath -AsScheduledTask -ErrorVariable runErrors -ErrorAction SilentlyContinue)
            }
            finally { [Console]::SetOut($console) }
            [pscustomobject]@{ Output = $output; Errors = @($runErrors); Lines = @($captured.ToString() -split '\r?\n' | Where-Object { $_ }) }
        }
    }
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'prints a line per delivered file and the run''s line, and writes only the exit code 0' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen') } | Out-Null
        $run = Invoke-AsTask -ConfigPath $setup.Config
        $run.Output | Should -Be @(0)
        $run.Output[0] | Should -BeOfType ([int])
        $run.Errors.Count | Should -Be 0
        $files = @(Get-ChildItem -LiteralPath $setup.SdLoen -File)
        $files.Count | Should -Be 2
        $run.Lines.Count | Should -Be 3 -Because ($run.Lines -join "`n")
        foreach ($file in $files) { $run.Lines[0..1] | Should -Contain "Delivered SDLoen $($file.FullName) ($($file.Length) bytes)" }
        $run.Lines[2] | Should -Match '^XFlowDelivery run [0-9a-f-]{36}: Succeeded; 2 delivered, 0 failed'
    }

    It 'reports a failure that ends the run in its line and exit code (2) instead of throwing' {
        $missing = Join-Path (New-XFlowTestDirectory -Name 'task') 'nope.json'
        $run = Invoke-AsTask -ConfigPath $missing
        $run.Output | Should -Be @(2)
        $run.Lines.Count | Should -Be 1
        $run.Lines[0] | Should -Match '^XFlowDelivery run did not start; exit code 2 \(.+\)\. First error: .*nope\.json.*does not exist'
    }

    It 'writes a delivery''s error to the error stream and names the first in the line (exit code 6)' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen') } | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'wrongSha256' } | Out-Null
        $run = Invoke-AsTask -ConfigPath $setup.Config
        $run.Output | Should -Be @(6)
        $run.Errors.Count | Should -Be 1
        $run.Lines[-1] | Should -Match ('CompletedWithErrors.* First error: ' + [regex]::Escape($run.Errors[0].Exception.Message.Split("`n")[0]) + '$')
    }
}

Describe 'The exit-code mapping (one place: [XFlowDelivery.ExitCodes])' {
    It 'maps <Outcome>/<ErrorId> to <Code>' -TestCases @(
        @{ Outcome = 'Succeeded'; ErrorId = $null; Code = 0 }
        @{ Outcome = 'Locked'; ErrorId = $null; Code = 0 }
        @{ Outcome = 'CompletedWithErrors'; ErrorId = $null; Code = 6 }
        @{ Outcome = 'ImportStalled'; ErrorId = $null; Code = 7 }
        @{ Outcome = 'Failed'; ErrorId = 'InvalidContent'; Code = 6 }
        @{ Outcome = 'Cancelled'; ErrorId = 'Cancelled'; Code = 1 }
        @{ Outcome = 'Failed'; ErrorId = 'Internal'; Code = 1 }
        @{ Outcome = 'Failed'; ErrorId = 'InvalidConfiguration'; Code = 2 }
        @{ Outcome = 'Failed'; ErrorId = 'InsecureUrl'; Code = 2 }
        @{ Outcome = 'Failed'; ErrorId = 'AuthenticationFailed'; Code = 3 }
        @{ Outcome = 'Failed'; ErrorId = 'ServerUnreachable'; Code = 4 }
        @{ Outcome = 'Failed'; ErrorId = 'Timeout'; Code = 4 }
        @{ Outcome = 'Failed'; ErrorId = 'ServerError'; Code = 4 }
        @{ Outcome = 'Failed'; ErrorId = 'ProtocolError'; Code = 4 }
        @{ Outcome = 'Failed'; ErrorId = 'DeadlineExceeded'; Code = 4 }
        @{ Outcome = 'Failed'; ErrorId = 'FolderNotFound'; Code = 5 }
        @{ Outcome = 'Failed'; ErrorId = 'AccessDenied'; Code = 5 }
        @{ Outcome = 'Failed'; ErrorId = 'DiskFull'; Code = 5 }
        @{ Outcome = 'Failed'; ErrorId = 'PublishFailed'; Code = 5 }
        @{ Outcome = 'Failed'; ErrorId = 'SomethingNew'; Code = 1 }
    ) {
        [XFlowDelivery.ExitCodes]::FromOutcome($Outcome, $ErrorId) | Should -Be $Code
        ([XFlowDelivery.Model.XFlowRunSummary]@{ Outcome = $Outcome; ErrorId = $ErrorId }).ExitCode | Should -Be $Code
    }
}

Describe 'Task definitions' {
    BeforeAll {
        $script:Settings = [XFlowDelivery.XFlowTaskSettings]@{
            PowerShellPath            = 'C:\Program Files\PowerShell\7\pwsh.exe'
            ConfigPath                = 'C:\ProgramData\XFlowDelivery\config & løn.json'
            ModuleAssemblyPath        = 'C:\Program Files\PowerShell\Modules\XFlowDelivery\1.2.0\XFlowDelivery.dll'
            WorkingDirectory          = 'C:\ProgramData\XFlowDelivery'
            Account                   = 'KOMMUNE\svc-xflow$'
            LogonType                 = 'Password'
            IntervalMinutes           = 3
            ExecutionTimeLimitMinutes = 15
            StartBoundary             = [datetime]'2025-01-01T00:00:00'
        }
    }

    It 'Task Scheduler XML: every 3 minutes without end, IgnoreNew, StartWhenAvailable, a time limit in minutes, least privilege, the account, and an action that imports the registered module or finds one by name' {
        [xml]$xml = [XFlowDelivery.XFlowDeliveryTaskDefinition]::ToTaskSchedulerXml($script:Settings)
        $ns = [Xml.XmlNamespaceManager]::new($xml.NameTable)
        $ns.AddNamespace('t', 'http://schemas.microsoft.com/windows/2004/02/mit/task')
        $one = { param($xpath) $xml.SelectSingleNode($xpath, $ns) }
        (& $one '/t:Task/t:RegistrationInfo/t:URI').InnerText | Should -Be '\XFlowDelivery\XFlowDelivery'
        $repetition = & $one '/t:Task/t:Triggers/t:TimeTrigger/t:Repetition'
        $repetition.SelectSingleNode('t:Interval', $ns).InnerText | Should -Be 'PT3M'
        $repetition.SelectSingleNode('t:Duration', $ns) | Should -BeNullOrEmpty -Because 'no Duration means it repeats without end'
        (& $one '/t:Task/t:Settings/t:MultipleInstancesPolicy').InnerText | Should -Be 'IgnoreNew'
        (& $one '/t:Task/t:Settings/t:StartWhenAvailable').InnerText | Should -Be 'true'
        (& $one '/t:Task/t:Settings/t:ExecutionTimeLimit').InnerText | Should -Be 'PT15M'
        (& $one '/t:Task/t:Principals/t:Principal/t:UserId').InnerText | Should -Be 'KOMMUNE\svc-xflow$'
        (& $one '/t:Task/t:Principals/t:Principal/t:LogonType').InnerText | Should -Be 'Password'
        (& $one '/t:Task/t:Principals/t:Principal/t:RunLevel').InnerText | Should -Be 'LeastPrivilege'
        (& $one '/t:Task/t:Actions/t:Exec/t:Command').InnerText | Should -Be 'C:\Program Files\PowerShell\7\pwsh.exe'
        (& $one '/t:Task/t:Actions/t:Exec/t:WorkingDirectory').InnerText | Should -Be 'C:\ProgramData\XFlowDelivery'
        $arguments = (& $one '/t:Task/t:Actions/t:Exec/t:Arguments').InnerText
        # The registered copy first; when it is gone, the module looked up by name (text run only then).
        $arguments | Should -BeLike '-NoProfile -NonInteractive -Command "*"'
        $arguments | Should -Match ([regex]::Escape("try { try { Import-Module -Name 'C:\Program Files\PowerShell\Modules\XFlowDelivery\1.2.0\XFlowDelivery.dll' -ErrorAction Stop } catch { Invoke-Expression '`$dll = `$null;"))
        $arguments | Should -Match ([regex]::Escape("foreach (`$root in `$env:PSModulePath -split ''$([IO.Path]::PathSeparator)'')"))
        $arguments | Should -Match ([regex]::Escape("exit (Invoke-XFlowDelivery -ConfigPath 'C:\ProgramData\XFlowDelivery\config & løn.json' -AsScheduledTask)"))
        $arguments | Should -Match '-AsScheduledTask\)"$'
    }

    It 'the command line and the texts it gives Invoke-Expression are PowerShell without a syntax error' {
        $static = [Reflection.BindingFlags]'Static, NonPublic, Public'
        $definition = [XFlowDelivery.XFlowDeliveryTaskDefinition]
        $texts = [ordered]@{
            EntryCommand             = $definition::EntryCommand("C:\it's 100% `$HOME.json", 'C:\Program Files\PowerShell\Modules\XFlowDelivery\1.2.0\XFlowDelivery.dll')
            LookupScript             = $definition.GetField('LookupScript', $static).GetValue($null)
            ImportFailureEventScript = $definition.GetField('ImportFailureEventScript', $static).GetValue($null)
        }
        foreach ($t in $texts.GetEnumerator()) {
            $errors = $null
            $null = [Management.Automation.Language.Parser]::ParseInput($t.Value, [ref]$null, [ref]$errors)
            @($errors).Count | Should -Be 0 -Because "$($t.Key): $($errors -join '; ')"
        }
    }

    It '-TaskPath: the folder in the one form the Task Scheduler API takes, the task''s URI in it, and a path that names no folder refused' {
        $good = [ordered]@{ '\XFlowDelivery\' = '\XFlowDelivery'; 'XFlowDelivery' = '\XFlowDelivery'; '\Kommune\XFlow Løn\' = '\Kommune\XFlow Løn'; '\' = '\' }
        foreach ($path in $good.Keys) {
            [XFlowDelivery.XFlowDeliveryTaskDefinition]::TaskFolderFor($path) | Should -Be $good[$path] -Because $path
        }
        foreach ($path in '\XFlowDelivery\..\Tests\', '\.\', '\A\\B\', '\\A', '\A:B\', 'A/B', '\A*\', ' ', "\A`tB\") {
            [XFlowDelivery.XFlowDeliveryTaskDefinition]::TaskFolderFor($path) | Should -BeNullOrEmpty -Because "'$path' names no folder"
        }
        $ns = @{ t = 'http://schemas.microsoft.com/windows/2004/02/mit/task' }
        foreach ($case in @(@{ Folder = '\Kommune\XFlow Løn'; Uri = '\Kommune\XFlow Løn\XFlowDelivery-test' }, @{ Folder = '\'; Uri = '\XFlowDelivery-test' })) {
            $s = [XFlowDelivery.XFlowTaskSettings]@{ TaskName = 'XFlowDelivery-test'; TaskFolder = $case.Folder; PowerShellPath = 'C:\pwsh.exe'; ConfigPath = 'C:\x.json'; WorkingDirectory = 'C:\'; Account = 'KOMMUNE\svc$' }
            [xml]$xml = [XFlowDelivery.XFlowDeliveryTaskDefinition]::ToTaskSchedulerXml($s)
            (Select-Xml -Xml $xml -XPath '/t:Task/t:RegistrationInfo/t:URI' -Namespace $ns).Node.InnerText | Should -Be $case.Uri
        }
    }

    It 'systemd: a oneshot service running the same command as the account, and a 3-minute timer' {
        $s = [XFlowDelivery.XFlowTaskSettings]@{
            PowerShellPath = '/opt/microsoft/powershell/7/pwsh'
            ConfigPath = "/etc/xflow/100% `$HOME it's.json"; WorkingDirectory = '/etc/xflow'; Account = 'xflow'
        }
        $service = [XFlowDelivery.XFlowDeliveryTaskDefinition]::ToSystemdService($s)
        $timer = [XFlowDelivery.XFlowDeliveryTaskDefinition]::ToSystemdTimer($s)
        $service | Should -Match '(?m)^Type=oneshot$'
        $service | Should -Match '(?m)^User=xflow$'
        $service | Should -Match '(?m)^TimeoutStartSec=15min$'
        # % and $ are escaped, so systemd expands nothing: the argv is exactly this.
        $service | Should -Match ([regex]::Escape("-ConfigPath '/etc/xflow/100%% `$`$HOME it''s.json'"))
        $execStart = ([regex]::Match($service, '(?m)^ExecStart=(.*)$')).Groups[1].Value
        $argv = Split-XFlowSystemdCommand $execStart
        $argv.Count | Should -Be 5
        $argv[0..3] | Should -Be @('/opt/microsoft/powershell/7/pwsh', '-NoProfile', '-NonInteractive', '-Command')
        $argv[4] | Should -Be ([XFlowDelivery.XFlowDeliveryTaskDefinition]::EntryCommand($s.ConfigPath, $s.ModuleAssemblyPath))
        $argv[4] | Should -Match ([regex]::Escape("-ConfigPath '/etc/xflow/100% `$HOME it''s.json'"))
        $timer | Should -Match '(?m)^OnUnitActiveSec=3min$'
        $timer | Should -Match '(?m)^Unit=xflow-delivery.service$'
        $timer | Should -Match '(?m)^WantedBy=timers.target$'
    }
}

Describe 'The task''s command line, run as systemd and Task Scheduler would run it' {
    BeforeAll {
        # The built module, found by name through PSModulePath as an installed one is.
        $script:ModuleRoot = Split-Path -Parent (Split-Path -Parent (Get-XFlowModuleManifest))
        # The PowerShell running these tests, as an executable (not `dotnet pwsh.dll`).
        $script:RealPwsh = Join-Path $PSHOME $(if ($PSVersionTable.PSEdition -eq 'Desktop') { 'powershell.exe' } elseif ($IsWindows) { 'pwsh.exe' } else { 'pwsh' })
        $script:Odd = New-XFlowTestDirectory -Name 'task line'
        function script:Get-TaskRuns {
            # The systemd argv and the Task Scheduler command line for one configuration file, the
            # task registered with this module's assembly (the built one) or the one given.
            param([string]$ConfigPath, [string]$AssemblyPath = (Get-Command Invoke-XFlowDelivery).ImplementingType.Assembly.Location)
            $s = [XFlowDelivery.XFlowTaskSettings]@{ PowerShellPath = $script:RealPwsh; ConfigPath = $ConfigPath; ModuleAssemblyPath = $AssemblyPath; WorkingDirectory = $script:Odd; Account = 'xflow' }
            $execStart = ([regex]::Match([XFlowDelivery.XFlowDeliveryTaskDefinition]::ToSystemdService($s), '(?m)^ExecStart=(.*)$')).Groups[1].Value
            [pscustomobject]@{
                Argv        = Split-XFlowSystemdCommand $execStart
                CommandLine = [XFlowDelivery.XFlowDeliveryTaskDefinition]::Arguments($s)
            }
        }
        function script:Invoke-SystemdRun($Runs, [string]$ModulePath) {
            # ExecStart's argv, with only these module folders in PSModulePath.
            Invoke-XFlowProcess -FilePath $Runs.Argv[0] -ArgumentList $Runs.Argv[1..($Runs.Argv.Count - 1)] -Environment @{ PSModulePath = $ModulePath }
        }
    }
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'imports the registered module, runs it and passes its exit code through (<Case>)' -ForEach @(
        @{ Case = 'systemd ExecStart' }
        @{ Case = 'Task Scheduler Arguments' }
    ) {
        $setup = New-TaskSetup
        # A name with a quote, a dollar and a percent sign: nothing may be expanded on the way.
        $config = Join-Path $script:Odd "it's 100% `$HOME.json"
        Copy-Item -LiteralPath $setup.Config -Destination $config -Force
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        $runs = Get-TaskRuns -ConfigPath $config
        $missing = Get-TaskRuns -ConfigPath (Join-Path $script:Odd 'no such config.json')
        $env = @{ PSModulePath = $script:ModuleRoot }
        $run = {
            param($r)
            if ($Case -eq 'systemd ExecStart') { Invoke-XFlowProcess -FilePath $r.Argv[0] -ArgumentList $r.Argv[1..($r.Argv.Count - 1)] -Environment $env }
            else { Invoke-XFlowProcess -FilePath $script:RealPwsh -CommandLine $r.CommandLine -Environment $env }
        }
        $ok = & $run $runs
        $ok.ExitCode | Should -Be 0 -Because $ok.Output
        $ok.Output | Should -Match 'Delivered SDLoen .* \(\d+ bytes\)'
        $ok.Output | Should -Match 'Succeeded; 1 delivered'
        @(Get-ChildItem -LiteralPath $setup.SdLoen -File).Count | Should -Be 1
        # Exit code 2 (configuration) comes through as 2, not as -Command's 0/1.
        $bad = & $run $missing
        $bad.ExitCode | Should -Be 2 -Because $bad.Output
        $bad.Output | Should -Match 'did not start; exit code 2'
    }

    Context 'which module it runs' {
        BeforeAll {
            # A stand-in module: Invoke-XFlowDelivery that says which folder it was loaded from and
            # with what, and returns 42 (the exit code the command line must pass on).
            $script:StandIn = Join-Path (New-XFlowTestDirectory -Name 'stand-in') 'XFlowDelivery.dll'
            Add-Type -OutputAssembly $script:StandIn -TypeDefinition @'
using System.IO;
using System.Management.Automation;
[Cmdlet(VerbsLifecycle.Invoke, "XFlowDelivery")]
public sealed class StandInCommand : PSCmdlet
{
    [Parameter] public string ConfigPath { get; set; }
    [Parameter] public SwitchParameter AsScheduledTask { get; set; }
    protected override void ProcessRecord()
    {
        var folder = Path.GetFileName(Path.GetDirectoryName(typeof(StandInCommand).Assembly.Location));
        System.Console.Out.WriteLine("ran " + folder + " with " + ConfigPath + (AsScheduledTask ? " as the task" : ""));
        WriteObject(42);
    }
}
'@
            function script:Add-StandIn([string[]]$Folder) {
                foreach ($f in $Folder) { New-Item -ItemType Directory -Path $f -Force | Out-Null; Copy-Item -LiteralPath $script:StandIn -Destination $f }
            }
        }

        It 'runs the registered copy while it is the newest installed' {
            $root = New-XFlowTestDirectory -Name 'modules-registered'
            Add-StandIn (Join-Path $root 'XFlowDelivery/1.9.0'), (Join-Path $root 'XFlowDelivery')
            $runs = Get-TaskRuns -ConfigPath (Join-Path $script:Odd 'some config.json') -AssemblyPath (Join-Path $root 'XFlowDelivery/1.9.0/XFlowDelivery.dll')
            $result = Invoke-SystemdRun $runs $root
            $result.ExitCode | Should -Be 42 -Because $result.Output
            $result.Output.Trim() | Should -Be "ran 1.9.0 with $(Join-Path $script:Odd 'some config.json') as the task"
        }

        It 'finds the newest by name when the registered copy is gone: 1.10.0 over 1.9.0 and an unversioned copy, across PSModulePath entries, skipping entries that do not exist' {
            $roots = foreach ($name in 'first', 'second') { New-XFlowTestDirectory -Name "modules-$name" }
            # The unversioned copy's folder is XFlowDelivery itself; it counts as version 0.0.
            Add-StandIn (Join-Path $roots[0] 'XFlowDelivery/1.9.0'), (Join-Path $roots[1] 'XFlowDelivery/1.10.0'), (Join-Path $roots[0] 'XFlowDelivery')
            $gone = Join-Path $roots[0] 'XFlowDelivery/1.0.0/XFlowDelivery.dll'
            $runs = Get-TaskRuns -ConfigPath (Join-Path $script:Odd 'some config.json') -AssemblyPath $gone
            $modulePath = @((Join-Path $script:Odd 'no such folder'), $roots[0], '', $roots[1]) -join [IO.Path]::PathSeparator
            $result = Invoke-SystemdRun $runs $modulePath
            $result.ExitCode | Should -Be 42 -Because $result.Output
            $result.Output.Trim() | Should -Be "ran 1.10.0 with $(Join-Path $script:Odd 'some config.json') as the task"
        }

        It 'hands the run to a copy installed after registration (an update): the newer one runs, this one delivers nothing' {
            $setup = New-TaskSetup
            Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
            $root = New-XFlowTestDirectory -Name 'modules-update'
            $registered = Join-Path $root 'XFlowDelivery/0.0.1'
            New-Item -ItemType Directory -Path (Split-Path -Parent $registered) -Force | Out-Null
            Copy-Item -LiteralPath (Split-Path -Parent (Get-XFlowModuleManifest)) -Destination $registered -Recurse
            $update = Join-Path $root 'XFlowDelivery/9.0.0'
            Add-StandIn $update
            $runs = Get-TaskRuns -ConfigPath $setup.Config -AssemblyPath (Join-Path $registered 'XFlowDelivery.dll')
            $result = Invoke-SystemdRun $runs $root
            $result.ExitCode | Should -Be 42 -Because $result.Output
            $result.Output.Trim() | Should -Be "ran 9.0.0 with $($setup.Config) as the task"
            @(Get-ChildItem -LiteralPath $setup.SdLoen -File).Count | Should -Be 0
            (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 0
            # A preview stays a preview: the newer copy would deliver, so this one previews.
            $preview = Invoke-XFlowProcess -FilePath $script:RealPwsh -Environment @{ PSModulePath = $root } -ArgumentList @('-NoProfile', '-NonInteractive', '-Command',
                "Import-Module -Name '$(Join-Path $registered 'XFlowDelivery.dll')'; exit (Invoke-XFlowDelivery -ConfigPath '$($setup.Config)' -AsScheduledTask -WhatIf)")
            $preview.Output | Should -Match 'What if: Performing the operation "Hand the run to the newer installed copy" on target "XFlowDelivery 9\.0\.0'
            $preview.Output | Should -Not -Match 'ran 9\.0\.0'
            $preview.ExitCode | Should -Be 0 -Because $preview.Output
            (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 0
            # Without the update, the registered copy runs itself.
            Remove-Item -LiteralPath $update -Recurse -Force
            $own = Invoke-SystemdRun $runs $root
            $own.ExitCode | Should -Be 0 -Because $own.Output
            $own.Output | Should -Match 'Succeeded; 1 delivered'
        }

        It 'never hands over from a copy that is not installed in PSModulePath (a build folder, a path given by hand)' {
            $setup = New-TaskSetup
            $root = New-XFlowTestDirectory -Name 'modules-elsewhere'
            Add-StandIn (Join-Path $root 'XFlowDelivery/9.0.0')
            # The built module is not under $root: it runs the delivery itself.
            $runs = Get-TaskRuns -ConfigPath $setup.Config
            $result = Invoke-SystemdRun $runs $root
            $result.ExitCode | Should -Be 0 -Because $result.Output
            $result.Output | Should -Match 'Succeeded; 0 delivered'
            $result.Output | Should -Not -Match 'ran 9\.0\.0'
        }

        It 'exits 1 with the line of a run that did not start when the newest module cannot be imported, and runs no older one' {
            $setup = New-TaskSetup
            $root = New-XFlowTestDirectory -Name 'modules-broken'
            $old = Join-Path $root 'XFlowDelivery/1.0.0'
            $broken = Join-Path $root 'XFlowDelivery/2.0.0'
            Add-StandIn $old
            New-Item -ItemType Directory -Path $broken -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $broken 'XFlowDelivery.dll') -Value 'not an assembly'
            $runs = Get-TaskRuns -ConfigPath $setup.Config -AssemblyPath (Join-Path $broken 'XFlowDelivery.dll')
            $result = Invoke-SystemdRun $runs $root
            $result.ExitCode | Should -Be 1 -Because $result.Output
            $result.Output | Should -Match 'XFlowDelivery run did not start: the module could not be found or imported; exit code 1\. First error: .*2\.0\.0'
            $result.Output | Should -Not -Match 'ran 1\.0\.0'
        }
    }

    It 'exits 1 with a message naming PSModulePath when the registered copy is gone and no XFlowDelivery is installed' {
        $setup = New-TaskSetup
        $empty = New-XFlowTestDirectory -Name 'no-modules'
        $runs = Get-TaskRuns -ConfigPath $setup.Config -AssemblyPath (Join-Path $empty 'XFlowDelivery/1.0.0/XFlowDelivery.dll')
        $result = Invoke-SystemdRun $runs $empty
        $result.ExitCode | Should -Be 1 -Because $result.Output
        $result.Output | Should -Match 'did not start: the module could not be found or imported; exit code 1\. First error: The XFlowDelivery module is not installed where this account''s PowerShell finds modules \(PSModulePath\)'
        (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 0
    }
}

Describe 'Register-XFlowDeliveryTask / Unregister-XFlowDeliveryTask (systemd units in a temp folder; nothing enabled)' {
    BeforeAll {
        $script:Setup = New-TaskSetup
        $script:Pwsh = (Get-Process -Id $PID).Path
        $script:Units = New-XFlowTestDirectory -Name 'units'
    }

    It '-WhatIf shows the definition and writes nothing (systemd: not on Windows)' -Skip:$script:OnWindows {
        $task = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WhatIf
        $task.Registered | Should -BeFalse
        $task.Definition | Should -Match 'ExecStart='
        $task.Definition | Should -Match ([regex]::Escape("-ConfigPath '$($script:Setup.Config)'"))
        @(Get-ChildItem -LiteralPath $script:Units).Count | Should -Be 0
    }

    It 'names the newest copy installed for all users in the command line, and warns when the imported one is outside PSModulePath (systemd: not on Windows)' -Skip:$script:OnWindows {
        # Register only looks at the files: empty stand-ins are enough.
        $root = New-XFlowTestDirectory -Name 'modules-register'
        foreach ($version in '1.0.0', '2.0.0', 'not-a-version') {
            New-Item -ItemType Directory -Path (Join-Path $root "XFlowDelivery/$version") -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $root "XFlowDelivery/$version/XFlowDelivery.dll") -Value ''
        }
        $builtRoot = Split-Path -Parent (Split-Path -Parent (Get-XFlowModuleManifest))
        $saved = $env:PSModulePath
        try {
            $env:PSModulePath = $root
            $task = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WhatIf -WarningVariable outside -WarningAction SilentlyContinue
            $task.Definition | Should -Match ([regex]::Escape("Import-Module -Name '$(Join-Path $root 'XFlowDelivery/2.0.0/XFlowDelivery.dll')' -ErrorAction Stop"))
            ($outside -join ' ') | Should -Match 'which is not under PSModulePath'
            # The built module in PSModulePath: it is the copy named, and nothing to warn about.
            $env:PSModulePath = $builtRoot
            $task = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WhatIf -WarningVariable inside -WarningAction SilentlyContinue
            $task.Definition | Should -Match ([regex]::Escape("Import-Module -Name '$(Join-Path (Split-Path -Parent (Get-XFlowModuleManifest)) 'XFlowDelivery.dll')' -ErrorAction Stop"))
            $inside | Should -BeNullOrEmpty
        }
        finally { $env:PSModulePath = $saved }
        @(Get-ChildItem -LiteralPath $script:Units).Count | Should -Be 0
    }

    It 'writes the service and timer, is idempotent, replaces only with -Force, and unregisters (systemd: not on Windows)' -Skip:$script:OnWindows {
        # Skipped on Windows, where the same cmdlets go to Task Scheduler (the block below).
        $task = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WarningAction SilentlyContinue
        $task.Registered | Should -BeTrue
        $service = Join-Path $script:Units 'xflow-delivery.service'
        $timer = Join-Path $script:Units 'xflow-delivery.timer'
        Get-Content -LiteralPath $service -Raw | Should -Match ([regex]::Escape("-ConfigPath '$($script:Setup.Config)'"))
        Get-Content -LiteralPath $timer -Raw | Should -Match 'OnUnitActiveSec=3min'

        # Same definition again: fine, unchanged.
        { Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WarningAction SilentlyContinue } | Should -Not -Throw
        # Another definition: left alone with a warning, replaced with -Force.
        $null = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -IntervalMinutes 5 -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WarningVariable warnings -WarningAction SilentlyContinue
        ($warnings -join ' ') | Should -Match '-Force'
        Get-Content -LiteralPath $timer -Raw | Should -Match 'OnUnitActiveSec=3min'
        $null = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -IntervalMinutes 5 -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -Force -WarningAction SilentlyContinue
        Get-Content -LiteralPath $timer -Raw | Should -Match 'OnUnitActiveSec=5min'

        Unregister-XFlowDeliveryTask -UnitDirectory $script:Units -Confirm:$false
        @(Get-ChildItem -LiteralPath $script:Units).Count | Should -Be 0
        { Unregister-XFlowDeliveryTask -UnitDirectory $script:Units -Confirm:$false } | Should -Not -Throw
    }

    It 'refuses S4U when a folder is on a network share (S4UWithNetworkPath)' {
        $doc = Get-Content -LiteralPath $script:Setup.Config -Raw | ConvertFrom-Json
        $doc.prismePath = '//fileserver/import/Prisme'
        $unc = Join-Path $script:Setup.Root 'unc.json'
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $unc -Encoding utf8
        $err = { Register-XFlowDeliveryTask -ConfigPath $unc -Account 'xflow' -LogonType S4U -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WhatIf } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'S4UWithNetworkPath,*'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.TargetObject | Should -Be '//fileserver/import/Prisme'
    }

    It 'refuses a PowerShell path that does not exist (PowerShellNotFound)' {
        # A gMSA-style name: on Windows a plain account would need -Credential first.
        { Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow$' -PowerShellPath '/nowhere/pwsh' -UnitDirectory $script:Units -WhatIf } |
            Should -Throw -ErrorId 'PowerShellNotFound,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
    }

    It 'refuses a -TaskPath that names no Task Scheduler folder (InvalidTaskPath) on every platform, before anything is written' {
        $units = New-XFlowTestDirectory -Name 'units'
        $err = { Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $units -TaskPath '\XFlowDelivery\..\Tests\' } |
            Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'InvalidTaskPath,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.TargetObject | Should -Be '\XFlowDelivery\..\Tests\'
        $err.Exception.Message | Should -Match 'does not name a Task Scheduler folder'
        @(Get-ChildItem -LiteralPath $units) | Should -BeNullOrEmpty
        { Unregister-XFlowDeliveryTask -TaskPath 'XFlowDelivery/Tests' -UnitDirectory $units -Confirm:$false } |
            Should -Throw -ErrorId 'InvalidTaskPath,XFlowDelivery.Cmdlets.UnregisterXFlowDeliveryTaskCommand'
    }

    It 'completes -LogonType from a fixed set' {
        $line = 'Register-XFlowDeliveryTask -LogonType '
        $completions = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        @($completions.CompletionMatches.CompletionText) | Should -Be @('Password', 'S4U')
    }
}

Describe 'Task Scheduler and the Application log (Windows only, as administrator: a task folder of its own, the event source)' {
    BeforeAll {
        if ($script:Elevated) {
            $script:Me = [Security.Principal.WindowsIdentity]::GetCurrent()
            # A folder of its own: nothing in \XFlowDelivery\ is touched, and the whole folder goes afterwards.
            $script:TestFolder = '\XFlowDeliveryTests-' + [Guid]::NewGuid().ToString('N').Substring(0, 12)
            $script:TestTask = 'XFlowDeliveryTest'
            $script:SourceExisted = [Diagnostics.EventLog]::SourceExists('XFlowDelivery')
            # S4U lets the task run as the current user without a password; it cannot decrypt a
            # CurrentUser token, so the token is protected for this computer, as the cmdlet demands.
            # Task Scheduler may start the task while the tests run: its configuration reaches no
            # server and has a state folder of its own, so such a run touches nothing used here.
            $script:WinSetup = New-TaskSetup -BaseUrl "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/api/v1/" -TimeoutSec 5 `
                -Extra @{ Scope = 'LocalMachine'; ServiceAccount = $script:Me.Name }
            $script:Registered = Register-XFlowDeliveryTask -ConfigPath $script:WinSetup.Config -Account $script:Me.Name -LogonType S4U `
                -TaskName $script:TestTask -TaskPath "$($script:TestFolder)\" -WarningAction SilentlyContinue
            $script:TaskNs = @{ t = 'http://schemas.microsoft.com/windows/2004/02/mit/task' }

            function script:Get-Sid {
                # Task Scheduler gives an account as a name or as a SID string.
                param([string]$Account)
                if ($Account -match '^S-1-') { return $Account }
                ([Security.Principal.NTAccount]$Account).Translate([Security.Principal.SecurityIdentifier]).Value
            }
        }
    }

    AfterAll {
        if ($script:Elevated) {
            # Even after a failure: the task, its folder, and the event source if this block created it.
            Unregister-ScheduledTask -TaskPath "$($script:TestFolder)\" -TaskName $script:TestTask -Confirm:$false -ErrorAction SilentlyContinue
            $service = New-Object -ComObject Schedule.Service
            $service.Connect()
            try { $service.GetFolder('\').DeleteFolder($script:TestFolder.TrimStart('\'), 0) }
            catch { Write-Warning "The test task folder $($script:TestFolder) could not be removed: $($_.Exception.Message)" }
            if (-not $script:SourceExisted -and [Diagnostics.EventLog]::SourceExists('XFlowDelivery')) {
                [Diagnostics.EventLog]::DeleteEventSource('XFlowDelivery')
            }
        }
    }

    It 'Register-XFlowDeliveryTask -TaskPath registers the task in that folder as the current user (S4U); Get-ScheduledTask and Export-ScheduledTask read back every 3 minutes without end, IgnoreNew, the account, the logon type and the action that finds the module by name (Windows only, as administrator: Task Scheduler)' -Skip:(-not $script:Elevated) {
        $script:Registered.Registered | Should -BeTrue
        $script:Registered.Name | Should -Be "$($script:TestFolder)\$($script:TestTask)"
        $defined = (Select-Xml -Content $script:Registered.Definition -XPath '/t:Task/t:Actions/t:Exec' -Namespace $script:TaskNs).Node

        $task = Get-ScheduledTask -TaskPath "$($script:TestFolder)\" -TaskName $script:TestTask
        $task.TaskPath | Should -Be "$($script:TestFolder)\"
        Get-Sid $task.Principal.UserId | Should -Be $script:Me.User.Value
        "$($task.Principal.LogonType)" | Should -Be 'S4U'
        "$($task.Principal.RunLevel)" | Should -Be 'Limited'
        "$($task.Settings.MultipleInstances)" | Should -Be 'IgnoreNew'
        $task.Settings.ExecutionTimeLimit | Should -Be 'PT15M'
        @($task.Triggers).Count | Should -Be 1
        $task.Triggers[0].Repetition.Interval | Should -Be 'PT3M'
        $task.Triggers[0].Repetition.Duration | Should -BeNullOrEmpty -Because 'it repeats without end'
        @($task.Actions).Count | Should -Be 1
        $task.Actions[0].Execute | Should -Be $defined.Command
        $task.Actions[0].Arguments | Should -Be $defined.Arguments
        $task.Actions[0].WorkingDirectory | Should -Be (Split-Path -Parent $script:Registered.ConfigPath)

        [xml]$exported = Export-ScheduledTask -TaskPath "$($script:TestFolder)\" -TaskName $script:TestTask
        $one = { param($xpath) (Select-Xml -Xml $exported -XPath $xpath -Namespace $script:TaskNs).Node }
        (& $one '/t:Task/t:RegistrationInfo/t:URI').InnerText | Should -Be "$($script:TestFolder)\$($script:TestTask)"
        (& $one '/t:Task/t:Triggers/t:TimeTrigger/t:Repetition/t:Interval').InnerText | Should -Be 'PT3M'
        & $one '/t:Task/t:Triggers/t:TimeTrigger/t:Repetition/t:Duration' | Should -BeNullOrEmpty -Because 'no Duration: it repeats without end'
        (& $one '/t:Task/t:Settings/t:MultipleInstancesPolicy').InnerText | Should -Be 'IgnoreNew'
        Get-Sid (& $one '/t:Task/t:Principals/t:Principal/t:UserId').InnerText | Should -Be $script:Me.User.Value
        (& $one '/t:Task/t:Principals/t:Principal/t:LogonType').InnerText | Should -Be 'S4U'
        (& $one '/t:Task/t:Principals/t:Principal/t:RunLevel').InnerText | Should -Be 'LeastPrivilege'
        $exec = & $one '/t:Task/t:Actions/t:Exec'
        $exec.Command | Should -Be $defined.Command
        Test-Path -LiteralPath $exec.Command | Should -BeTrue
        # The newest copy installed for all users (else this one) first; the module looked up by name when it is gone.
        $exec.Arguments | Should -BeLike '-NoProfile -NonInteractive -Command "*"'
        $exec.Arguments | Should -Match "^-NoProfile -NonInteractive -Command `"try \{ try \{ Import-Module -Name '[^']+\\XFlowDelivery\.dll' -ErrorAction Stop \}"
        $exec.Arguments | Should -Match ([regex]::Escape("foreach (`$root in `$env:PSModulePath -split '';'')"))
        $exec.Arguments | Should -Match ([regex]::Escape("-ConfigPath '$($script:Registered.ConfigPath)' -AsScheduledTask)"))
        $exec.Arguments | Should -Match '-AsScheduledTask\)"$'

        # Registering again without -Force leaves it as it is, and says so.
        $again = Register-XFlowDeliveryTask -ConfigPath $script:WinSetup.Config -Account $script:Me.Name -LogonType S4U `
            -TaskName $script:TestTask -TaskPath "$($script:TestFolder)\" -WarningVariable warnings -WarningAction SilentlyContinue
        $again.Registered | Should -BeFalse
        ($warnings -join ' ') | Should -Match 'already exists.*-Force'
    }

    It 'each run writes exactly one event to the Application log, source XFlowDelivery, id 100 + exit code: 100 after a delivery, 102 for a missing configuration file, 101 when the module cannot be found; by the task''s command line and by the entry script (Windows only, as administrator: the event source)' -Skip:(-not $script:Elevated) {
        # Register-XFlowDeliveryTask (BeforeAll) registered the source, as it does for an administrator.
        [Diagnostics.EventLog]::SourceExists('XFlowDelivery') | Should -BeTrue
        [Diagnostics.EventLog]::LogNameFromSourceName('XFlowDelivery', '.') | Should -Be 'Application'
        $setup = New-TaskSetup -Extra @{ Scope = 'LocalMachine'; ServiceAccount = $script:Me.Name }
        $missing = Join-Path $setup.Root ('missing-' + [Guid]::NewGuid().ToString('N') + '.json')
        $thisPwsh = Join-Path $PSHOME $(if ($PSVersionTable.PSEdition -eq 'Desktop') { 'powershell.exe' } else { 'pwsh.exe' })
        $moduleRoot = Split-Path -Parent (Split-Path -Parent (Get-XFlowModuleManifest))
        $noModules = New-XFlowTestDirectory -Name 'no-modules'
        $commandLine = {
            param($config, $modulePath, $assembly)
            $s = [XFlowDelivery.XFlowTaskSettings]@{ PowerShellPath = $thisPwsh; ConfigPath = $config; ModuleAssemblyPath = $assembly; WorkingDirectory = $setup.Root; Account = $script:Me.Name }
            Invoke-XFlowProcess -FilePath $thisPwsh -CommandLine ([XFlowDelivery.XFlowDeliveryTaskDefinition]::Arguments($s)) -Environment @{ PSModulePath = $modulePath }
        }
        $built = (Get-Command Invoke-XFlowDelivery).ImplementingType.Assembly.Location
        $gone = Join-Path $noModules 'XFlowDelivery\1.0.0\XFlowDelivery.dll'
        foreach ($case in @(
                @{ Via = 'command line'; Config = $setup.Config; Modules = $moduleRoot; Assembly = $built; ExitCode = 0; Level = 4; Says = 'Succeeded; 1 delivered' }
                @{ Via = 'command line'; Config = $missing; Modules = $moduleRoot; Assembly = $built; ExitCode = 2; Level = 2; Says = 'did not start' }
                @{ Via = 'command line'; Config = $missing; Modules = $noModules; Assembly = $gone; ExitCode = 1; Level = 2; Says = 'the module could not be found or imported' }
                @{ Via = 'entry script'; Config = $setup.Config; ExitCode = 0; Level = 4; Says = 'Succeeded; 1 delivered' }
                @{ Via = 'entry script'; Config = $missing; ExitCode = 2; Level = 2; Says = 'did not start' })) {
            Reset-XFlowSim -Sim $script:Sim
            Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
            $since = Get-Date
            # The token is protected for this computer (LocalMachine): the run decrypts it, as the task would.
            $run = if ($case.Via -eq 'command line') { & $commandLine $case.Config $case.Modules $case.Assembly } else { Invoke-TaskScript -ConfigPath $case.Config }
            $run.ExitCode | Should -Be $case.ExitCode -Because "$($case.Via): $($run.Output)"
            $line = @(($run.Output -split "`r?`n") | Where-Object { $_ -like 'XFlowDelivery run *' })
            $line.Count | Should -Be 1 -Because $run.Output
            $line[0] | Should -Match ([regex]::Escape($case.Says))
            # This run's events: its line (run id, or the missing file's unique name) is the message;
            # a run the scheduler may have started meanwhile has another.
            $filter = @{ LogName = 'Application'; ProviderName = 'XFlowDelivery'; StartTime = $since }
            $ofThisRun = { @(Get-WinEvent -FilterHashtable $filter -ErrorAction SilentlyContinue | Where-Object { "$($_.Message)".Trim() -eq $line[0].Trim() }) }
            # The entry is written before the process ends; give the event log a moment to serve it.
            $deadline = (Get-Date).AddSeconds(15)
            while (@(& $ofThisRun).Count -eq 0 -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 250 }
            Start-Sleep -Seconds 1
            $events = @(& $ofThisRun)
            $seen = @(Get-WinEvent -FilterHashtable $filter -ErrorAction SilentlyContinue | ForEach-Object { "$($_.Id): $($_.Message)" }) -join "`n"
            $events.Count | Should -Be 1 -Because "$($case.Via): one run, one event (exit code $($case.ExitCode)); since the run: $seen"
            $events[0].Id | Should -Be (100 + $case.ExitCode)
            $events[0].Level | Should -Be $case.Level
            $events[0].Message.Contains($script:Sim.Token) | Should -BeFalse
        }
    }

    It 'Unregister-XFlowDeliveryTask -TaskPath removes the task, keeps the event source, and removing it again is not an error (Windows only, as administrator: Task Scheduler)' -Skip:(-not $script:Elevated) {
        Get-ScheduledTask -TaskPath "$($script:TestFolder)\" -TaskName $script:TestTask | Should -Not -BeNullOrEmpty
        Unregister-XFlowDeliveryTask -TaskName $script:TestTask -TaskPath "$($script:TestFolder)\" -Confirm:$false
        @(Get-ScheduledTask -TaskPath "$($script:TestFolder)\" -TaskName $script:TestTask -ErrorAction SilentlyContinue) | Should -BeNullOrEmpty
        { Unregister-XFlowDeliveryTask -TaskName $script:TestTask -TaskPath "$($script:TestFolder)\" -Confirm:$false } | Should -Not -Throw
        [Diagnostics.EventLog]::SourceExists('XFlowDelivery') | Should -BeTrue -Because 'history stays readable'
    }
}
