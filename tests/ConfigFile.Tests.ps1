# The configuration file holds the API token: it is created with its final permissions from the
# first byte and replaced atomically; a hand-edited file keeps the defaults of the members it
# leaves out; a task that could never decrypt its token is refused at registration.
BeforeDiscovery {
    # -Skip conditions are evaluated at discovery, before BeforeAll.
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
    $script:Strace = if (-not $script:OnWindows) { Get-Command strace -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1 }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-configfile'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim
    $script:Token = ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force
    $script:OnWindows = $IsWindows -or $PSVersionTable.PSEdition -eq 'Desktop'
    $script:Strace = if (-not $script:OnWindows) { Get-Command strace -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1 }

    function script:New-ConfigFolders {
        $f = New-XFlowRunFolders -Parent $script:Work
        $f | Add-Member -NotePropertyName Config -NotePropertyValue (Join-Path $f.Root 'config.json') -PassThru
    }

    function script:Assert-DpapiToken {
        # The token at rest: neither in clear nor merely encoded, but a DPAPI blob that Windows itself
        # (ProtectedData, not the module's code) opens in the given scope with the module's entropy.
        # The entropy is part of the file format: another would leave every existing file unreadable.
        # Compared as booleans: a failing assertion must not print the token.
        param([string]$Path, [string]$Scope)
        $text = Get-Content -LiteralPath $Path -Raw
        $text.Contains($script:Sim.Token) | Should -BeFalse -Because 'the token is not stored in clear'
        $text.Contains([Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($script:Sim.Token))) | Should -BeFalse -Because 'the token is not merely base64-encoded'
        if (-not ('System.Security.Cryptography.ProtectedData' -as [type])) {
            Add-Type -AssemblyName $(if ($PSVersionTable.PSEdition -eq 'Desktop') { 'System.Security' } else { 'System.Security.Cryptography.ProtectedData' })
        }
        $blob = [Convert]::FromBase64String(($text | ConvertFrom-Json).token.value)
        $plain = [Security.Cryptography.ProtectedData]::Unprotect($blob, [Text.Encoding]::UTF8.GetBytes('XFlowDelivery API token v1'), [Security.Cryptography.DataProtectionScope]$Scope)
        ([Text.Encoding]::UTF8.GetString($plain) -ceq $script:Sim.Token) | Should -BeTrue -Because "DPAPI ($Scope) gives the token back"
    }

    function script:New-ConfigFile {
        param($Folders, [switch]$Force)
        New-XFlowDeliveryConfig -Path $Folders.Config -BaseUrl $script:Sim.BaseUrl -ApiToken $script:Token -SdLoenPath $Folders.SdLoen `
            -PrismePath $Folders.Prisme -StatePath $Folders.State -CaCertificatePath $script:Sim.CaPath -Force:$Force -WarningAction SilentlyContinue
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Creating and replacing the configuration file' {
    It 'is never readable by others, not for a moment: created 0600 by open(2) itself, without sharing, and put in place by one rename (strace; not on Windows, and only where strace is installed)' -Skip:($script:OnWindows -or -not $script:Strace) {
        # Skipped on Windows (no strace; the ACL test below covers it) and where strace is missing.
        $f = New-ConfigFolders
        $log = Join-Path $f.Root 'strace.log'
        $child = Join-Path $f.Root 'write-config.ps1'
        @"
Import-Module '$(Get-XFlowModuleManifest)'
`$token = ConvertTo-SecureString `$env:XFLOW_TEST_TOKEN -AsPlainText -Force
foreach (`$force in `$false, `$true) {
    New-XFlowDeliveryConfig -Path '$($f.Config)' -BaseUrl '$($script:Sim.BaseUrl)' -ApiToken `$token -SdLoenPath '$($f.SdLoen)' -StatePath '$($f.State)' -Force:`$force -WarningAction SilentlyContinue | Out-Null
}
"@ | Set-Content -LiteralPath $child -Encoding utf8
        $pwsh = Get-XFlowPwshCommand
        $env:XFLOW_TEST_TOKEN = $script:Sim.Token
        try {
            & $script:Strace.Source -f -qq -e 'trace=open,openat,creat,chmod,fchmodat,rename,renameat,renameat2,link,linkat' -o $log `
                $pwsh.FilePath @($pwsh.Prefix) -NoProfile -NonInteractive -File $child
            $LASTEXITCODE | Should -Be 0
        }
        finally { Remove-Item Env:XFLOW_TEST_TOKEN }
        $lines = @(Get-Content -LiteralPath $log | Where-Object { $_ -match 'config\.json' })
        $temp = '\.config\.json\.[0-9a-f]{8}\.tmp"'

        $creates = @($lines | Where-Object { $_ -match "open(at)?\(.*$temp.*O_CREAT" })
        $creates.Count | Should -Be 2 -Because "two files were written:`n$($lines -join "`n")"
        foreach ($line in $creates) {
            $line | Should -Match 'O_EXCL' -Because 'the temp file is new, never an existing one'
            $line | Should -Match ', 0600\) = \d+$' -Because 'the mode is given to open(2): no moment with a wider one'
        }
        @($lines | Where-Object { $_ -match '(^|\s)(chmod|fchmodat)\(' }) | Should -BeNullOrEmpty -Because 'nothing is restricted afterwards'
        @($lines | Where-Object { $_ -match 'open(at)?\(.*/config\.json".*O_CREAT' }) | Should -BeNullOrEmpty -Because 'the file itself is only ever renamed into place'
        @($lines | Where-Object { $_ -match "(rename(at2?)?|link(at)?)\(.*$temp.*/config\.json`".*= 0$" }).Count | Should -BeGreaterOrEqual 2
        (Get-Item -LiteralPath $f.Config).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        @(Get-ChildItem -LiteralPath $f.Root -Filter '*.tmp' -Force) | Should -BeNullOrEmpty
    }

    It 'on Windows: a protected ACL for SYSTEM, Administrators, the writer and the service account only; DPAPI in both scopes, each read back and decrypted by a run (Windows only: ACLs and DPAPI)' -Skip:(-not $script:OnWindows) {
        # Skipped off Windows: ACLs and DPAPI LocalMachine exist only there.
        $f = New-ConfigFolders
        $me = [Security.Principal.WindowsIdentity]::GetCurrent()
        New-XFlowDeliveryConfig -Path $f.Config -BaseUrl $script:Sim.BaseUrl -ApiToken $script:Token -SdLoenPath $f.SdLoen `
            -StatePath $f.State -CaCertificatePath $script:Sim.CaPath -Scope LocalMachine -ServiceAccount $me.Name | Out-Null
        $acl = Get-Acl -LiteralPath $f.Config
        $acl.AreAccessRulesProtected | Should -BeTrue
        $sids = @($acl.Access | ForEach-Object { $_.IdentityReference.Translate([Security.Principal.SecurityIdentifier]).Value } | Sort-Object -Unique)
        $sids | Should -Be (@('S-1-5-18', 'S-1-5-32-544', $me.User.Value) | Sort-Object -Unique)
        # DPAPI round trip, LocalMachine scope: a run decrypts the token and is accepted.
        (Get-XFlowDeliveryConfig $f.Config).TokenProtection | Should -Be 'DpapiLocalMachine'
        Assert-DpapiToken -Path $f.Config -Scope LocalMachine
        Reset-XFlowSim -Sim $script:Sim
        (Invoke-XFlowDelivery -ConfigPath $f.Config)[-1].Outcome | Should -Be 'Succeeded'
        # Replaced with -Force (CurrentUser scope): the new file keeps its own restricted ACL, and
        # this account decrypts its CurrentUser token.
        New-ConfigFile -Folders $f -Force | Out-Null
        (Get-Acl -LiteralPath $f.Config).AreAccessRulesProtected | Should -BeTrue -Because 'the replacement keeps its own restricted ACL'
        (Get-XFlowDeliveryConfig $f.Config).TokenProtection | Should -Be 'DpapiCurrentUser'
        Assert-DpapiToken -Path $f.Config -Scope CurrentUser
        (Invoke-XFlowDelivery -ConfigPath $f.Config)[-1].Outcome | Should -Be 'Succeeded'
    }

    It 'replacing with -Force keeps the restricted mode and leaves no temp file' -Skip:$script:OnWindows {
        $f = New-ConfigFolders
        New-ConfigFile -Folders $f | Out-Null
        $before = (Get-Item -LiteralPath $f.Config).LastWriteTimeUtc
        New-ConfigFile -Folders $f -Force | Out-Null
        (Get-Item -LiteralPath $f.Config).UnixFileMode | Should -Be ([IO.UnixFileMode]'UserRead, UserWrite')
        (Get-Item -LiteralPath $f.Config).LastWriteTimeUtc | Should -BeGreaterOrEqual $before
        @(Get-ChildItem -LiteralPath $f.Root -File -Force | Where-Object Name -Like '.config.json.*') | Should -BeNullOrEmpty
    }
}

Describe 'Hand-edited configuration files' {
    It 'a file without <Member> reads as <Expected>' -TestCases @(
        @{ Member = 'ackMode'; Property = 'AckMode'; Expected = 'Ack' }
        @{ Member = 'timeoutSec'; Property = 'TimeoutSec'; Expected = 100 }
        @{ Member = 'deadlineSec'; Property = 'DeadlineSec'; Expected = 600 }
        @{ Member = 'allowInsecureHttp'; Property = 'AllowInsecureHttp'; Expected = $false }
        @{ Member = 'proxyUrl'; Property = 'ProxyUrl'; Expected = $null }
        @{ Member = 'caCertificatePath'; Property = 'CaCertificatePath'; Expected = $null }
        @{ Member = 'prismePath'; Property = 'PrismePath'; Expected = $null }
    ) {
        param($Member, $Property, $Expected)
        $f = New-ConfigFolders
        New-XFlowDeliveryConfig -Path $f.Config -BaseUrl $script:Sim.BaseUrl -ApiToken $script:Token -SdLoenPath $f.SdLoen -PrismePath $f.Prisme `
            -StatePath $f.State -CaCertificatePath $script:Sim.CaPath -AckMode None -TimeoutSec 7 -DeadlineSec 9 -ProxyUrl 'http://proxy:3128' -WarningAction SilentlyContinue | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        $doc.PSObject.Properties.Name | Should -Contain $Member
        $doc.PSObject.Properties.Remove($Member)
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        $read = Get-XFlowDeliveryConfig -Path $f.Config
        $read.$Property | Should -Be $Expected
    }

    It 'a file with an unknown member nested 200,000 deep is InvalidConfigFile, for the cmdlets and the task, not a crash' {
        # A stack overflow would end the process with no error record and no exit code of ours, so
        # the file is read in a child pwsh.
        $f = New-ConfigFolders
        New-ConfigFile -Folders $f | Out-Null
        $text = [IO.File]::ReadAllText($f.Config)
        [IO.File]::WriteAllText($f.Config, '{"extra":' + ('[' * 200000) + (']' * 200000) + ',' + $text.Substring($text.IndexOf('{') + 1))
        $script = Join-Path $f.Root 'deep.ps1'
        Set-Content -LiteralPath $script -Encoding utf8 -Value @'
param($Manifest, $Config)
Import-Module $Manifest
try { Get-XFlowDeliveryConfig -Path $Config | Out-Null; 'NO ERROR' } catch { "ERRORID=$($_.FullyQualifiedErrorId)"; "MESSAGE=$($_.Exception.Message)" }
"EXIT=$(Invoke-XFlowDelivery -ConfigPath $Config -AsScheduledTask)"
'@
        $result = Invoke-XFlowChildPwsh -ScriptPath $script -ArgumentList @((Get-XFlowModuleManifest), $f.Config)
        $result.ExitCode | Should -Be 0 -Because $result.Output
        $result.Output | Should -Match '(?m)^ERRORID=InvalidConfigFile,XFlowDelivery\.Cmdlets\.GetXFlowDeliveryConfigCommand\r?$'
        $result.Output | Should -Match 'values nested more than 64 deep'
        $result.Output | Should -Match '(?m)^EXIT=2\r?$' -Because 'the task reports a configuration problem (docs/monitoring.md)'
    }

    It 'a run works from a file that leaves out every optional member' {
        Reset-XFlowSim -Sim $script:Sim
        $f = New-ConfigFolders
        New-ConfigFile -Folders $f | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        foreach ($m in 'ackMode', 'timeoutSec', 'deadlineSec', 'allowInsecureHttp', 'prismePath') { $doc.PSObject.Properties.Remove($m) }
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = [byte[]](1, 2) }) | Out-Null
        $out = @(Invoke-XFlowDelivery -ConfigPath $f.Config)
        $out[-1].Outcome | Should -Be 'Succeeded'
        $out[-1].Delivered | Should -Be 1
    }
}

Describe 'The token value in files of every shape (read as bytes, never as a string)' {
    BeforeAll {
        # A token whose base64 holds '/' and '+': older versions of the module wrote '/' as "\/".
        $script:SlashToken = 'xft-secret-???>>>~~~' + [Guid]::NewGuid().ToString('N')
        $script:SlashBase64 = [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($script:SlashToken))
        $script:SlashSim = Start-XFlowSim -Token $script:SlashToken

        function script:New-SlashConfig {
            # A configuration file for $SlashSim; returns the folders and the file's text.
            $f = New-ConfigFolders
            New-XFlowDeliveryConfig -Path $f.Config -BaseUrl $script:SlashSim.BaseUrl -ApiToken (ConvertTo-SecureString $script:SlashToken -AsPlainText -Force) `
                -SdLoenPath $f.SdLoen -StatePath $f.State -CaCertificatePath $script:SlashSim.CaPath -WarningAction SilentlyContinue | Out-Null
            $f | Add-Member -NotePropertyName Text -NotePropertyValue ([IO.File]::ReadAllText($f.Config)) -PassThru
        }
    }

    AfterAll { Stop-XFlowSim -Sim $script:SlashSim }

    It 'the base64 of this test token holds both characters that matter' {
        $script:SlashBase64 | Should -Match '/'
        $script:SlashBase64 | Should -Match '\+'
    }

    It '<Shape>: a run decrypts the token and is accepted' -TestCases @(
        @{ Shape = 'as written by this version' }
        @{ Shape = 'slashes escaped as older versions wrote them, UTF-16 with a byte order mark (Windows PowerShell 5.1 Out-File)' }
        @{ Shape = 'every character of the value a \u escape, UTF-8 with a byte order mark' }
        @{ Shape = 'compact, the token first, an unknown member with nested arrays and objects' }
        @{ Shape = 'the member names token and value written with \u escapes' }
    ) {
        param($Shape)
        $f = New-SlashConfig
        $f.Text | Should -BeLike "*`"$script:SlashBase64`"*" -Because 'the value is written as plain base64'
        $value = '"' + $script:SlashBase64 + '"'
        switch -Wildcard ($Shape) {
            'as written*' { }
            'slashes escaped*' {
                $text = $f.Text.Replace($value, $value.Replace('/', '\/'))
                [IO.File]::WriteAllText($f.Config, $text, [Text.UnicodeEncoding]::new($false, $true))
            }
            'every character*' {
                $escaped = -join ($script:SlashBase64.ToCharArray() | ForEach-Object { '\u{0:x4}' -f [int]$_ })
                [IO.File]::WriteAllText($f.Config, $f.Text.Replace($value, "`"$escaped`""), [Text.UTF8Encoding]::new($true))
            }
            'compact*' {
                $doc = $f.Text | ConvertFrom-Json
                $reordered = [ordered]@{ token = $doc.token; extra = @(@{ a = @(1, 'x]', $null, @{}) }, @()) }
                foreach ($p in $doc.PSObject.Properties) { if ($p.Name -ne 'token') { $reordered[$p.Name] = $p.Value } }
                [IO.File]::WriteAllText($f.Config, ($reordered | ConvertTo-Json -Depth 10 -Compress))
            }
            'the member names*' {
                [IO.File]::WriteAllText($f.Config, $f.Text.Replace('"token":', '"tok\u0065n":').Replace('"value":', '"v\u0061lue":'))
            }
        }
        (Get-XFlowDeliveryConfig -Path $f.Config).TokenSet | Should -BeTrue
        Reset-XFlowSim -Sim $script:SlashSim
        Add-XFlowSimDelivery -Sim $script:SlashSim -Delivery @(@{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [Text.Encoding]::UTF8.GetBytes("a;1`r`n") }) | Out-Null
        $out = @(Invoke-XFlowDelivery -ConfigPath $f.Config -WarningAction SilentlyContinue)
        $out[-1].Outcome | Should -Be 'Succeeded'
        $out[-1].Delivered | Should -Be 1
    }

    It 'a file with two tokens, two token values, a control character in the value, or a broken value, is refused by name' {
        $f = New-SlashConfig
        $twice = $f.Text.Replace('"token":', '"token":{"value":"QUJD"},"token2":')
        $twice = $twice.Replace('"token2":', '"token":')
        [IO.File]::WriteAllText($f.Config, $twice)
        $err = { Get-XFlowDeliveryConfig -Path $f.Config } | Should -Throw -ErrorId 'InvalidConfigFile,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand' -PassThru
        $err.Exception.Message | Should -BeLike '*a second token member*'

        [IO.File]::WriteAllText($f.Config, $f.Text.Replace('"value":', '"value":"QUJD","value":'))
        $err = { Get-XFlowDeliveryConfig -Path $f.Config } | Should -Throw -ErrorId 'InvalidConfigFile,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand' -PassThru
        $err.Exception.Message | Should -BeLike '*a second token value*'
        $err.Exception.Message.Contains($script:SlashBase64) | Should -BeFalse -Because 'the error does not show the value'

        # A raw control character inside the value: not JSON, refused before anything decodes it.
        [IO.File]::WriteAllText($f.Config, $f.Text.Replace('"' + $script:SlashBase64 + '"', '"' + $script:SlashBase64.Insert(8, "`t") + '"'))
        $err = { Get-XFlowDeliveryConfig -Path $f.Config } | Should -Throw -ErrorId 'InvalidConfigFile,XFlowDelivery.Cmdlets.GetXFlowDeliveryConfigCommand' -PassThru
        $err.Exception.Message | Should -BeLike '*a control character in a string*'
        $err.Exception.Message.Contains($script:SlashBase64.Substring(0, 8)) | Should -BeFalse -Because 'the error does not show the value'

        $broken = $f.Text.Replace('"' + $script:SlashBase64 + '"', '"' + $script:SlashBase64.Substring(1) + '"')
        [IO.File]::WriteAllText($f.Config, $broken)
        $err = { Invoke-XFlowDelivery -ConfigPath $f.Config } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'TokenUnreadable,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand'
        $err.Exception.Message.Contains($script:SlashBase64.Substring(1)) | Should -BeFalse -Because 'the error does not show the value'
    }
}

Describe 'Register-XFlowDeliveryTask -LogonType S4U' {
    It 'refuses a token protected with DPAPI CurrentUser, naming the fix, and registers nothing' {
        $f = New-ConfigFolders
        New-ConfigFile -Folders $f | Out-Null
        $doc = Get-Content -LiteralPath $f.Config -Raw | ConvertFrom-Json
        $doc.token.protection = 'DpapiCurrentUser'
        $doc | ConvertTo-Json -Depth 5 | Set-Content -LiteralPath $f.Config -Encoding utf8
        $units = New-Item -ItemType Directory -Path (Join-Path $f.Root 'units')
        $register = @{ ConfigPath = $f.Config; Account = 'KOMMUNE\svc-xflow'; LogonType = 'S4U' }
        if (-not $script:OnWindows) { $register.UnitDirectory = $units.FullName }
        $err = { Register-XFlowDeliveryTask @register -WhatIf } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -Be 'S4UWithCurrentUserToken,XFlowDelivery.Cmdlets.RegisterXFlowDeliveryTaskCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match '-Scope LocalMachine -ServiceAccount KOMMUNE\\svc-xflow'
        $err.Exception.Message | Should -Match 'exit code 3'
        @(Get-ChildItem -LiteralPath $units.FullName) | Should -BeNullOrEmpty
    }
}
