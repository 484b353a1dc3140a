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
