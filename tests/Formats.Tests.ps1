# The content check through the module (docs/formats.md): -PrismeValidation / -SdLoenValidation
# Off, Warn (default) and Quarantine in real runs against the simulator, and the setting in the
# configuration file.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-formats'
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim

    # A G69 debit/credit pair with the amount written sign-first (as the simulator's samples once did).
    $line = { param($n, $dk) "123G69{0:D5}081701NORFLYD&10300042&1040000001&11020250131&111000000012345678&112+0000000306914&113{1}`r`n" -f $n, $dk }
    $script:SignFirst = [Text.Encoding]::ASCII.GetBytes((& $line 1 'D') + (& $line 2 'K'))

    function script:Add-Broken {
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'Prisme'; FileName = 'G69_broken.txt'; Bytes = $script:SignFirst },
            @{ System = 'SDLoen'; FileName = 'binary.csv'; Bytes = [byte[]](0x48, 0x00, 0x01, 0x0D, 0x0A) }
        ) | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 2; systems = @('SDLoen', 'Prisme'); kind = 'sample' } | Out-Null
    }

    function script:Invoke-Run {
        param($Folders, [hashtable]$Extra = @{})
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $Folders -Extra $Extra
        $runErrors = @(); $runWarnings = @()
        $out = @(Invoke-XFlowDelivery @params -ErrorVariable runErrors -WarningVariable runWarnings -ErrorAction SilentlyContinue -WarningAction SilentlyContinue)
        [pscustomobject]@{
            Summary  = $out | Where-Object { $_ -is [XFlowDelivery.Model.XFlowRunSummary] }
            Files    = @($out | Where-Object { $_ -is [XFlowDelivery.Model.XFlowDeliveredFile] })
            Errors   = @(Select-XFlowNonTerminatingError $runErrors)
            Warnings = @($runWarnings | ForEach-Object { "$_" })
        }
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Prisme and SD Løn content checks' {
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'Warn (the default) delivers every file and names each finding''s line and field' {
        Add-Broken
        $f = New-XFlowRunFolders -Parent $script:Work
        $run = Invoke-Run $f
        $run.Summary.Outcome | Should -Be 'Succeeded'
        $run.Files.Count | Should -Be 4
        $prisme = @($run.Warnings | Where-Object { $_ -like 'G69_broken.txt*' })
        $prisme.Count | Should -Be 2 -Because ($run.Warnings -join "`n")
        $prisme[0] | Should -Match 'line 1, 112 beløb: must be 13 characters'
        $prisme[1] | Should -Match 'line 2, 112 beløb'
        @($run.Warnings | Where-Object { $_ -like 'binary.csv*' -and $_ -match 'line 1, encoding: control character U\+0000' }).Count | Should -Be 1
        # The simulator's samples follow the formats.
        $run.Warnings.Count | Should -Be 3 -Because ($run.Warnings -join "`n")
        Test-Path -LiteralPath (Join-Path $f.Prisme 'G69_broken.txt') | Should -BeTrue
    }

    It 'Quarantine keeps the file out of the folder, reports it every run, and -PrismeValidation Warn then delivers it' {
        Add-Broken
        $f = New-XFlowRunFolders -Parent $script:Work
        $first = Invoke-Run $f @{ PrismeValidation = 'Quarantine' }
        $first.Summary.Outcome | Should -Be 'CompletedWithErrors'
        $first.Summary.ExitCode | Should -Be 6
        $first.Errors.Count | Should -Be 1
        $first.Errors[0].FullyQualifiedErrorId | Should -BeLike 'InvalidContent*'
        $first.Errors[0].Exception.Message | Should -Match 'G69_broken.txt.*Prisme content check: 2 findings: line 1, 112 beløb'
        Test-Path -LiteralPath (Join-Path $f.Prisme 'G69_broken.txt') | Should -BeFalse
        (Get-XFlowDeliveryStatus -StatePath $f.State).Quarantined.Count | Should -Be 1

        $second = Invoke-Run $f @{ PrismeValidation = 'Quarantine' }
        $second.Errors[0].FullyQualifiedErrorId | Should -BeLike 'Quarantined*'
        Test-Path -LiteralPath (Join-Path $f.Prisme 'G69_broken.txt') | Should -BeFalse

        $warn = Invoke-Run $f @{ PrismeValidation = 'Warn' }
        $warn.Summary.Outcome | Should -Be 'Succeeded'
        Test-Path -LiteralPath (Join-Path $f.Prisme 'G69_broken.txt') | Should -BeTrue
        (Get-XFlowDeliveryStatus -StatePath $f.State).Quarantined.Count | Should -Be 0
    }

    It 'Off checks nothing' {
        Add-Broken
        $f = New-XFlowRunFolders -Parent $script:Work
        $run = Invoke-Run $f @{ PrismeValidation = 'Off'; SdLoenValidation = 'Off' }
        $run.Summary.Outcome | Should -Be 'Succeeded'
        $run.Warnings.Count | Should -Be 0 -Because ($run.Warnings -join "`n")
        $run.Files.Count | Should -Be 4
    }

    It 'is kept in the configuration file and the task run follows it (exit code 6 under Quarantine)' {
        Add-Broken
        $f = New-XFlowRunFolders -Parent $script:Work
        $config = Join-Path $f.Root 'config.json'
        New-XFlowDeliveryConfig -Path $config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force) `
            -SdLoenPath $f.SdLoen -PrismePath $f.Prisme -StatePath $f.State -CaCertificatePath $script:Sim.CaPath `
            -PrismeValidation Quarantine -SdLoenValidation Off -WarningAction SilentlyContinue | Out-Null
        $shown = Get-XFlowDeliveryConfig $config
        $shown.PrismeValidation | Should -Be 'Quarantine'
        $shown.SdLoenValidation | Should -Be 'Off'
        $entry = Join-Path (Split-Path -Parent (Get-XFlowModuleManifest)) 'XFlowDelivery.Task.ps1'
        $result = Invoke-XFlowChildPwsh -ScriptPath $entry -ArgumentList @('-ConfigPath', $config)
        $result.ExitCode | Should -Be 6 -Because $result.Output
        $result.Output | Should -Match 'First error: .*G69_broken.txt.*did not pass the Prisme content check'
        Test-Path -LiteralPath (Join-Path $f.Prisme 'G69_broken.txt') | Should -BeFalse
        Test-Path -LiteralPath (Join-Path $f.SdLoen 'binary.csv') | Should -BeTrue
    }

    It 'refuses a validation mode it does not know, in the file and as a parameter' {
        $f = New-XFlowRunFolders -Parent $script:Work
        { Invoke-Run $f @{ PrismeValidation = 'Strict' } } | Should -Throw -ErrorId 'ParameterArgumentValidationError,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $config = Join-Path $f.Root 'config.json'
        New-XFlowDeliveryConfig -Path $config -BaseUrl $script:Sim.BaseUrl -ApiToken (ConvertTo-SecureString 't' -AsPlainText -Force) `
            -PrismePath $f.Prisme -StatePath $f.State -WarningAction SilentlyContinue | Out-Null
        $doc = Get-Content -LiteralPath $config -Raw | ConvertFrom-Json
        $doc.prismeValidation | Should -Be 'Warn'
        $doc.prismeValidation = 'Strict'
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $config -Encoding utf8
        { Get-XFlowDeliveryConfig $config } | Should -Throw -ErrorId 'InvalidConfigFile,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand'
    }
}
