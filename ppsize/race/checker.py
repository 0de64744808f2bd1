"""A small explicit-state model checker for systems of concurrent actors.

A *system* is any object with:

- ``actor_names``: a sequence of names, one per actor;
- ``initial()``: the initial state (hashable, immutable);
- ``step(state, i)``: ``None`` when actor *i* is blocked or finished in *state*, else
  ``(next_state, function, saw, violations)``: one atomic step of actor *i*, the kernel
  function it mirrors, what the actor observed, and a list of invariant violations
  (strings) that the step itself commits;
- ``done(state, i)``: whether actor *i* has finished;
- ``check(state)``: a list of state invariant violations (strings);
- ``describe(state)``: a one-line rendering of the state for traces;
- optionally ``describe_cycle(steps)``: what a livelock's cycle (its :class:`Step` list) is.

``explore`` enumerates every interleaving breadth first with visited-state hashing, so the
trace it reports for a finding is a shortest one. It then looks for:

- deadlock: a state where no actor can step but some actor has not finished;
- livelock: a cycle of states that a weakly fair scheduler can follow forever without any
  actor finishing (a non-trivial strongly connected component in which every unfinished
  actor either steps or is blocked somewhere in the component);
- violation: an invariant broken by a step or by a state.

The verdict is the most severe finding (deadlock, then livelock, then violation); every finding
is reported with its own shortest trace. Bounds (states, BFS depth) make the result "bounded".
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

SEVERITY = ("deadlock", "livelock", "violation")


@dataclass
class Step:
    """One numbered step of a trace."""
    n: int
    actor: str
    function: str
    saw: str
    state: str
    cycle: bool = False          # part of the repeating part of a livelock lasso

    def as_dict(self):
        return {"n": self.n, "actor": self.actor, "function": self.function,
                "saw": self.saw, "cache": self.state, "cycle": self.cycle}


@dataclass
class Finding:
    kind: str                    # deadlock | livelock | violation
    message: str
    trace: list = field(default_factory=list)

    def as_dict(self):
        return {"kind": self.kind, "message": self.message,
                "trace": [s.as_dict() for s in self.trace]}


@dataclass
class Result:
    verdict: str                 # ok | deadlock | livelock | violation
    states: int
    transitions: int
    seconds: float
    bounded: bool                # a bound stopped the search before it was exhaustive
    bound_hit: str               # "", "max-states", "max-steps"
    findings: list
    initial: str = ""
    depth: int = 0
    por: bool = False            # explored with partial-order reduction
    trace_states: int = 0        # states of the unreduced search that found the traces
    trace_seconds: float = 0.0   # its time (included in seconds)

    @property
    def ok(self):
        return self.verdict == "ok"

    @property
    def trace(self):
        return self.findings[0].trace if self.findings else []

    @property
    def states_per_second(self):
        """Every state explored (the reduced and the trace search) per second."""
        n = self.states + self.trace_states
        return n / self.seconds if self.seconds > 0 else float(n)

    def as_dict(self):
        return {"verdict": self.verdict, "bounded": self.bounded, "bound_hit": self.bound_hit,
                "states": self.states, "transitions": self.transitions,
                "seconds": round(self.seconds, 4),
                "states_per_second": round(self.states_per_second, 1),
                "max_depth": self.depth, "initial": self.initial,
                "por": self.por, "trace_states": self.trace_states,
                "trace_seconds": round(self.trace_seconds, 4),
                "message": self.findings[0].message if self.findings else "",
                "trace": [s.as_dict() for s in self.trace],
                "findings": [f.as_dict() for f in self.findings]}


def explore(system, max_states=None, max_steps=None, por=True):
    """Explore every interleaving of ``system``; return a :class:`Result`.

    With ``por`` (and a system that has ``ample(state)``), the search is partial-order
    reduced: from a state where ``ample`` names a step that is invisible and independent of
    everything the other actors can still do, only that step is explored, unless its successor
    was already visited (the cycle proviso: every cycle of the reduced graph then has a fully
    expanded state, so no actor's steps are postponed forever). Deadlocks, violations and
    weakly fair non-progress cycles are preserved (see ARCHITECTURE.md, race/), so the
    reduced search decides the verdict and the set of findings. Its traces may be longer than
    the shortest (a postponed local step can be forced in early), so when it finds something
    the findings are taken from an unreduced search: bounded to the longest reduced trace's
    depth (every reduced trace is a real path) for deadlocks and violations, a complete one
    for a livelock (whose lasso needs the whole graph). ``Result.states`` is the reduced
    search's count, ``Result.trace_states`` the unreduced one's. A reduced search stopped by
    ``max_states``/``max_steps`` (bounded) keeps its own traces, which may not be shortest."""
    if por and hasattr(system, "ample"):
        return _explore_por(system, max_states, max_steps)
    return _explore(system, max_states, max_steps, False)


def _explore_por(system, max_states, max_steps):
    t0 = time.perf_counter()
    red = _explore(system, max_states, max_steps, True)
    red.por = True
    if not red.findings or red.bounded:
        red.seconds = time.perf_counter() - t0
        return red
    if any(f.kind == "livelock" for f in red.findings):
        full = _explore(system, max_states, max_steps, False)
    else:
        # BFS finds each finding first at its shortest depth: stop once all are found
        depth = max(len(f.trace) for f in red.findings) + 1
        until = ({f.message for f in red.findings if f.kind == "violation"},
                 any(f.kind == "deadlock" for f in red.findings))
        full = _explore(system, max_states, min(depth, max_steps or depth), False, until)
        full.bounded = bool(max_steps and max_steps <= depth and full.bounded)
        if not full.bounded:
            full.bound_hit = ""

    def key(res):
        return sorted((f.kind, f.message if f.kind == "violation" else "") for f in res.findings)
    if key(full) != key(red) and not full.bounded:
        raise AssertionError(f"partial-order reduction changed the findings: {key(red)} "
                             f"reduced, {key(full)} unreduced")
    return Result(full.verdict, red.states, red.transitions, time.perf_counter() - t0,
                  red.bounded, red.bound_hit, full.findings, red.initial, red.depth, True,
                  full.states, full.seconds)


def _explore(system, max_states, max_steps, reduce, until=None):
    if max_states is not None and max_states < 1:
        raise ValueError(f"max_states must be >= 1, got {max_states}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    t0 = time.perf_counter()
    nact = len(system.actor_names)
    init = system.initial()
    ids = {init: 0}
    states = [init]
    parent = [(-1, -1)]                  # (parent id, actor); labels are recomputed for traces
    depth = [0]
    edges = [None]                       # per expanded state: list of (actor, child)
    enabled = [0]                        # bitmask of actors able to step (expanded states)
    # first (hence shortest) occurrence of each problem
    violations = {}                      # message -> (state id, via-step-to-it?)
    deadlocks = []
    bound_hit = ""
    ntrans = 0

    for msg in system.check(init):
        violations.setdefault(msg, 0)

    queue = deque([0])

    def add_state(nxt, sid, i):
        cid = len(states)
        ids[nxt] = cid
        states.append(nxt)
        parent.append((sid, i))
        depth.append(depth[sid] + 1)
        edges.append(None)
        enabled.append(0)
        queue.append(cid)
        for msg in system.check(nxt):
            violations.setdefault(msg, cid)
        return cid

    while queue:
        sid = queue.popleft()
        st = states[sid]
        if max_steps is not None and depth[sid] >= max_steps:
            if any(system.step(st, i) is not None for i in range(nact)):
                bound_hit = bound_hit or "max-steps"
            continue
        pre = None
        if reduce:
            amp = system.ample(st)
            if isinstance(amp, dict):
                pre, amp = amp, None
            if amp is not None and amp[1][0] in ids:
                pre, amp = {amp[0]: amp[1]}, None          # the cycle proviso: expand fully
            if amp is not None:
                if max_states is not None and len(states) >= max_states:
                    bound_hit = "max-states"
                    enabled[sid] = None
                    edges[sid] = []
                    continue
                i, (nxt, func, saw, viol) = amp
                ntrans += 1
                edges[sid] = [(i, add_state(nxt, sid, i))]
                enabled[sid] = None          # computed if a livelock check needs it
                continue
        out = []
        mask = 0
        for i in range(nact):
            r = pre[i] if pre is not None and i in pre else system.step(st, i)
            if r is None:
                continue
            mask |= 1 << i
            nxt, func, saw, viol = r
            ntrans += 1
            cid = ids.get(nxt)
            if cid is None:
                if max_states is not None and len(states) >= max_states:
                    bound_hit = "max-states"
                    continue
                cid = add_state(nxt, sid, i)
            for msg in viol:
                # a violation committed by this very step: report the path through it
                if msg not in violations:
                    violations[msg] = ("edge", sid, i, func, saw, cid)
            out.append((i, cid))
        edges[sid] = out
        enabled[sid] = mask
        if not out and not all(system.done(st, i) for i in range(nact)):
            if not (bound_hit == "max-states" and mask):
                deadlocks.append(sid)
        if until is not None and (deadlocks or not until[1]) and until[0] <= violations.keys():
            break                            # every finding wanted is found, at its depth

    findings = []

    def path_to(sid):
        rev = []
        while sid > 0:
            p, a = parent[sid]
            r = system.step(states[p], a)
            rev.append((a, r[1], r[2], sid))
            sid = p
        rev.reverse()
        return rev

    def render(steps, start=1, cycle=False):
        return [Step(n, system.actor_names[a], f, s, system.describe(states[c]), cycle)
                for n, (a, f, s, c) in enumerate(steps, start)]

    for sid in deadlocks[:1]:
        st = states[sid]
        waiting = [system.actor_names[i] for i in range(nact) if not system.done(st, i)]
        findings.append(Finding("deadlock", "no actor can step; blocked: " + ", ".join(waiting),
                                render(path_to(sid))))

    live = _livelocks(system, states, edges, enabled, nact)
    if live:
        entry, cyc, actors = live
        steps = render(path_to(entry))
        cyc_steps = render(cyc, len(steps) + 1, cycle=True)
        steps += cyc_steps
        how = getattr(system, "describe_cycle", None)
        findings.append(Finding(
            "livelock", "cycle without progress: " + ", ".join(system.actor_names[a] for a in actors)
            + " retry forever" + (f": {how(cyc_steps)}" if how else ""), steps))

    for msg, where in violations.items():
        if isinstance(where, tuple):
            _, psid, a, f, s, cid = where
            steps = path_to(psid) + [(a, f, s, cid)]
        else:
            steps = path_to(where)
        findings.append(Finding("violation", msg, render(steps)))
    # shortest first within a kind, kinds by severity
    findings.sort(key=lambda f: (SEVERITY.index(f.kind), len(f.trace)))
    verdict = findings[0].kind if findings else "ok"
    return Result(verdict, len(states), ntrans, time.perf_counter() - t0, bool(bound_hit),
                  bound_hit, findings, system.describe(init), max(depth))


def _livelocks(system, states, edges, enabled, nact):
    """Find a weakly fair cycle: returns (entry state, cycle steps, retrying actors) or None."""
    n = len(states)
    sccs = _tarjan(n, edges)
    best = None
    for comp in sccs:
        members = set(comp)
        inner = []                       # (src, actor, dst) edges inside the component
        for s in comp:
            for a, c in edges[s] or ():
                if c in members:
                    inner.append((s, a, c))
        if not inner:
            continue
        stepping = {a for _, a, _ in inner}
        st0 = states[comp[0]]
        fair = True
        for a in range(nact):
            if system.done(st0, a) or a in stepping:
                continue
            # weak fairness: a must be blocked somewhere in the component
            if all(_enabled(system, states, enabled, s, nact) >> a & 1 for s in comp):
                fair = False
                break
        if not fair:
            continue
        entry = min(comp)                # BFS ids: the smallest is the one reached first
        cyc = _cycle_through(entry, members, edges, system, states)
        if best is None or entry < best[0]:
            best = (entry, cyc, sorted(stepping))
    return best


def _enabled(system, states, enabled, s, nact):
    """The mask of actors able to step in state s (computed late for a reduced state)."""
    if enabled[s] is None:
        enabled[s] = sum(1 << a for a in range(nact) if system.step(states[s], a) is not None)
    return enabled[s]


def _cycle_through(entry, members, edges, system, states):
    """Shortest cycle from ``entry`` back to itself inside the component, as trace steps."""
    prev = {entry: None}
    q = deque([entry])
    found = None
    while q and found is None:
        s = q.popleft()
        for a, c in edges[s] or ():
            if c not in members:
                continue
            if c == entry:
                found = (s, a)
                break
            if c not in prev:
                prev[c] = (s, a)
                q.append(c)
    steps = []
    s, a = found
    tail = entry
    while True:
        r = system.step(states[s], a)
        steps.append((a, r[1], r[2], tail))
        tail = s
        if s == entry:
            break
        s, a = prev[s]
    steps.reverse()
    return steps


def _tarjan(n, edges):
    """Iterative Tarjan SCC over expanded states (unexpanded ones have no edges)."""
    index = [-1] * n
    low = [0] * n
    onstack = [False] * n
    stack = []
    out = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack[root] = True
        while work:
            v, pos = work[-1]
            succ = edges[v] or ()
            if pos < len(succ):
                work[-1] = (v, pos + 1)
                w = succ[pos][1]
                if index[w] == -1:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    onstack[w] = True
                    work.append((w, 0))
                elif onstack[w]:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        onstack[w] = False
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or any(c == v for _, c in edges[v] or ()):
                        out.append(comp)
    return out
