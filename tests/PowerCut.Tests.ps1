# Power cuts under the real module (LazyFS: writes not fsynced are dropped on a cut, as on a power
# loss). One trial per ack mode of build/Stress.ps1's power-cut harness; each trial cuts
# the power once after a run killed with SIGKILL at a random moment and once after a clean run,
# then checks the disk (the backing folder) and the journal, and exactly-once after recovery.
# build.ps1 -Stress runs many (30 cuts per ack mode by default). Needs root, /dev/fuse and
# ../shared/tools/lazyfs; the first use builds LazyFS (about 1.5 minutes, once per machine).
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestHelpers.psm1') -Force
    $script:Problem = Get-XFlowPowerCutProblem
}

Describe 'Power cuts (LazyFS) under the real module' {
    It 'build/Stress.ps1 -PowerCuts 2: no torn, lost, duplicated or unsafely acknowledged file in either ack mode<Reason>' -ForEach @(
        @{ Problem = $script:Problem; Reason = $(if ($script:Problem) { " (SKIPPED: $script:Problem)" } else { '' }) }
    ) {
        if ($Problem) { Set-ItResult -Skipped -Because $Problem; return }
        $run = Invoke-XFlowStress -Arguments @('-Trials', '0', '-PowerCuts', '2')
        $run.ExitCode | Should -Be 0 -Because $run.Output
        $run.Output | Should -Match '(?m)^violations: 0'
        $run.Output | Should -Not -Match 'power cuts: SKIPPED'
        foreach ($mode in 'Ack', 'None') {
            $row = @($run.Rows | Where-Object { $_.Harness -eq 'power cut' -and $_.Mode -eq $mode })
            $row.Count | Should -Be 1 -Because "the summary has a power-cut row for mode $mode"
            $row[0].Cuts | Should -Be 2 -Because 'one trial: a cut after a kill (or a finished run), one after a clean run'
            $row[0].Delivered | Should -BeGreaterThan 0
            $row[0].Partials | Should -Be 0
            $row[0].Duplicates | Should -Be 0
            $row[0].AckedBeforeDurable | Should -Be 0
            $row[0].Violations | Should -Be 0
        }
        @($run.Rows | Where-Object Mode -EQ 'Ack')[0].Lost | Should -Be 0
        $run.Output | Should -Not -Match 'xft-secret-' -Because 'the harness never prints the token'
    }
}

# The journal flushes a page's `published` and `acknowledged` marks (and a run's start) only with
# its next durable commit (journal.rs, `Durability::Later`). This cuts the power exactly in that
# window: page 1 is published and acknowledged, the run waits for page 2 (the simulator delays
# that answer), then the run is killed and the power cut. The marks are lost; the files and the
# `publishing` rows are not, and the next run must finish the page from them.
Describe 'A power cut before the journal flushes a page''s deferred marks' {
    BeforeAll {
        if ($script:Problem) { return }
        Import-Module (Get-XFlowModuleManifest) -Force
        $script:Sim = Start-XFlowSim
    }
    AfterAll {
        Stop-XFlowSim $script:Sim
    }

    It 'mode <AckMode>: the next run finishes the page from the journal''s publishing rows, each file once<Reason>' -ForEach @(
        foreach ($mode in 'Ack', 'None') {
            @{ AckMode = $mode; Problem = $script:Problem; Reason = $(if ($script:Problem) { " (SKIPPED: $script:Problem)" } else { '' }) }
        }
    ) {
        if ($Problem) { Set-ItResult -Skipped -Because $Problem; return }
        $expected = New-XFlowSimBacklog -Sim $script:Sim -AckMode $AckMode -PageSize 5 -Count 10 -Size 3000 -Seed 4242
        Invoke-XFlowSimControl -Sim $script:Sim -Method POST -Path 'faults' -Body @{ kind = 'delayMs'; on = 'get'; nth = 2; params = @{ ms = 60000 } } | Out-Null

        $dir = New-XFlowTestDirectory -Name 'xflow-deferred-cut'
        $mount = Join-Path $dir 'disk'
        $folders = @{ SdLoenPath = Join-Path $mount 'SD Løn'; PrismePath = Join-Path $mount 'Prisme'; StatePath = Join-Path $mount 'state' }
        $runArgs = @{ Sim = $script:Sim; AckMode = $AckMode } + $folders
        try {
            $fifo = Mount-XFlowLazyFs -Path $mount
            New-Item -ItemType Directory -Path $folders.SdLoenPath, $folders.PrismePath -Force | Out-Null
            $run = Start-XFlowRunOnce @runArgs
            Wait-XFlowRunOnceStart -Run $run | Should -BeTrue
            # The delay fires when the second GET arrives: page 1 is then published, acknowledged
            # (mode Ack) and journaled, the marks not yet flushed.
            $watch = [Diagnostics.Stopwatch]::StartNew()
            while (@((Invoke-XFlowSimControl -Sim $script:Sim -Path 'state?summary=true').faults).Count -gt 0) {
                if ($watch.Elapsed.TotalSeconds -gt 60 -or $run.Process.HasExited) { throw "the run never asked for page 2:`n$((Wait-XFlowRunOnce -Run $run).Output)" }
                Start-Sleep -Milliseconds 50
            }
            $run.Process.Kill()
            (Wait-XFlowRunOnce -Run $run).Result | Should -BeNullOrEmpty -Because 'the run was killed while it waited for page 2'
            Invoke-XFlowPowerCut -Fifo $fifo

            $history = @(Get-XFlowDeliveryHistory -StatePath $folders.StatePath -First 100)
            $history.Count | Should -Be 5 -Because 'page 1 was journaled as publishing with a durable commit'
            @($history | Where-Object State -NE 'publishing').Count | Should -Be 0 -Because 'the cut lost the deferred marks: the state this test is about'
            $onDisk = @(Get-XFlowFolderFiles -Path $folders.SdLoenPath, $folders.PrismePath)
            @($onDisk | Where-Object { -not $_.Hidden -and $expected.ContainsKey($_.Sha256) }).Count | Should -Be 5 -Because 'the files were renamed and their folders flushed before the marks'
            $simBefore = @(Get-XFlowSimDeliveries -Sim $script:Sim)
            $acked = if ($AckMode -eq 'Ack') { 5 } else { 0 }
            @($simBefore | Where-Object ackCount -GT 0).Count | Should -Be $acked

            $final = Wait-XFlowRunOnce -Run (Start-XFlowRunOnce @runArgs)
            $final.ExitCode | Should -Be 0 -Because $final.Output
            @($final.Result.errors).Count | Should -Be 0 -Because $final.Output
            $files = @(Get-XFlowFolderFiles -Path $folders.SdLoenPath, $folders.PrismePath)
            @($files | Where-Object Temp).Count | Should -Be 0
            @($files | Where-Object { -not $_.Hidden }).Count | Should -Be 10
            @($files | Where-Object { -not $_.Hidden } | ForEach-Object Sha256 | Sort-Object -Unique).Count | Should -Be 10 -Because 'no delivery is written twice'
            $files | Where-Object { -not $expected.ContainsKey($_.Sha256) } | Should -BeNullOrEmpty
            $history = @(Get-XFlowDeliveryHistory -StatePath $folders.StatePath -First 100)
            @($history | Where-Object State -EQ 'acknowledged').Count | Should -Be 10
            $simAfter = @(Get-XFlowSimDeliveries -Sim $script:Sim)
            if ($AckMode -eq 'Ack') {
                @($simAfter | Where-Object ackCount -EQ 0).Count | Should -Be 0
                # Recovery acknowledged page 1 again: the server treats that as harmless.
                @($simAfter | Where-Object ackCount -EQ 2).Count | Should -Be 5
            }
            else {
                @($simAfter | Where-Object ackCount -GT 0).Count | Should -Be 0
                @(Get-ChildItem -LiteralPath (Join-Path $folders.StatePath 'spool') -File -ErrorAction SilentlyContinue).Count | Should -Be 0
            }
        }
        finally {
            Dismount-XFlowLazyFs -Path $mount
            Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
        }
    }
}
