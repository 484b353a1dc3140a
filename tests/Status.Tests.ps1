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

Describe 'the module''s own JSON readers (history answer, engine events) read what DataContractJsonSerializer reads' {
    BeforeAll {
        # A reader of the module and the serializer, called on a byte[] (they take the engine's pointer).
        $assembly = (Get-Command Get-XFlowDeliveryHistory).ImplementingType.Assembly
        Add-Type -CompilerOptions '-unsafe' -ReferencedAssemblies $assembly.Location -TypeDefinition @'
using System;
using System.Reflection;
public static class ModuleReaders
{
    /// <summary>own: ownType.ownMethod(byte*, long); else EngineJson.ReadAnswer&lt;answerType&gt;.</summary>
    public static unsafe object Read(Assembly module, string ownType, string ownMethod, string answerType, bool own, byte[] json)
    {
        MethodInfo read = own
            ? module.GetType(ownType, true).GetMethod(ownMethod, BindingFlags.Static | BindingFlags.NonPublic, null, new[] { typeof(byte*), typeof(long) }, null)
            : module.GetType("XFlowDelivery.Native.EngineJson", true).GetMethod("ReadAnswer", BindingFlags.Static | BindingFlags.NonPublic)
                .MakeGenericMethod(module.GetType(answerType, true));
        fixed (byte* p = json)
        {
            try { return read.Invoke(null, new object[] { Pointer.Box(p, typeof(byte*)), (long)json.Length }); }
            catch (TargetInvocationException e) { throw e.InnerException; }
        }
    }
}
'@
        $script:Module = $assembly
        $script:Fields = 'id', 'system', 'requestedName', 'wantedName', 'fileName', 'folder', 'sha256', 'createdAt', 'state', 'reason', 'runId', 'receivedAt', 'publishedAt', 'acknowledgedAt'
        # Text with every kind of character a name, folder or message may hold.
        $script:Pieces = @('a', 'SD Løn', '"', '\', '/', "`n", "`t", [string][char]8, [string][char]12, [string][char]1, [string][char]0x1f, "`r`n", [char]::ConvertFromUtf32(0x1F600),
            [string][char]0x2028, [string][char]0xFFFD, [string][char]0xFDD0, 'æøå', '€', '{"x":[1]}', ' ', '')
        function script:New-Text([Random]$Random) {
            -join (1..$Random.Next(0, 6) | ForEach-Object { $script:Pieces[$Random.Next($script:Pieces.Count)] })
        }
        # A JSON string literal as the engine writes it (every non-ASCII or control character as
        # \uXXXX) or, when $Raw, with non-ASCII as raw UTF-8 and the short escapes (\t, \r, \/, ...).
        function script:ConvertTo-JsonText([string]$Text, [bool]$Raw) {
            $short = @{ [char]8 = '\b'; [char]9 = '\t'; [char]10 = '\n'; [char]12 = '\f'; [char]13 = '\r'; [char]'/' = '\/' }
            $sb = [Text.StringBuilder]::new('"')
            foreach ($c in $Text.ToCharArray()) {
                if ($c -eq '"') { [void]$sb.Append('\"') }
                elseif ($c -eq '\') { [void]$sb.Append('\\') }
                elseif ($Raw -and $short.ContainsKey($c)) { [void]$sb.Append($short[$c]) }
                elseif ([int]$c -lt 0x20 -or (-not $Raw -and [int]$c -gt 0x7e)) { [void]$sb.Append(('\u{0:x4}' -f [int]$c)) }
                else { [void]$sb.Append($c) }
            }
            [void]$sb.Append('"')
            $sb.ToString()
        }
        function script:New-Answer([Random]$Random, [bool]$Raw) {
            $ws = { (' ', '', "`n", "`t", '  ')[$Random.Next(5)] }
            $records = foreach ($n in 1..$Random.Next(0, 8)) {
                $members = [Collections.Generic.List[string]]::new()
                foreach ($f in $script:Fields) {
                    $value = if ($Random.Next(5) -eq 0) { 'null' } else { ConvertTo-JsonText (New-Text $Random) $Raw }
                    $members.Add("`"$f`"$(& $ws):$(& $ws)$value")
                }
                $members.Add("`"size`":$(@(0, 1, 4096, [long]::MaxValue, -3)[$Random.Next(5)])")
                # Members this module does not read, of every shape.
                $members.Add('"tempName":null')
                $members.Add("`"extra`":{`"a`":[1,2.5e3,true,false,null,{`"b`":`"\u00f8`"}],`"c`":-0.5}")
                $members.Add('"list":[]')
                $shuffled = $members | Sort-Object { $Random.Next() }
                '{' + (& $ws) + ($shuffled -join ",$(& $ws)") + (& $ws) + '}'
            }
            '{"engine":"x",' + (& $ws) + '"deliveries":[' + ($records -join ',') + ']' + (& $ws) + '}'
        }
        function script:Read-Both([byte[]]$Bytes, [string]$OwnType = 'XFlowDelivery.Native.HistoryJson', [string]$OwnMethod = 'Read', [string]$AnswerType = 'XFlowDelivery.Native.HistoryAnswer') {
            foreach ($own in $true, $false) {
                try { [pscustomobject]@{ Answer = [ModuleReaders]::Read($script:Module, $OwnType, $OwnMethod, $AnswerType, $own, $Bytes); Error = $null } }
                catch { [pscustomobject]@{ Answer = $null; Error = $_.Exception.GetBaseException() } }
            }
        }
        # An engine event of one kind: its members, some null, with unknown ones, in any order.
        function script:New-Event([Random]$Random, [bool]$Raw) {
            $ws = { (' ', '', "`n", '  ')[$Random.Next(4)] }
            $text = { if ($Random.Next(6) -eq 0) { 'null' } else { ConvertTo-JsonText (New-Text $Random) $Raw } }
            $number = { if ($Random.Next(6) -eq 0) { 'null' } else { "$(@(0, 1, 4096, [long]::MaxValue, -3)[$Random.Next(5)])" } }
            $object = {
                param([string[]]$Texts, [string[]]$Numbers)
                $m = @($Texts | ForEach-Object { "`"$_`":$(& $text)" }) + @($Numbers | ForEach-Object { "`"$_`":$(@(0, 7, 1440)[$Random.Next(3)])" }) + '"extra":[{"x":true}]'
                '{' + (($m | Sort-Object { $Random.Next() }) -join ",$(& $ws)") + '}'
            }
            $kind = @('verbose', 'warning', 'error', 'progress', 'delivered', 'summary')[$Random.Next(6)]
            $members = [Collections.Generic.List[string]]::new()
            $members.Add("`"kind`":`"$kind`"")
            $texts, $numbers = switch ($kind) {
                'progress' { , @('activity', 'status'); , @('current', 'total') }
                'delivered' { , @('id', 'system', 'fileName', 'path', 'sha256', 'createdAt'); , @('size') }
                'error' { , @('message', 'errorId', 'category', 'target'); , @() }
                'summary' { , @('runId', 'outcome', 'startedAt'); , @('delivered', 'failed', 'skipped', 'reacknowledged', 'pages', 'durationMs') }
                default { , @('message'); , @() }
            }
            foreach ($t in $texts) { $members.Add("`"$t`":$(& $text)") }
            foreach ($n in $numbers) { $members.Add("`"$n`":$(& $number)") }
            if ($kind -eq 'summary') {
                $members.Add('"error":' + $(if ($Random.Next(2)) { 'null' } else { & $object @('errorId', 'category', 'message', 'target') @() }))
                $stalls = @(1..$Random.Next(0, 3) | ForEach-Object { & $object @('system', 'folder', 'oldestFile', 'oldestPublishedAt') @('files', 'oldestAgeMinutes', 'thresholdMinutes') })
                $members.Add('"stalls":' + $(if ($Random.Next(5) -eq 0) { 'null' } else { '[' + ($stalls -join ',') + ']' }))
            }
            $members.Add('"future":{"a":[1,2.5e3,null]}')
            '{' + (& $ws) + (($members | Sort-Object { $Random.Next() }) -join ",$(& $ws)") + (& $ws) + '}'
        }
    }

    It 'reads 150 generated answers (escapes, raw UTF-8, members in any order, unknown members, whitespace) as the serializer does' {
        $random = [Random]::new(20261201)
        foreach ($i in 1..150) {
            $text = New-Answer $random ($i % 2 -eq 0)
            $own, $dcjs = Read-Both ([Text.Encoding]::UTF8.GetBytes($text))
            $own.Error | Should -BeNullOrEmpty -Because $text
            $dcjs.Error | Should -BeNullOrEmpty -Because $text
            $own.Answer.Deliveries.Count | Should -Be $dcjs.Answer.Deliveries.Count -Because $text
            for ($k = 0; $k -lt $own.Answer.Deliveries.Count; $k++) {
                foreach ($p in 'Id', 'System', 'RequestedName', 'WantedName', 'FileName', 'Folder', 'Sha256', 'Size', 'CreatedAt', 'State', 'Reason', 'RunId', 'ReceivedAt', 'PublishedAt', 'AcknowledgedAt') {
                    $own.Answer.Deliveries[$k].$p | Should -BeExactly $dcjs.Answer.Deliveries[$k].$p -Because "$p in $text"
                }
            }
        }
    }

    It 'refuses what is not a whole JSON answer as UnreadableEngineOutput, like the serializer' {
        $random = [Random]::new(7)
        $text = New-Answer $random $false
        while (-not $text.Contains('"id"')) { $text = New-Answer $random $false }
        $bytes = [Text.Encoding]::UTF8.GetBytes($text)
        $cuts = @(1..($bytes.Length - 1) | Sort-Object { $random.Next() } | Select-Object -First 60)
        foreach ($cut in $cuts) {
            $own, $dcjs = Read-Both $bytes[0..($cut - 1)]
            $own.Error.ErrorId | Should -Be 'UnreadableEngineOutput' -Because "cut at $cut of $text"
            $dcjs.Error.ErrorId | Should -Be 'UnreadableEngineOutput' -Because "cut at $cut"
        }
        foreach ($bad in '{"deliveries":[{"size":1.5}]}', '{"deliveries":[{"id":"\q"}]}', '{"deliveries":[{"id":"a' + [char]1 + '"}]}', '{"deliveries":[]} x', '', '{"deliveries":[{"id":1}]}') {
            $own, $dcjs = Read-Both ([Text.Encoding]::UTF8.GetBytes($bad))
            $own.Error.ErrorId | Should -Be 'UnreadableEngineOutput' -Because $bad
        }
    }
    It 'reads 300 generated engine events (every kind, nested error and stalls, escapes, any order, unknown members) as the serializer does' {
        $random = [Random]::new(20261202)
        $eventProperties = 'Kind', 'Message', 'Activity', 'Status', 'Current', 'Total', 'Id', 'System', 'FileName', 'Path', 'Sha256', 'Size', 'CreatedAt',
            'ErrorId', 'Category', 'Target', 'RunId', 'Outcome', 'Delivered', 'Failed', 'Skipped', 'Reacknowledged', 'Pages', 'StartedAt', 'DurationMs'
        foreach ($i in 1..300) {
            $text = New-Event $random ($i % 2 -eq 0)
            $own, $dcjs = Read-Both ([Text.Encoding]::UTF8.GetBytes($text)) 'XFlowDelivery.Native.EngineJson' 'ReadEvent' 'XFlowDelivery.Native.EngineEvent'
            $own.Error | Should -BeNullOrEmpty -Because $text
            $dcjs.Error | Should -BeNullOrEmpty -Because $text
            foreach ($p in $eventProperties) { $own.Answer.$p | Should -BeExactly $dcjs.Answer.$p -Because "$p in $text" }
            foreach ($p in 'ErrorId', 'Category', 'Message', 'Target') { $own.Answer.Error.$p | Should -BeExactly $dcjs.Answer.Error.$p -Because "Error.$p in $text" }
            ($null -eq $own.Answer.Stalls) | Should -Be ($null -eq $dcjs.Answer.Stalls) -Because $text
            if ($null -eq $own.Answer.Stalls) { continue }
            $own.Answer.Stalls.Count | Should -Be $dcjs.Answer.Stalls.Count -Because $text
            for ($k = 0; $k -lt $own.Answer.Stalls.Count; $k++) {
                foreach ($p in 'System', 'Folder', 'Files', 'OldestFile', 'OldestPublishedAt', 'OldestAgeMinutes', 'ThresholdMinutes') {
                    $own.Answer.Stalls[$k].$p | Should -BeExactly $dcjs.Answer.Stalls[$k].$p -Because "Stalls[$k].$p in $text"
                }
            }
        }
    }

    It 'refuses an event that is not whole, or whose member has the wrong type, as UnreadableEngineOutput' {
        # The serializer refuses only the first two; it reads a cut-short object, "3" as 3 and [] as
        # an empty error. The engine never sends any of them, and an event read wrong is worse
        # than one reported lost.
        foreach ($bad in @{ Json = '{"kind":"summary","stalls":[{"files":null}]}'; Says = 'a number that is not an integer at byte' },
            @{ Json = ''; Says = 'an empty buffer' },
            @{ Json = '{"kind":"x"'; Says = "',' expected at byte 11" },
            @{ Json = '{"kind":"x"} {'; Says = 'text after the JSON value at byte' },
            @{ Json = '{"kind":"summary","delivered":"3"}'; Says = 'a number that is not an integer at byte' },
            @{ Json = '{"kind":"summary","error":[]}'; Says = "'\{' expected at byte" }) {
            $own, $null = Read-Both ([Text.Encoding]::UTF8.GetBytes($bad.Json)) 'XFlowDelivery.Native.EngineJson' 'ReadEvent' 'XFlowDelivery.Native.EngineEvent'
            $own.Error.ErrorId | Should -Be 'UnreadableEngineOutput' -Because $bad.Json
            $own.Error.Message | Should -Match $bad.Says
        }

    }
}

Describe 'the module''s time reader' {
    BeforeAll {
        $assembly = (Get-Command Get-XFlowDeliveryHistory).ImplementingType.Assembly
        $script:ParseTime = $assembly.GetType('XFlowDelivery.Model.Time', $true).GetMethod('Parse', [Reflection.BindingFlags]'Static, NonPublic')
        $script:Invariant = [Globalization.CultureInfo]::InvariantCulture
    }

    It 'reads 2,000 generated engine times (yyyy-MM-ddTHH:mm:ss.fffZ) as DateTimeOffset.TryParse does' {
        $random = [Random]::new(20261202)
        $start = [DateTimeOffset]::new(1999, 1, 1, 0, 0, 0, [TimeSpan]::Zero)
        $times = @(
            foreach ($i in 1..2000) { $start.AddMilliseconds($random.NextDouble() * 40 * 365.25 * 86400000) }
            [DateTimeOffset]::new(2028, 2, 29, 23, 59, 59, 999, [TimeSpan]::Zero)
            [DateTimeOffset]::new(2026, 12, 31, 0, 0, 0, 0, [TimeSpan]::Zero)
        )
        foreach ($t in $times) {
            $text = $t.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", $script:Invariant)
            $expected = [DateTimeOffset]::Parse($text, $script:Invariant, [Globalization.DateTimeStyles]::AssumeUniversal)
            $read = $script:ParseTime.Invoke($null, @($text))
            $read | Should -Be $expected -Because $text
            $read.Offset | Should -Be ([TimeSpan]::Zero) -Because $text
        }
    }

    It 'reads other forms through DateTimeOffset.TryParse, and refuses what is no time (<Text>)' -TestCases @(
        @{ Text = '2026-12-02T07:00:00+02:00'; Expected = '2026-12-02T05:00:00.000Z' }
        @{ Text = '2026-12-02T05:00:00Z'; Expected = '2026-12-02T05:00:00.000Z' }
        @{ Text = '2026-12-02T05:00:00.1234567Z'; Expected = '2026-12-02T05:00:00.123Z' }
        @{ Text = '2026-02-29T05:00:00.000Z'; Expected = $null }
        @{ Text = '2026-13-02T05:00:00.000Z'; Expected = $null }
        @{ Text = '2026-12-02T24:00:00.000Z'; Expected = $null }
        @{ Text = '2026-12-02T05:0x:00.000Z'; Expected = $null }
        @{ Text = 'not a time at all, 24 ch'; Expected = $null }
        @{ Text = ''; Expected = $null }
    ) {
        $read = $script:ParseTime.Invoke($null, @($Text))
        if ($null -eq $Expected) { $read | Should -BeNullOrEmpty }
        else { $read.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", $script:Invariant) | Should -Be $Expected }
    }
}
