"""The online checkpointing schedule of diffrax's RecursiveCheckpointAdjoint (equinox's checkpointed while loop):
where the forward pass stores its checkpoints without knowing the number of steps, and how the backward pass
reverses the steps from them. The reversible-solvers paper (v2) compares against exactly this schedule.

Forward (which state to store, and in which of the `c` slots; the initial state takes the first slot):
- up to step u2 - 2, u2 = (c + 1)(c + 2) / 2, Stumm & Walther's online Algorithm I (SIAM J. Sci. Comput. 32(2),
  2010; eq. 2.2 gives u2): it stores the state before step k when told to, counting slots and placement period with
  four integers (i, o, p, s), so the stored states are those an optimal offline schedule with repetition number 2
  would hold;
- from step u2 - 1 on, Wang, Moin & Iaccarino's dynamic checkpointing (SIAM J. Sci. Comput. 31(4), 2009): every
  state is stored, each checkpoint has a level, and the new one replaces a "dispensable" checkpoint (the latest one,
  at level 0) or, when none is, the latest checkpoint, one level up, making every lower-level checkpoint dispensable.
  The initial state's slot has the highest level and is never replaced.
Backward (as equinox's `_checkpointed_while_loop_bwd`): the stored states, ordered by step, form a stack. From the
top one, advance towards the current adjoint position g; on the way store a new checkpoint (while slots are free)
at step + 1 when the remaining distance fits the free slots ("linear"), else half-way ("bisection"), never within
two steps of g; when the state is one step before g, take that step with its VJP (a "U-turn"), g -= 1, and reload
the top checkpoint, freeing it when it sits just before the new g.

Equinox's loop evaluates the body once per iteration of its backward loop (a U-turn or one advanced step), so its
recomputations are the iterations less the n U-turns. These rules are written from equinox's code
(equinox/internal/_loop/checkpointed.py) and the two papers; tests/test_checkpoint.py holds the recomputation counts
equinox itself produced, and the full backward trace for short solves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

UNREACHED = 2**62  # a step no checkpoint reaches (equinox uses the int dtype's maximum)


@dataclass
class OnlinePlacement:
    """The forward pass's decisions: `decide(k)` before step k (from the state at grid index k) says whether to
    store that state, and in which slot. Steps must be offered in order 0, 1, 2, ...; the final state is never
    offered (no step is taken from it)."""

    checkpoints: int
    i: int = 0
    o: int = 0
    p: int = 0
    s: bool = True
    levels: list[int] = field(default_factory=list)
    dispensable: list[bool] = field(default_factory=list)
    slot_steps: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        c = self.checkpoints
        if c < 1:
            raise ValueError("the online schedule needs at least one checkpoint")
        self.o = self.p = c
        self.levels = [UNREACHED] + [0] * (c - 1)
        self.dispensable = [False] * c
        self.slot_steps = [UNREACHED] * c
        self.u2_minus_1 = (c + 1) * (c + 2) // 2 - 1

    def decide(self, k: int) -> int | None:
        """The slot the state before step k goes into (None: not stored)."""
        slot = self._stumm_walther(k) if k < self.u2_minus_1 else self._wang_moin()
        if slot is not None:
            self.slot_steps[slot] = k
        return slot

    def _stumm_walther(self, k: int) -> int | None:
        slot, save = self.i, self.s
        if self.s:
            self.i += 1
            if self.i > self.o:
                self.i = 1
        if k + 1 == self.p:
            self.s = False
        if k == self.p:
            self.p += self.o
            self.o -= 1
            self.i = self.o
            self.s = self.o > 0
        return slot if save else None

    def _wang_moin(self) -> int | None:
        if self.checkpoints == 1:  # the one slot holds the initial state
            return None
        if any(self.dispensable):
            candidates = [(step, -j) for j, (step, d) in enumerate(zip(self.slot_steps, self.dispensable)) if d]
            slot = -max(candidates)[1]
            level = 0
            self.dispensable[slot] = False
        else:
            slot = max(range(self.checkpoints), key=lambda j: (self.slot_steps[j], -j))
            level = self.levels[slot] + 1
            self.dispensable = [d or lv < self.levels[slot] for d, lv in zip(self.dispensable, self.levels)]
        self.levels[slot] = level
        return slot


def next_checkpoint(step: int, grad_step: int, filled: int, checkpoints: int) -> int:
    """Where the backward pass stores its next checkpoint on the way from `step` to the adjoint at `grad_step`, with
    `filled` slots in use (UNREACHED: nowhere)."""
    if filled == checkpoints or grad_step - step <= 2:
        return UNREACHED
    if grad_step - step - 2 <= checkpoints - filled:
        return step + 1
    return step + (grad_step - step) // 2


Action = tuple[str, int, int]


def backward_actions(n: int, stored: list[int], checkpoints: int) -> Iterator[Action]:
    """The backward pass over n steps from the checkpoints the forward pass left (their steps, in any order; at
    most `checkpoints`), as a sequence of actions on a stack of states:
    ("load", k, 0): the top checkpoint (step k) becomes the current state, left on the stack;
    ("pop", k, 0): the same, and its slot freed;
    ("advance", a, b): step the current state from grid index a to b without a graph;
    ("push", k, 0): store the current state (step k);
    ("uturn", k, 0): take step k -> k + 1 from the current state with its VJP (the adjoint moves to k)."""
    stack = sorted(stored)[:checkpoints]

    def load(g: int) -> int:
        k = stack[-1]
        if k + 1 == g:
            stack.pop()
            return k, "pop"
        return k, "load"

    g = n
    step, kind = load(g)
    yield (kind, step, 0)
    target = next_checkpoint(step, g, len(stack), checkpoints)
    while g > 0:
        if step + 1 < g:
            stop = min(target, g - 1)
            yield ("advance", step, stop)
            step = stop
            if step == target:
                stack.append(step)
                yield ("push", step, 0)
                target = next_checkpoint(step, g, len(stack), checkpoints)
            continue
        yield ("uturn", step, 0)
        g -= 1
        if g == 0:
            break
        step, kind = load(g)
        yield (kind, step, 0)
        target = next_checkpoint(step, g, len(stack), checkpoints)


def forward_stored(n: int, checkpoints: int) -> list[int]:
    """The steps whose states the forward pass over n steps leaves stored."""
    placement = OnlinePlacement(checkpoints)
    for k in range(n):
        placement.decide(k)
    return [k for k in placement.slot_steps if k != UNREACHED]


def recomputations(n: int, checkpoints: int) -> int:
    """Steps the backward pass advances without a graph, beyond the n U-turns (fixed or adaptive steps alike)."""
    if n == 0:
        return 0
    return sum(b - a for kind, a, b in backward_actions(n, forward_stored(n, checkpoints), checkpoints)
               if kind == "advance")
