# Configuration files (New-/Get-XFlowDeliveryConfig), Invoke-XFlowDelivery -ConfigPath and -WhatIf,
# and bad input: nothing is written and nothing acknowledged after a validation error.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-config'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim
    $script:Token = ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force

    function script:New-Folders {
        $f = New-XFlowRunFolders -Parent (New-XFlowTestDirectory -Name 'cfg')
        $f | Add-Member -NotePropertyName Config -NotePropertyValue (Join-Path $f.Root 'config.json')
        $f
    }

    function script:New-Config {
        param($Folders, [hashtable]$Extra = @{})
        $params = @{
            Path = $Folders.Config; BaseUrl = $script:Sim.BaseUrl; ApiToken = $script:Token; SdLoenPath = $Folders.SdLoen
            PrismePath = $Folders.Prisme; StatePath = $Folders.State; CaCertificatePath = $script:Sim.CaPath; TimeoutSec = 20
        }
        foreach ($k in $Extra.Keys) { $params[$k] = $Extra[$k] }
        New-XFlowDeliveryConfig @params -WarningAction SilentlyContinue
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'New-XFlowDeliveryConfig and Get-XFlowDeliveryConfig' {
    It 'writes a file only its owner can read, says plainly that this is not encryption, and never shows the token' {
        $f = New-Folders
        $created = New-XFlowDeliveryConfig -Path $f.Config -BaseUrl $script:Sim.BaseUrl -ApiToken $script:Token -SdLoenPath $f.SdLoen `
            -StatePath $f.State -AckMode None -ProxyUrl 'http://proxy.kommune.local:3128' -WarningVariable warnings -WarningAction SilentlyContinue
        ($warnings -join ' ') | Should -Match 'NOT encrypted'
        (Get-Item -LiteralPath $f.Config).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')

        $read = Get-XFlowDeliveryConfig -Path $f.Config
        $read | Should -BeOfType ([XFlowDelivery.Model.XFlowDeliveryConfig])
        $read.TokenSet | Should -BeTrue
        $read.TokenProtection | Should -Be 'OwnerOnlyFile'
        $read.SdLoenPath | Should -Be $f.SdLoen
        $read.PrismePath | Should -BeNullOrEmpty
        $read.AckMode | Should -Be 'None'
        $read.ProxyUrl | Should -Be 'http://proxy.kommune.local:3128'
        $created.Path | Should -Be $f.Config
        $shown = ($read, $created | Format-List * | Out-String -Width 4096) + ($read | ConvertTo-Json)
        $shown.Contains($script:Sim.Token) | Should -BeFalse
        # At rest it is not plain text either (base64), but the file mode is what protects it.
        (Get-Content -LiteralPath $f.Config -Raw).Contains($script:Sim.Token) | Should -BeFalse
    }

    It 'refuses to overwrite without -Force, and replaces with -Force' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        $err = { New-Config -Folders $f -Extra @{ TimeoutSec = 30 } } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ConfigFileExists,*'
        $err.CategoryInfo.Category | Should -Be 'ResourceExists'
        (Get-XFlowDeliveryConfig $f.Config).TimeoutSec | Should -Be 20
        New-Config -Folders $f -Extra @{ TimeoutSec = 30; Force = $true } | Out-Null
        (Get-XFlowDeliveryConfig $f.Config).TimeoutSec | Should -Be 30
        (Get-Item -LiteralPath $f.Config).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
    }

    It 'rejects bad input with a clear ErrorId and writes nothing: <Case>' -TestCases @(
        @{ Case = 'missing import folder'; Extra = @{ SdLoenPath = '/nonexistent/SD Løn' }; ErrorId = 'FolderNotFound'; Category = 'ObjectNotFound' }
        @{ Case = 'http to a remote host'; Extra = @{ BaseUrl = 'http://xflow.example.dk/api/v1/' }; ErrorId = 'InsecureUrl'; Category = 'InvalidArgument' }
        @{ Case = 'http to loopback without the opt-in'; Extra = @{ BaseUrl = 'http://127.0.0.1:8080/api/v1/' }; ErrorId = 'InsecureUrl'; Category = 'InvalidArgument' }
        @{ Case = 'relative URL'; Extra = @{ BaseUrl = 'api/v1' }; ErrorId = 'InvalidBaseUrl'; Category = 'InvalidArgument' }
        @{ Case = 'empty token'; Extra = @{ ApiToken = [securestring]::new() }; ErrorId = 'EmptyToken'; Category = 'InvalidArgument' }
        @{ Case = 'no import folder'; Extra = @{ SdLoenPath = $null; PrismePath = $null }; ErrorId = 'NoImportFolder'; Category = 'InvalidArgument' }
        @{ Case = 'folder on another provider'; Extra = @{ StatePath = 'Env:\TEMP' }; ErrorId = 'InvalidPath'; Category = 'InvalidArgument' }
        @{ Case = 'missing CA file'; Extra = @{ CaCertificatePath = '/nonexistent/ca.pem' }; ErrorId = 'FileNotFound'; Category = 'ObjectNotFound' }
        @{ Case = 'proxy that is not http'; Extra = @{ ProxyUrl = 'socks5://proxy:1080' }; ErrorId = 'InvalidProxyUrl'; Category = 'InvalidArgument' }
    ) {
        $f = New-Folders
        $given = @{}
        foreach ($k in $Extra.Keys) { if ($null -ne $Extra[$k]) { $given[$k] = $Extra[$k] } }
        $params = @{
            Path = $f.Config; BaseUrl = $script:Sim.BaseUrl; ApiToken = $script:Token; StatePath = $f.State
        }
        if (-not $Extra.ContainsKey('SdLoenPath')) { $params.SdLoenPath = $f.SdLoen }
        foreach ($k in $given.Keys) { $params[$k] = $given[$k] }
        $err = { New-XFlowDeliveryConfig @params } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be "$ErrorId,XFlowDelivery.Cmdlets.NewXFlowDeliveryConfigCommand"
        $err.CategoryInfo.Category | Should -Be $Category
        $err.Exception.Message | Should -Not -BeNullOrEmpty
        Test-Path -LiteralPath $f.Config | Should -BeFalse
        @(Get-ChildItem -LiteralPath $f.Root -Force -Recurse -File).Count | Should -Be 0
    }

    It 'completes -AckMode and -Scope from fixed sets' {
        foreach ($case in @(@{ Line = 'New-XFlowDeliveryConfig -AckMode '; Expected = @('Ack', 'None') },
                @{ Line = 'New-XFlowDeliveryConfig -Scope '; Expected = @('CurrentUser', 'LocalMachine') })) {
            $completions = TabExpansion2 -inputScript $case.Line -cursorColumn $case.Line.Length
            @($completions.CompletionMatches.CompletionText) | Should -Be $case.Expected
        }
    }
}

Describe 'Reading configuration files: errors' {
    It 'a missing file is ConfigFileNotFound (ObjectNotFound, the path as target)' {
        $path = Join-Path $script:Work 'absent.json'
        $err = { Get-XFlowDeliveryConfig -Path $path } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'ConfigFileNotFound,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand'
        $err.CategoryInfo.Category | Should -Be 'ObjectNotFound'
        $err.TargetObject | Should -Be $path
    }

    It 'a file that is not JSON, or holds a relative folder, is InvalidConfigFile' {
        $f = New-Folders
        Set-Content -LiteralPath $f.Config -Value 'not json at all' -Encoding utf8
        { Get-XFlowDeliveryConfig -Path $f.Config } | Should -Throw -ErrorId 'InvalidConfigFile,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand'
        Remove-Item -LiteralPath $f.Config
        New-Config -Folders $f | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        $doc.sdLoenPath = 'relative/SD Løn'
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        $err = { Invoke-XFlowDelivery -ConfigPath $f.Config } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'InvalidConfigFile,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.Exception.Message | Should -Match 'sdLoenPath .* is not an absolute path'
    }

    It 'a path that cannot be read as a file is ConfigFileUnreadable (ReadError), naming the account' {
        # A folder where the file should be: unreadable even for root (file modes would not stop root).
        $f = New-Folders
        New-Item -ItemType Directory -Path $f.Config | Out-Null
        $err = { Get-XFlowDeliveryConfig -Path $f.Config } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'ConfigFileUnreadable,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand'
        $err.CategoryInfo.Category | Should -Be 'ReadError'
        $err.Exception.Message | Should -Match ([regex]::Escape([Environment]::UserName))
    }

    It 'a token protected for another account (DPAPI CurrentUser) is TokenUnreadable, naming the running account and the fix' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        $doc.token.protection = 'DpapiCurrentUser'
        $doc.token.protectedBy = 'KOMMUNE\admin'
        # A blob no DPAPI key opens: on Windows too, where this account would decrypt its own token.
        $doc.token.value = [Convert]::ToBase64String([byte[]](1..64))
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        (Get-XFlowDeliveryConfig $f.Config).TokenProtectedBy | Should -Be 'KOMMUNE\admin'
        $err = { Invoke-XFlowDelivery -ConfigPath $f.Config } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'TokenUnreadable,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.CategoryInfo.Category | Should -Be 'SecurityError'
        $err.TargetObject | Should -Be $f.Config
        $err.Exception.Message | Should -Match ([regex]::Escape("$([Environment]::UserDomainName)\$([Environment]::UserName)"))
        $err.Exception.Message | Should -Match 'KOMMUNE\\admin'
        $err.Exception.Message | Should -Match 'New-XFlowDeliveryConfig'
        $err.Exception.Message | Should -Match 'LocalMachine'
    }

    It 'a file without a token is TokenMissing' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        $doc.token = $null
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        (Get-XFlowDeliveryConfig $f.Config).TokenSet | Should -BeFalse
        { Invoke-XFlowDelivery -ConfigPath $f.Config } | Should -Throw -ErrorId 'TokenMissing,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
    }
}

Describe 'Invoke-XFlowDelivery -ConfigPath, -WhatIf and the run summary' {
    BeforeEach { Reset-XFlowSim -Sim $script:Sim }

    It 'delivers from a configuration file and writes the summary last' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 3; systems = @('SDLoen', 'Prisme') } | Out-Null
        $out = @(Invoke-XFlowDelivery -ConfigPath $f.Config)
        $out.Count | Should -Be 4
        $out[0..2] | ForEach-Object { $_ | Should -BeOfType ([XFlowDelivery.Model.XFlowDeliveredFile]) }
        $summary = $out[-1]
        $summary | Should -BeOfType ([XFlowDelivery.Model.XFlowRunSummary])
        $summary.Outcome | Should -Be 'Succeeded'
        $summary.Delivered | Should -Be 3
        $summary.ExitCode | Should -Be 0
        $summary.RunId | Should -Not -BeNullOrEmpty
        (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 3
    }

    It '-WhatIf fetches and validates, says what it would deliver where, writes nothing and acknowledges nothing' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'SDLoen'; FileName = 'løn januar.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes('a;b') }
            @{ System = 'Prisme'; FileName = 'G69_1.txt'; Bytes = [byte[]](1, 2, 3) }) | Out-Null
        # What-if lines go to the host, so the run happens in a child pwsh whose output is captured.
        $script = Join-Path $f.Root 'whatif.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value @'
param($Manifest, $Config)
Import-Module $Manifest
$summary = Invoke-XFlowDelivery -ConfigPath $Config -WhatIf
"PLANNED=$($summary.Planned) DELIVERED=$($summary.Delivered) OUTCOME=$($summary.Outcome)"
'@
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @((Get-XFlowModuleManifest), $f.Config)
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match ([regex]::Escape("What if: Deliver 'løn januar.csv'"))
        $result.Output | Should -Match ([regex]::Escape("to '$(Join-Path $f.SdLoen 'løn januar.csv')'"))
        $result.Output | Should -Match ([regex]::Escape("What if: Deliver 'G69_1.txt'"))
        $result.Output | Should -Match 'PLANNED=2 DELIVERED=0 OUTCOME=Succeeded'
        $result.Output.Contains($script:Sim.Token) | Should -BeFalse
        @(Get-ChildItem -LiteralPath $f.SdLoen, $f.Prisme -Force).Count | Should -Be 0
        $state = Get-XFlowSimState -Sim $script:Sim
        $state.counts.acked | Should -Be 0
        @($state.deliveries | Where-Object ackCount -GT 0).Count | Should -Be 0
        # Then a real run delivers both.
        @(Invoke-XFlowDelivery -ConfigPath $f.Config | Where-Object { $_ -is [XFlowDelivery.Model.XFlowDeliveredFile] }).Count | Should -Be 2
    }

    It '-Confirm where nobody can answer (non-interactive) stops before anything is fetched or written' {
        $f = New-Folders
        New-Config -Folders $f | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'generate' -Body @{ count = 1; systems = @('SDLoen') } | Out-Null
        # $ConfirmPreference High + ConfirmImpact Medium does not ask; -Confirm forces the question,
        # which a non-interactive session cannot put: PowerShell's own InvalidOperation error.
        $script = Join-Path $f.Root 'confirm.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value 'param($Manifest, $Config) Import-Module $Manifest; try { Invoke-XFlowDelivery -ConfigPath $Config -Confirm; "NO ERROR" } catch { "ERRORID=$($_.FullyQualifiedErrorId)"; "MESSAGE=$($_.Exception.Message)" }'
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @((Get-XFlowModuleManifest), $f.Config)
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match '(?m)^ERRORID=InvalidOperation,XFlowDelivery\.Cmdlets\.InvokeXFlowDeliveryCommand\r?$'
        $result.Output | Should -Match 'NonInteractive mode'
        @(Get-XFlowSimDeliveries -Sim $script:Sim | Where-Object handedOutCount -GT 0).Count | Should -Be 0
        @(Get-ChildItem -LiteralPath $f.SdLoen -Force).Count | Should -Be 0
        (Get-XFlowSimState -Sim $script:Sim).counts.acked | Should -Be 0
    }
}
