#!/usr/bin/env python3
"""Fresh-process start costs, compared in pairs (docs/benchmarks.md, "Sixth round").

    python3 bench/compare_starts.py ROUNDS NAME=ARGS [NAME=ARGS ...]
    python3 bench/compare_starts.py 30 "bare=-c exit" \
        "script=-File out/XFlowDelivery/XFlowDelivery.Task.ps1 -ConfigPath /tmp/pf/task.json" \
        "task=@/tmp/pf/entry-command.txt"

Each NAME runs `pwsh -NoProfile -NonInteractive ARGS` (ARGS split at blanks; `@FILE` means
`-Command <the file's text>`, for the task's command line). One untimed round first, then ROUNDS
rounds, each running every variant once in a random order. Printed: for every variant after the
first, the median of its per-round difference to the first (wall and CPU time: user + system of
the process and its threads), which this shared machine's drift hits far less than separate
medians; then each variant's own medians and minima. pwsh is `$PWSH` if set, else `pwsh`.
"""
import os, random, shlex, statistics, subprocess, sys, time

pwsh = shlex.split(os.environ.get("PWSH", "pwsh")) + ["-NoProfile", "-NonInteractive"]
rounds = int(sys.argv[1])
variants = {}
for spec in sys.argv[2:]:
    name, _, args = spec.partition("=")
    variants[name] = ["-Command", open(args[1:]).read().strip()] if args.startswith("@") else args.split()
wall = {k: [] for k in variants}
cpu = {k: [] for k in variants}
for i in range(rounds + 1):
    order = list(variants.items())
    random.shuffle(order)
    for name, args in order:
        start = time.perf_counter()
        child = subprocess.Popen(pwsh + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        elapsed = (time.perf_counter() - start) * 1000
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"{name} exited with {code}: {child.stderr.read().decode(errors='replace')[-500:]}")
        if i:
            wall[name].append(elapsed)
            cpu[name].append((usage.ru_utime + usage.ru_stime) * 1000)
first = next(iter(variants))
for name in variants:
    if name != first:
        dw = statistics.median(a - b for a, b in zip(wall[name], wall[first]))
        dc = statistics.median(a - b for a, b in zip(cpu[name], cpu[first]))
        print(f"{name:12} minus {first}: wall {dw:+7.1f} ms  cpu {dc:+7.1f} ms")
for name in variants:
    print(f"{name:12} wall median {statistics.median(wall[name]):7.1f} min {min(wall[name]):7.1f} | "
          f"cpu median {statistics.median(cpu[name]):7.1f} min {min(cpu[name]):7.1f}  ({len(wall[name])} rounds)")
