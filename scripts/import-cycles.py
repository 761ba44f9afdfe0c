#!/usr/bin/env python3
"""Prints the import cycles among src's top-level modules (`cycles: none` when the layers hold);
with a folder such as src/manager, among the modules inside it. Reads `crate::` paths as text."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
def module_of(path):
    rel = os.path.relpath(path, root)[:-3].split('/')
    if rel[-1] == 'mod': rel = rel[:-1]
    if rel in (['lib'], ['main'], []): return None
    return rel[0]
edges = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(d, f); m = module_of(p)
        if not m: continue
        src = open(p).read()
        src = src.split('#[cfg(test)]')[0]
        pat = r'crate::(\w+)' if root == 'src' else r'crate::' + os.path.basename(root) + r'::(\w+)'
        for t in re.findall(pat, src) + (re.findall(r'super::(\w+)', src) if root != 'src' and os.path.dirname(p) == root else []):
            if t != m: edges.setdefault(m, set()).add(t)
        # `use super::x` in nested files stays inside the module
nodes = sorted(set(edges) | {t for v in edges.values() for t in v})
# Tarjan SCC
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index: strong(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(c)
sys.setrecursionlimit(10000)
for v in nodes:
    if v not in index: strong(v)
print("cycles:", sccs or "none")
