#!/usr/bin/env python3
"""Where a drain's wall time goes, from an strace log (docs/benchmarks.md, "Drain").

    strace -f --seccomp-bpf -ttt -T -y -yy -o drain.strace \
        -e trace=openat,write,pwrite64,fsync,fdatasync,renameat2,rename,sendto,recvfrom,sendmsg,recvmsg,connect \
        target/release/xflow-bench drain < cfg.json
    python3 bench/drain_phases.py drain.strace

Each 0.1 ms of the run is given to the first kind of call active in it, in this order: staging
(temp files), renames, folder flushes, journal flushes, journal writes, network; a moment with
none of them is CPU or waiting for a core. strace slows the run down (about 2x), so read the
shares, not the seconds.
"""
import re,sys,collections
ev=[]
pending={}
def lines():
    for l in open(sys.argv[1]):
        m=re.match(r'(\d+)\s+([\d.]+)\s+(\w+)\((.*) <unfinished \.\.\.>$',l)
        if m:
            pending[m.group(1)]=(m.group(2),m.group(3),m.group(4)); continue
        m=re.match(r'(\d+)\s+([\d.]+)\s+<\.\.\. (\w+) resumed>(.*)$',l)
        if m and m.group(1) in pending:
            t,call,args=pending.pop(m.group(1))
            yield "%s %s %s(%s%s"%(m.group(1),t,call,args,m.group(4)); continue
        yield l
for l in lines():
    m=re.match(r'(\d+)\s+([\d.]+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)[^<]*<([\d.]+)>',l)
    if not m: continue
    pid,t,call,args,ret,dur=m.groups(); t=float(t); dur=float(dur)
    if call=='openat' and '.partial' in args: k='stage'
    elif call=='write' and '.partial' in args: k='stage'
    elif call in('fsync','fdatasync') and '.partial' in args: k='stage'
    elif call in('fsync','fdatasync') and 'sqlite3-wal' in args: k='journal-flush'
    elif call=='pwrite64' and 'sqlite3' in args: k='journal-write'
    elif call in('fsync','fdatasync'): k='folder-flush'
    elif call.startswith('rename'): k='rename'
    elif call in('sendto','recvfrom','sendmsg','recvmsg','connect','write') and 'TCP' in args: k='network'
    else: continue
    ev.append((t,t+dur,k))
ev.sort()
t0=ev[0][0]; tend=max(e[1] for e in ev)
# wall-clock attribution: walk time in 0.1 ms slots; a slot goes to the first category active in it (priority order)
prio=['stage','rename','folder-flush','journal-flush','journal-write','network']
slot=0.0001
n=int((tend-t0)/slot)+1
busy=[None]*n
for s,e,k in ev:
    a=int((s-t0)/slot); b=int((e-t0)/slot)
    for i in range(a,b+1):
        if busy[i] is None or prio.index(k)<prio.index(busy[i]): busy[i]=k
tot=collections.Counter(x or 'other (CPU, HTTP parsing, waiting)' for x in busy)
wall=n*slot
print("wall %.2f s"%wall)
for k,v in tot.most_common(): print("  %-40s %6.2f s  %4.1f%%"%(k,v*slot,100*v/n))
