#!/usr/bin/env python3
"""The runner benchmark's peer workflows (bench/runner-peers.ts): peer_workflows.py {chain|fanin} N DIR -> DIR/Snakefile and
DIR/Makefile, the same graphs the benchmark writes as runner YAML."""
import sys, os
kind, n, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(d, exist_ok=True)
sm, mk = [], []
if kind == "chain":
    final = f"out/{n-1}"
    sm.append(f'rule all:\n    input: "{final}"\n')
    mk.append(f'all: {final}\n')
    for i in range(n):
        inp = f'\n    input: "out/{i-1}"' if i else ""
        sm.append(f'rule r{i}:{inp}\n    output: "out/{i}"\n    shell: "touch {{output}}"\n')
        mk.append(f'out/{i}:{" out/%d" % (i-1) if i else ""}\n\tmkdir -p out && touch $@\n')
else:  # fanin: N independent rules -> one merge rule
    sm.append('rule all:\n    input: "out/merged"\n')
    mk.append('all: out/merged\n')
    ins = ", ".join(f'"out/{i}"' for i in range(n))
    sm.append(f'rule merge:\n    input: {ins}\n    output: "out/merged"\n    shell: "touch {{output}}"\n')
    mk.append('out/merged: ' + " ".join(f"out/{i}" for i in range(n)) + '\n\ttouch $@\n')
    for i in range(n):
        sm.append(f'rule r{i}:\n    output: "out/{i}"\n    shell: "touch {{output}}"\n')
        mk.append(f'out/{i}:\n\tmkdir -p out && touch $@\n')
open(os.path.join(d, "Snakefile"), "w").write("\n".join(sm))
open(os.path.join(d, "Makefile"), "w").write("\n".join(mk))
