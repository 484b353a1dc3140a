# End to end against the XFlow simulator (target/release/xflow-sim): files land byte-identical in
# folders with "Løn" and spaces in their names, are acknowledged, leave no temp files; a delivery
# whose content does not match its sha256 is neither written nor acknowledged; the token never
# shows up anywhere.
BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Work = New-XFlowTestDirectory -Name 'xflow-delivery'
    Push-Location $script:Work
    Import-Module (Get-XFlowModuleManifest) -Force
    $script:Sim = Start-XFlowSim
    $script:Token = ConvertTo-SecureString $script:Sim.Token -AsPlainText -Force

    function script:Invoke-Delivery {
        param($Folders, [hashtable]$Extra = @{})
        $params = Get-XFlowDeliveryParameters -Sim $script:Sim -Folders $Folders -Extra $Extra
        # The delivered files only; the run summary that follows them is tested in Task.Tests.ps1.
        Invoke-XFlowDelivery @params | Where-Object { $_ -isnot [XFlowDelivery.Model.XFlowRunSummary] }
    }
}

AfterAll {
    Stop-XFlowSim -Sim $script:Sim
    Pop-Location
    Remove-Item -LiteralPath $script:Work -Recurse -Force -ErrorAction SilentlyContinue
}

Describe 'Invoke-XFlowDelivery against the simulator' {
    BeforeEach {
        Reset-XFlowSim -Sim $script:Sim
    }

    It 'writes SD Løn and Prisme deliveries byte-identical into folders with Løn and spaces, acknowledged, with no temp files left' {
        $folders = New-XFlowRunFolders -Parent $script:Work
        $utf8 = [Text.UTF8Encoding]::new($false)
        $loen = $utf8.GetBytes("CPR;Navn;Beløb`r`n0101011234;Søren Ærø;12345,67`r`n")
        $prisme = [byte[]](0..255) + $utf8.GetBytes('Prisme;bilag;æøå')
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(
            @{ System = 'SDLoen'; FileName = 'løn.csv'; Bytes = $loen }
            @{ System = 'Prisme'; FileName = 'posteringer 2024.txt'; Bytes = $prisme }
        ) | Out-Null

        $out = @(Invoke-Delivery -Folders $folders)

        $out.Count | Should -Be 2
        $out | ForEach-Object { $_ | Should -BeOfType ([XFlowDelivery.Model.XFlowDeliveredFile]) }
        $sd = $out | Where-Object System -EQ 'SDLoen'
        $pr = $out | Where-Object System -EQ 'Prisme'

        $sdFile = Join-Path $folders.SdLoen 'løn.csv'
        $prFile = Join-Path $folders.Prisme 'posteringer 2024.txt'
        Test-Path -LiteralPath $sdFile | Should -BeTrue
        Test-Path -LiteralPath $prFile | Should -BeTrue
        (Get-FileHash -LiteralPath $sdFile -Algorithm SHA256).Hash.ToLowerInvariant() | Should -Be (Get-XFlowSha256Hex $loen)
        (Get-FileHash -LiteralPath $prFile -Algorithm SHA256).Hash.ToLowerInvariant() | Should -Be (Get-XFlowSha256Hex $prisme)
        $sd.Path | Should -Be $sdFile
        $sd.Sha256 | Should -Be (Get-XFlowSha256Hex $loen)
        $sd.Size | Should -Be $loen.Length
        $pr.Path | Should -Be $prFile

        # Nothing else in the import folders: no .*.partial temp files (hidden ones included).
        @(Get-ChildItem -LiteralPath $folders.SdLoen -Force -Recurse).Name | Should -Be @('løn.csv')
        @(Get-ChildItem -LiteralPath $folders.Prisme -Force -Recurse).Name | Should -Be @('posteringer 2024.txt')
        @(Get-ChildItem -LiteralPath $folders.Root -Force -Recurse -Filter '*.partial').Count | Should -Be 0

        # The server saw both acknowledgements.
        $state = Get-XFlowSimDeliveries -Sim $script:Sim
        $state.Count | Should -Be 2
        foreach ($d in $state) {
            $d.state | Should -Be 'acked'
            $d.ackCount | Should -BeGreaterOrEqual 1
        }

        # A second run finds nothing new and writes nothing twice.
        @(Invoke-Delivery -Folders $folders).Count | Should -Be 0
        @(Get-ChildItem -LiteralPath $folders.SdLoen -Force).Count | Should -Be 1
    }

    It 'neither writes nor acknowledges a delivery whose content does not match its sha256' {
        $folders = New-XFlowRunFolders -Parent $script:Work
        $bytes = [Text.Encoding]::UTF8.GetBytes("forkert indhold`n")
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'løn-fejl.csv'; Bytes = $bytes }) | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'wrongSha256'; on = 'get'; nth = 1 } | Out-Null

        # The bad delivery is a non-terminating error (the run goes on with the others).
        $all = @(Invoke-Delivery -Folders $folders -Extra @{ ErrorAction = 'Continue' } 2>&1)
        $out = @($all | Where-Object { $_ -is [XFlowDelivery.Model.XFlowDeliveredFile] })
        $errors = @($all | Where-Object { $_ -is [Management.Automation.ErrorRecord] })

        $out.Count | Should -Be 0
        @($errors).Count | Should -BeGreaterOrEqual 1
        $hash = @($errors | Where-Object { $_.FullyQualifiedErrorId -eq 'HashMismatch,XFlowDelivery.Cmdlets.InvokeXFlowDeliveryCommand' })
        $hash.Count | Should -Be 1
        $hash[0].CategoryInfo.Category | Should -Be 'InvalidData'
        @(Get-ChildItem -LiteralPath $folders.SdLoen -Force).Count | Should -Be 0
        $state = Get-XFlowSimDeliveries -Sim $script:Sim
        $state.Count | Should -Be 1
        $state[0].state | Should -Not -Be 'acked'
        $state[0].ackCount | Should -Be 0
    }

    It 'resolves relative paths against the PowerShell location, not the process working directory' {
        $folders = New-XFlowRunFolders -Parent $script:Work
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'Prisme'; FileName = 'relativ.txt'; Bytes = [byte[]](1, 2, 3) }) | Out-Null
        $processCwd = [Environment]::CurrentDirectory
        $elsewhere = New-XFlowTestDirectory -Name 'process-cwd'
        Push-Location $folders.Root
        try {
            [Environment]::CurrentDirectory = $elsewhere
            $out = @(Invoke-XFlowDelivery -BaseUrl $script:Sim.BaseUrl -ApiToken $script:Token -CaCertificatePath $script:Sim.CaPath `
                    -SdLoenPath './SD Løn import' -PrismePath 'Prisme import' -StatePath 'XFlow state' |
                    Where-Object { $_ -isnot [XFlowDelivery.Model.XFlowRunSummary] })
        }
        finally {
            [Environment]::CurrentDirectory = $processCwd
            Pop-Location
        }
        $out.Count | Should -Be 1
        $expected = Join-Path $folders.Prisme 'relativ.txt'
        $out[0].Path | Should -Be $expected
        Test-Path -LiteralPath $expected | Should -BeTrue
        @(Get-ChildItem -LiteralPath $elsewhere -Force -Recurse).Count | Should -Be 0
    }

    It 'stops promptly when the pipeline is stopped (Ctrl+C), writing and acknowledging nothing' {
        $folders = New-XFlowRunFolders -Parent $script:Work
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'stop.csv'; Bytes = [byte[]](1, 2, 3) }) | Out-Null
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'delayMs'; on = 'get'; nth = 1; params = @{ ms = 30000 } } | Out-Null

        $pipeline = Start-XFlowPipeline -Command 'Invoke-XFlowDelivery' -Parameters @{
            BaseUrl = $script:Sim.BaseUrl; ApiToken = $script:Token; CaCertificatePath = $script:Sim.CaPath
            SdLoenPath = $folders.SdLoen; StatePath = $folders.State; TimeoutSec = 120
        }
        $ps = $pipeline.PowerShell
        try {
            Start-Sleep -Milliseconds 1500
            $pipeline.Async.IsCompleted | Should -BeFalse -Because 'the server delays its answer by 30 s'
            $watch = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $watch.Stop()
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 10
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
        }
        finally { $ps.Dispose() }

        @(Get-ChildItem -LiteralPath $folders.SdLoen -Force).Count | Should -Be 0
        (Get-XFlowSimDeliveries -Sim $script:Sim)[0].ackCount | Should -Be 0
    }

    It 'shows the engine''s verbose messages under -Verbose and under $VerbosePreference = Continue alike' {
        # Without either, the engine is asked for none (fewer events per file in a drain); the
        # preference must still be honoured when no -Verbose is given.
        foreach ($how in 'switch', 'preference') {
            Reset-XFlowSim -Sim $script:Sim
            $folders = New-XFlowRunFolders -Parent $script:Work
            Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = "v-$how.csv"; Bytes = [byte[]](65, 66) }) | Out-Null
            $records = if ($how -eq 'switch') {
                & { Invoke-Delivery -Folders $folders -Extra @{ Verbose = $true } } 4>&1
            }
            else {
                & { $VerbosePreference = 'Continue'; Invoke-Delivery -Folders $folders } 4>&1
            }
            $verbose = @($records | Where-Object { $_ -is [Management.Automation.VerboseRecord] } | ForEach-Object Message)
            $verbose | Where-Object { $_ -like 'published * as *' } | Should -Not -BeNullOrEmpty -Because "verbose by $how"
            $verbose[-1] | Should -Match '^Run [0-9a-f-]{36}: Succeeded; 1 delivered, 0 failed, 0 skipped, 0 acknowledged again in \d+\.\d s\.$' -Because "the run's line last, verbose by $how"
        }
        $quiet = & { Invoke-Delivery -Folders (New-XFlowRunFolders -Parent $script:Work) } 4>&1
        @($quiet | Where-Object { $_ -is [Management.Automation.VerboseRecord] }) | Should -BeNullOrEmpty
    }

    It 'never shows the API token in any output stream, error or state file' {
        $folders = New-XFlowRunFolders -Parent $script:Work
        Add-XFlowSimDelivery -Sim $script:Sim -Delivery @(@{ System = 'SDLoen'; FileName = 'a.csv'; Bytes = [byte[]](65, 66) }) | Out-Null
        $plain = $script:Sim.Token

        # A successful run with every stream captured.
        $all = & { Invoke-Delivery -Folders $folders -Extra @{ Verbose = $true; Debug = $false } } *>&1
        # A failing run (wrong token), and one against a closed port, with the errors captured.
        $captured = [Collections.Generic.List[object]]::new()
        $badToken = ConvertTo-SecureString ($plain + '-wrong') -AsPlainText -Force
        foreach ($case in @(
                @{ BaseUrl = $script:Sim.BaseUrl; ApiToken = $badToken },
                @{ BaseUrl = "https://127.0.0.1:$(Get-XFlowFreeTcpPort)/"; ApiToken = $script:Token })) {
            try {
                $r = & { Invoke-XFlowDelivery @case -SdLoenPath $folders.SdLoen -StatePath $folders.State -CaCertificatePath $script:Sim.CaPath -TimeoutSec 5 -Verbose } *>&1
                $captured.AddRange(@($r))
            }
            catch { $captured.Add($_) }
        }

        $text = (@($all) + @($captured) | ForEach-Object {
                $_ | Out-String -Width 4096
                if ($_ -is [Management.Automation.ErrorRecord]) {
                    $_.Exception.ToString()
                    $_.FullyQualifiedErrorId
                    "$($_.TargetObject)"
                    $_ | Format-List * -Force | Out-String -Width 4096
                }
            }) -join "`n"
        $text | Should -Not -BeNullOrEmpty
        $text.Contains($plain) | Should -BeFalse
        @($all | Where-Object { $_ -is [XFlowDelivery.Model.XFlowDeliveredFile] }).Count | Should -Be 1
        @($captured | Where-Object { $_ -is [Management.Automation.ErrorRecord] }).Count | Should -BeGreaterOrEqual 2

        foreach ($file in Get-ChildItem -LiteralPath $folders.State -Recurse -File -Force) {
            [IO.File]::ReadAllText($file.FullName).Contains($plain) | Should -BeFalse -Because $file.FullName
        }
    }
}
