# What an administrator asks after runs against the simulator: Get-XFlowDeliveryHistory,
# Get-XFlowDeliveryStatus, Remove-XFlowDeliveryQuarantine, and the preflight
# Test-XFlowDeliveryConnection.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-status'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim

    function script:New-Setup {
        param([string]$Token = $script:Sim.Token)
        $root = New-XFlowTestDirectory -Name 'status'
        $s = [pscustomobject]@{
            Root = $root; SdLoen = Join-Path $root 'SD Løn'; Prisme = Join-Path $root 'Prisme'
            State = Join-Path $root 'state'; Config = Join-Path $root 'config.json'
        }
        New-Item -ItemType Directory -Path $s.SdLoen, $s.Prisme -Force | Out-Null
        New-XFlowDeliveryConfig -Path $s.Config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $Token -AsPlainText -Force) `
            -SdLoenPath $s.SdLoen -PrismePath $s.Prisme -StatePath $s.State -CaCertificatePath $script:Sim.CaPath -TimeoutSec 10 -WarningAction SilentlyContinue | Out-Null
        $s
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Get-XFlowDeliveryStatus and Get-XFlowDeliveryHistory after real runs' {
    BeforeAll {
        Reset-XFlowSim -Sim $script:Sim
        $script:S = New-Setup
        $script:Before = [DateTime]::UtcNow.AddSeconds(-1)
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes('1;2') }
            @{ System = 'Prisme'; FileName = 'G69.txt'; Bytes = [byte[]](7, 8) }) | Out-Null
        $script:First = @(Invoke-XFlowDelivery -ConfigPath $script:S.Config)[-1]
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'wrongSha256' } | Out-Null
        $script:BadIds = @((Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') }).ids)
        $script:Second = @(Invoke-XFlowDelivery -ConfigPath $script:S.Config -ErrorAction SilentlyContinue)[-1]
    }

    It 'the runs went as the scenario says' {
        $script:First.Outcome | Should -Be 'Succeeded'
        $script:Second.Outcome | Should -Be 'CompletedWithErrors'
    }

    It 'status: last run, last successful run, quarantined deliveries; not healthy' {
        $status = Get-XFlowDeliveryStatus -ConfigPath $script:S.Config
        $status | Should -BeOfType ([XFlowDelivery.Model.XFlowDeliveryStatus])
        $status.LastRun.RunId | Should -Be $script:Second.RunId
        $status.LastRun.Outcome | Should -Be 'CompletedWithErrors'
        $status.LastRun.ExitCode | Should -Be 6
        $status.LastSuccessfulRun.RunId | Should -Be $script:First.RunId
        $status.LastSuccessfulRun.Delivered | Should -Be 2
        $status.LastSuccessfulRun.Duration | Should -BeOfType ([TimeSpan])
        $status.MinutesSinceLastSuccess | Should -BeGreaterOrEqual 0
        @($status.Quarantined).Count | Should -Be 1
        $status.Quarantined[0].Id | Should -Be $script:BadIds[0]
        $status.Quarantined[0].Reason | Should -Match 'sha256'
        $status.AwaitingAcknowledgement | Should -Be 0
        $status.Healthy | Should -BeFalse
        ($status | Out-String) | Should -Match 'CompletedWithErrors'
    }

    It 'history: newest first, filtered by system, state, id and time' {
        $all = @(Get-XFlowDeliveryHistory -StatePath $script:S.State)
        $all.Count | Should -Be 3
        $all | ForEach-Object { $_ | Should -BeOfType ([XFlowDelivery.Model.XFlowDeliveryRecord]) }
        $all[0].ReceivedAt | Should -BeGreaterOrEqual $all[-1].ReceivedAt
        $sd = @(Get-XFlowDeliveryHistory -ConfigPath $script:S.Config -System SDLoen -State Acknowledged)
        $sd.Count | Should -Be 1
        $sd[0].FileName | Should -Be 'løn.csv'
        $sd[0].Folder | Should -Be $script:S.SdLoen
        $sd[0].AcknowledgedAt | Should -Not -BeNullOrEmpty
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -State Quarantined).Id | Should -Be $script:BadIds
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -Id $script:BadIds[0]).Count | Should -Be 1
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -Since $script:Before).Count | Should -Be 3
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -Until $script:Before).Count | Should -Be 0
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -First 1).Count | Should -Be 1
        { Get-XFlowDeliveryHistory -StatePath $script:S.State -Since (Get-Date) -Until (Get-Date).AddDays(-1) } |
            Should -Throw -ErrorId 'InvalidTimeRange,XFlowDelivery.Cmdlets.GetXFlowDeliveryHistoryCommand'
        { Get-XFlowDeliveryHistory -StatePath $script:S.State -State Lost } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,XFlowDelivery.Cmdlets.GetXFlowDeliveryHistoryCommand'
    }

    It 'reports files left in an import folder longer than the threshold (the importer stopped)' {
        $old = Join-Path $script:S.SdLoen 'løn.csv'
        (Get-Item -LiteralPath $old).LastWriteTime = (Get-Date).AddMinutes(-90)
        $status = Get-XFlowDeliveryStatus -ConfigPath $script:S.Config -StaleAfterMinutes 60
        @($status.StaleFiles).Count | Should -Be 1
        $status.StaleFiles[0].Path | Should -Be $old
        $status.StaleFiles[0].System | Should -Be 'SDLoen'
        $status.StaleFiles[0].AgeMinutes | Should -BeGreaterOrEqual 89
        @((Get-XFlowDeliveryStatus -ConfigPath $script:S.Config -StaleAfterMinutes 120).StaleFiles).Count | Should -Be 0
    }

    It 'Remove-XFlowDeliveryQuarantine: unknown id is NotQuarantined; -WhatIf keeps it; then it is released and no longer reported' {
        $err = $null
        Remove-XFlowDeliveryQuarantine -Id 'no-such-id' -StatePath $script:S.State -Confirm:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -Be 'NotQuarantined,XFlowDelivery.Cmdlets.RemoveXFlowDeliveryQuarantineCommand'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err[0].TargetObject | Should -Be 'no-such-id'

        (Get-XFlowDeliveryStatus -ConfigPath $script:S.Config).Quarantined | Remove-XFlowDeliveryQuarantine -ConfigPath $script:S.Config -WhatIf
        @((Get-XFlowDeliveryStatus -ConfigPath $script:S.Config).Quarantined).Count | Should -Be 1

        $released = (Get-XFlowDeliveryStatus -ConfigPath $script:S.Config).Quarantined |
            Remove-XFlowDeliveryQuarantine -ConfigPath $script:S.Config -Confirm:$false -PassThru
        $released.Id | Should -Be $script:BadIds[0]
        @((Get-XFlowDeliveryStatus -ConfigPath $script:S.Config).Quarantined).Count | Should -Be 0
        @(Get-XFlowDeliveryHistory -StatePath $script:S.State -State Quarantined).Count | Should -Be 0
    }

    It 'status of a state folder no run has used yet: nothing, and the folder is not created' {
        $fresh = Join-Path $script:Work 'never-used'
        $status = Get-XFlowDeliveryStatus -StatePath $fresh
        $status.LastRun | Should -BeNullOrEmpty
        $status.Healthy | Should -BeFalse
        Test-Path -LiteralPath $fresh | Should -BeFalse
    }

    It 'a healthy state after a clean run' {
        Reset-XFlowSim -Sim $script:Sim
        $s = New-Setup
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('Prisme') } | Out-Null
        Invoke-XFlowDelivery -ConfigPath $s.Config | Out-Null
        (Get-XFlowDeliveryStatus -StatePath $s.State -SdLoenPath $s.SdLoen -PrismePath $s.Prisme).Healthy | Should -BeTrue
    }
}

Describe 'Test-XFlowDeliveryConnection' {
    It 'passes every check for a good configuration, one row per check' {
        $s = New-Setup
        $rows = @(Test-XFlowDeliveryConnection -ConfigPath $s.Config)
        $rows | ForEach-Object { $_ | Should -BeOfType ([XFlowDelivery.Model.XFlowConnectionCheck]) }
        $rows.Check | Should -Contain 'Name resolution'
        $rows.Check | Should -Contain 'TCP connection'
        $rows.Check | Should -Contain 'TLS'
        $rows.Check | Should -Contain 'Authentication'
        $rows.Check | Should -Contain 'SDLoen folder'
        $rows.Check | Should -Contain 'Prisme folder'
        $rows.Check | Should -Contain 'State folder'
        $rows.Check | Should -Contain 'Task Scheduler history'
        @($rows | Where-Object Status -EQ 'Failed').Count | Should -Be 0
        ($rows | Where-Object Check -EQ 'Task Scheduler history').Status | Should -Be 'Skipped'
        # No file an importer could pick up was created.
        @(Get-ChildItem -LiteralPath $s.SdLoen, $s.Prisme -Force).Count | Should -Be 0
    }

    It 'fails the authentication check with a remedy for a wrong token, never showing the token' {
        $wrong = $script:Sim.Token + '-old'
        $s = New-Setup -Token $wrong
        $rows = @(Test-XFlowDeliveryConnection -ConfigPath $s.Config)
        $auth = $rows | Where-Object Check -EQ 'Authentication'
        $auth.Status | Should -Be 'Failed'
        $auth.Remedy | Should -Not -BeNullOrEmpty
        ($rows | Where-Object Check -EQ 'TLS').Status | Should -Be 'Passed'
        $text = $rows | Format-List * | Out-String -Width 4096
        $text.Contains($wrong) | Should -BeFalse
    }

    It 'fails the folder check with a remedy when an import folder is missing, with explicit parameters' {
        $s = New-Setup
        Remove-Item -LiteralPath $s.Prisme
        $rows = @(Test-XFlowDeliveryConnection -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force) `
                -SdLoenPath $s.SdLoen -PrismePath $s.Prisme -StatePath $s.State -CaCertificatePath $script:Sim.CaPath)
        $prisme = $rows | Where-Object Check -EQ 'Prisme folder'
        $prisme.Status | Should -Be 'Failed'
        $prisme.Target | Should -Be $s.Prisme
        $prisme.Remedy | Should -Not -BeNullOrEmpty
    }

    It 'fails name resolution / TCP for a server that is not there' {
        $s = New-Setup
        $rows = @(Test-XFlowDeliveryConnection -BaseUrl "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/api/v1/" -ApiToken (ConvertTo-SecureString 'x' -AsPlainText -Force) `
                -SdLoenPath $s.SdLoen -StatePath $s.State -TimeoutSec 5)
        ($rows | Where-Object Check -EQ 'TCP connection').Status | Should -Be 'Failed'
    }
}
