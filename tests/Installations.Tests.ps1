# Several installations on one server (docs/monitoring.md): each with its own configuration, state
# folder and task; conflicts refused by New-XFlowDeliveryConfig, Register-XFlowDeliveryTask and
# Invoke-XFlowDelivery (also through the task entry script); Get-XFlowDeliveryStatus without a
# path lists them all. The machine-wide registry is a temp folder ($env:XFLOWDELIVERY_INSTALLATIONS).
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-installations'
    $script:SavedRegistry = $env:XFLOWDELIVERY_INSTALLATIONS
    $env:XFLOWDELIVERY_INSTALLATIONS = Join-Path $script:Work 'registry'
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim
    $script:Units = New-XFlowTestDirectory -Name 'units'
    $script:Pwsh = [Environment]::ProcessPath
    $script:EntryScript = Join-Path (Split-Path -Parent (Get-XFlowModuleManifest)) 'XFlowDelivery.Task.ps1'

    function script:New-Installation {
        param([string]$Name, [string]$StatePath, [string]$PrismePath, [string]$SdLoenPath)
        $root = Join-Path $script:Work $Name
        $i = [pscustomobject]@{
            Config = Join-Path $script:Work "$Name.json"
            State  = if ($StatePath) { $StatePath } else { Join-Path $root 'state' }
            Prisme = if ($PrismePath) { $PrismePath } else { Join-Path $root 'Prisme' }
            SdLoen = if ($SdLoenPath) { $SdLoenPath } else { Join-Path $root 'SD Løn' }
        }
        New-Item -ItemType Directory -Force -Path $i.Prisme, $i.SdLoen | Out-Null
        $i
    }

    function script:Write-Config {
        param($Installation, [hashtable]$Extra = @{})
        New-XFlowDeliveryConfig -Path $Installation.Config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force) `
            -SdLoenPath $Installation.SdLoen -PrismePath $Installation.Prisme -StatePath $Installation.State -CaCertificatePath $script:Sim.CaPath `
            -WarningAction SilentlyContinue @Extra
    }

    function script:Register {
        param([string]$ConfigPath, [hashtable]$Extra = @{})
        Register-XFlowDeliveryTask -ConfigPath $ConfigPath -Account 'xflow' -PowerShellPath $script:Pwsh -UnitDirectory $script:Units -WarningAction SilentlyContinue @Extra
    }

    $script:Test = New-Installation -Name 'test'
    $script:Prod = New-Installation -Name 'prod'
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    $env:XFLOWDELIVERY_INSTALLATIONS = $script:SavedRegistry
    Remove-Item -LiteralPath $script:Work, $script:Units -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Several installations on one server' {
    It 'runs two installations side by side, each with its own task, and lists both without a path' {
        Write-Config $script:Test | Out-Null
        Write-Config $script:Prod | Out-Null
        (Register -ConfigPath $script:Prod.Config).Name | Should -Be 'xflow-delivery.timer' -Because 'the first installation keeps the name XFlowDelivery'
        (Register -ConfigPath $script:Test.Config).Name | Should -Be 'xflow-delivery-test.timer' -Because 'the second derives XFlowDelivery-test from test.json'
        # Registering again keeps each installation's name.
        (Register -ConfigPath $script:Prod.Config -Extra @{ Force = $true }).Name | Should -Be 'xflow-delivery.timer'
        @(Get-ChildItem -LiteralPath $script:Units -Name | Sort-Object) | Should -Be @(
            'xflow-delivery-test.service', 'xflow-delivery-test.timer', 'xflow-delivery.service', 'xflow-delivery.timer')
        Get-Content -LiteralPath (Join-Path $script:Units 'xflow-delivery-test.timer') -Raw | Should -Match '(?m)^Unit=xflow-delivery-test.service$'
        Get-Content -LiteralPath (Join-Path $script:Units 'xflow-delivery-test.service') -Raw | Should -Match ([regex]::Escape($script:Test.Config))
        Get-Content -LiteralPath (Join-Path $script:Units 'xflow-delivery.service') -Raw | Should -Match ([regex]::Escape($script:Prod.Config))

        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('Prisme') } | Out-Null
        foreach ($i in $script:Test, $script:Prod) {
            $run = Invoke-XFlowChildPwsh -ScriptPath $script:EntryScript -ArgumentList @('-ConfigPath', $i.Config)
            $run.ExitCode | Should -Be 0 -Because $run.Output
        }

        $all = @(Get-XFlowDeliveryStatus)
        $all.Count | Should -Be 2
        @($all.ConfigPath | Sort-Object) | Should -Be @($script:Prod.Config, $script:Test.Config)
        ($all | Where-Object ConfigPath -EQ $script:Test.Config).TaskName | Should -Be 'XFlowDelivery-test'
        ($all | Where-Object ConfigPath -EQ $script:Prod.Config).TaskName | Should -Be 'XFlowDelivery'
        ($all | Where-Object ConfigPath -EQ $script:Prod.Config).StatePath | Should -Be $script:Prod.State
        foreach ($s in $all) { $s.LastRun.Outcome | Should -Be 'Succeeded' }
    }

    It 'New-XFlowDeliveryConfig refuses a state folder another installation owns, and writes nothing' {
        $other = New-Installation -Name 'other' -StatePath $script:Prod.State
        $err = { Write-Config $other } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InstallationConflict,*'
        $err.Exception.Message | Should -Match ([regex]::Escape("The state folder '$($script:Prod.State)' already belongs to the installation configured in '$($script:Prod.Config)' (task XFlowDelivery)"))
        Test-Path -LiteralPath $other.Config | Should -BeFalse
    }

    It 'New-XFlowDeliveryConfig refuses the same system in another installation''s import folder' {
        $other = New-Installation -Name 'other2' -PrismePath $script:Test.Prisme
        $err = { Write-Config $other } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'InstallationConflict,*'
        $err.Exception.Message | Should -Match "Prisme's import folder .* is already served by the installation configured in '$([regex]::Escape($script:Test.Config))'"
        Test-Path -LiteralPath $other.Config | Should -BeFalse
        # Re-writing an installation's own configuration is no conflict.
        { Write-Config $script:Test @{ Force = $true } } | Should -Not -Throw
    }

    It 'Invoke-XFlowDelivery, the task script and Register-XFlowDeliveryTask refuse a hand-edited configuration that shares a folder' {
        $evil = Join-Path $script:Work 'evil.json'
        $doc = Get-Content -LiteralPath $script:Test.Config -Raw | ConvertFrom-Json
        $doc.statePath = Join-Path $script:Work 'evil-state'
        $doc.sdLoenPath = $script:Prod.SdLoen
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $evil -Encoding utf8
        if (-not $IsWindows) { chmod 600 $evil }
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null

        { Invoke-XFlowDelivery -ConfigPath $evil } | Should -Throw -ErrorId 'InstallationConflict,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $task = Invoke-XFlowChildPwsh -ScriptPath $script:EntryScript -ArgumentList @('-ConfigPath', $evil)
        $task.ExitCode | Should -Be 2 -Because $task.Output
        $task.Output | Should -Match "SD Løn's import folder .* is already served by"
        { Register -ConfigPath $evil } | Should -Throw -ErrorId 'InstallationConflict,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
        Test-Path -LiteralPath (Join-Path $script:Work 'evil-state') | Should -BeFalse -Because 'nothing ran'
        (Get-XFlowSimState -Sim $script:Sim).counts.pending | Should -Be 1
    }

    It 'Invoke-XFlowDelivery with explicit parameters or a copied configuration file: the same installation run by hand is fine, a borrowed state folder is not' {
        $copy = Join-Path $script:Work 'copy of test.json'
        Copy-Item -LiteralPath $script:Test.Config -Destination $copy
        (Invoke-XFlowDelivery -ConfigPath $copy -WarningAction SilentlyContinue | Select-Object -Last 1).Outcome | Should -Be 'Succeeded'
        Remove-Item -LiteralPath $copy
        $explicit = @{
            BaseUrl = $script:Sim.BaseUrl; ApiToken = (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force)
            CaCertificatePath = $script:Sim.CaPath; StatePath = $script:Test.State; PrismePath = $script:Test.Prisme; SdLoenPath = $script:Test.SdLoen
        }
        (Invoke-XFlowDelivery @explicit -WarningAction SilentlyContinue | Select-Object -Last 1).Outcome | Should -Be 'Succeeded'
        $explicit.PrismePath = Join-Path $script:Work 'elsewhere'
        New-Item -ItemType Directory -Path $explicit.PrismePath | Out-Null
        { Invoke-XFlowDelivery @explicit } | Should -Throw -ErrorId 'InstallationConflict,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
    }

    It 'Register-XFlowDeliveryTask refuses a task name another installation uses' {
        { Register -ConfigPath $script:Prod.Config -Extra @{ TaskName = 'xflowdelivery-TEST'; Force = $true } } |
            Should -Throw -ErrorId 'InstallationConflict,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
    }

    It 'skips a broken entry in the registry (not JSON, empty, cut short): the others still count and still conflict' {
        $broken = foreach ($entry in @{ 'not-json' = 'this is no entry'; 'empty' = ''; 'cut-short' = '{"configPath":"C:\\x.json","statePath":"/' }.GetEnumerator()) {
            $path = Join-Path $env:XFLOWDELIVERY_INSTALLATIONS "$($entry.Key).json"
            [IO.File]::WriteAllText($path, $entry.Value)
            $path
        }
        try {
            $other = New-Installation -Name 'other3' -StatePath $script:Prod.State
            $err = { Write-Config $other } | Should -Throw -PassThru
            $err.FullyQualifiedErrorId | Should -BeLike 'InstallationConflict,*'
            @(Get-XFlowDeliveryStatus).ConfigPath | Should -Contain $script:Prod.Config
        }
        finally { Remove-Item -LiteralPath $broken }
    }

    It 'an installation whose configuration file was deleted no longer counts' {
        Unregister-XFlowDeliveryTask -TaskName 'XFlowDelivery-test' -UnitDirectory $script:Units -Confirm:$false
        @(Get-ChildItem -LiteralPath $script:Units -Name) | Should -Be @('xflow-delivery.service', 'xflow-delivery.timer')
        Remove-Item -LiteralPath $script:Prod.Config
        $moved = New-Installation -Name 'moved' -StatePath $script:Prod.State -PrismePath $script:Prod.Prisme
        { Write-Config $moved } | Should -Not -Throw
        @(Get-XFlowDeliveryStatus).ConfigPath | Should -Contain $moved.Config
    }
}
