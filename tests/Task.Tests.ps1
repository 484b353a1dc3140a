# The scheduled task: the entry script XFlowDelivery.Task.ps1 in a child process
# (`pwsh -NoProfile -NonInteractive -File <script> -ConfigPath <file>`) with one exit code per
# outcome, the task definitions Register-XFlowDeliveryTask produces, and their command line run
# as systemd and Task Scheduler run it (the module found by name, the exit code passed through).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-task'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:EntryScript = Join-Path (Split-Path -Parent (Get-XFlowModuleManifest)) 'XFlowDelivery.Task.ps1'
    $script:Sim = Start-XFlowSim
    $script:Outputs = [Collections.Generic.List[string]]::new()

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
        @(Get-ChildItem -LiteralPath $setup.SdLoen, $setup.Prisme -File).Count | Should -Be 2
        $second = Invoke-TaskScript -ConfigPath $setup.Config
        $second.ExitCode | Should -Be 0 -Because $second.Output
        $second.Output | Should -Match 'Succeeded; 0 delivered'
    }

    It 'exits 0 when another run holds the state folder''s lock, and touches nothing' {
        $setup = New-TaskSetup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        New-Item -ItemType Directory -Path $setup.State -Force | Out-Null
        # Another process holds the lock (flock, as a running delivery would).
        $psi = [Diagnostics.ProcessStartInfo]::new('python3')
        foreach ($a in '-c', 'import fcntl,sys; f=open(sys.argv[1],"a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); sys.stdin.read()', (Join-Path $setup.State 'run.lock')) { $psi.ArgumentList.Add($a) }
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
    }

    It 'never prints the token, whatever the outcome' {
        $script:Outputs.Count | Should -BeGreaterThan 5
        foreach ($output in $script:Outputs) {
            $output.Contains($script:Sim.Token) | Should -BeFalse
        }
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
            WorkingDirectory          = 'C:\ProgramData\XFlowDelivery'
            Account                   = 'KOMMUNE\svc-xflow$'
            LogonType                 = 'Password'
            IntervalMinutes           = 3
            ExecutionTimeLimitMinutes = 15
            StartBoundary             = [datetime]'2025-01-01T00:00:00'
        }
    }

    It 'Task Scheduler XML: every 3 minutes without end, IgnoreNew, StartWhenAvailable, a time limit in minutes, least privilege, the account, and an action that finds the module by name' {
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
        # No path into a version folder: the module is looked up by name at every run.
        $arguments | Should -BeLike '-NoProfile -NonInteractive -Command "*"'
        $arguments | Should -Match ([regex]::Escape("Get-Module -ListAvailable -Name XFlowDelivery"))
        $arguments | Should -Match ([regex]::Escape("-ConfigPath 'C:\ProgramData\XFlowDelivery\config & løn.json'"))
        $arguments | Should -Match 'exit \$LASTEXITCODE"$'
        $arguments | Should -Not -Match 'Modules[\\/]XFlowDelivery'
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
        $argv[4] | Should -Be ([XFlowDelivery.XFlowDeliveryTaskDefinition]::EntryCommand($s.ConfigPath))
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
            # The systemd argv and the Task Scheduler command line for one configuration file.
            param([string]$ConfigPath)
            $s = [XFlowDelivery.XFlowTaskSettings]@{ PowerShellPath = $script:RealPwsh; ConfigPath = $ConfigPath; WorkingDirectory = $script:Odd; Account = 'xflow' }
            $execStart = ([regex]::Match([XFlowDelivery.XFlowDeliveryTaskDefinition]::ToSystemdService($s), '(?m)^ExecStart=(.*)$')).Groups[1].Value
            [pscustomobject]@{
                Argv        = Split-XFlowSystemdCommand $execStart
                CommandLine = [XFlowDelivery.XFlowDeliveryTaskDefinition]::Arguments($s)
            }
        }
    }
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'runs the entry script of the module found by name and passes its exit code through (<Case>)' -ForEach @(
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
        $ok.Output | Should -Match 'Succeeded; 1 delivered'
        @(Get-ChildItem -LiteralPath $setup.SdLoen -File).Count | Should -Be 1
        # Exit code 2 (configuration) comes through as 2, not as -Command's 0/1.
        $bad = & $run $missing
        $bad.ExitCode | Should -Be 2 -Because $bad.Output
    }

    It 'exits 1 with a message naming PSModulePath when no XFlowDelivery is installed' {
        $setup = New-TaskSetup
        $runs = Get-TaskRuns -ConfigPath $setup.Config
        $empty = New-XFlowTestDirectory -Name 'no-modules'
        $result = Invoke-XFlowProcess -FilePath $runs.Argv[0] -ArgumentList $runs.Argv[1..($runs.Argv.Count - 1)] -Environment @{ PSModulePath = $empty }
        $result.ExitCode | Should -Be 1 -Because $result.Output
        $result.Output | Should -Match 'not installed where this account''s PowerShell finds modules \(PSModulePath\)'
        (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 0
    }
}

Describe 'Register-XFlowDeliveryTask / Unregister-XFlowDeliveryTask (systemd units in a temp folder; nothing enabled)' {
    BeforeAll {
        $script:Setup = New-TaskSetup
        $script:Pwsh = [Environment]::ProcessPath
        $script:Units = New-XFlowTestDirectory -Name 'units'
    }

    It '-WhatIf shows the definition and writes nothing' {
        $task = Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WhatIf
        $task.Registered | Should -BeFalse
        $task.Definition | Should -Match 'ExecStart='
        $task.Definition | Should -Match ([regex]::Escape("-ConfigPath '$($script:Setup.Config)'"))
        @(Get-ChildItem -LiteralPath $script:Units).Count | Should -Be 0
    }

    It 'writes the service and timer, is idempotent, replaces only with -Force, and unregisters' {
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
        { Register-XFlowDeliveryTask -ConfigPath $script:Setup.Config -Account 'xflow' -PowerShellPath '/nowhere/pwsh' -UnitDirectory $script:Units -WhatIf } |
            Should -Throw -ErrorId 'PowerShellNotFound,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
    }

    It 'completes -LogonType from a fixed set' {
        $line = 'Register-XFlowDeliveryTask -LogonType '
        $completions = TabExpansion2 -inputScript $line -cursorColumn $line.Length
        @($completions.CompletionMatches.CompletionText) | Should -Be @('Password', 'S4U')
    }
}
