"""Explicit Runge–Kutta methods as data: one table of Butcher tableaus, shared by every method that steps itself.

The harness's stepping core (`solvers.core`), the reversible method (McCallum & Foster), recursive checkpointing
and `direct_rk` all read their schemes from `TABLEAUS`; `solver=<name>` selects one. A tableau is the triple
(c, A, b) of the method y_{n+1} = y_n + h * sum_i b_i k_i, k_i = f(t_n + c_i h, y_n + h * sum_{j<i} a_ij k_j),
plus, where the method has one, the embedded lower-order weights `b_embedded` whose difference from `b` estimates
the local error (adaptive steps).

Conventions worth knowing:
- `rk4` is the classic RK4 (weights 1/6, 1/3, 1/3, 1/6), as in the reversible-solvers authors' code; torchdiffeq's
  `rk4` is the 3/8 rule, a different scheme of the same order.
- `dopri5` and `tsit5` advance with their 5th-order weights (as diffrax does); the 4th-order ones only estimate the
  error. (The authors' v1 code, repo sammccallum/reversible, advanced Dopri5 with the 4th-order weights instead.)
- `bosh3` advances with Ralston's 3-stage 3rd-order weights (so a fixed step of `bosh3` equals one of `ralston3`);
  its 4th, first-same-as-last stage only feeds the 2nd-order error estimate.
- `heun` is Heun's 2nd-order (trapezoidal) method, embedded Euler; `heun2` and `adaptive_heun` (torchdiffeq's names
  for the same scheme, fixed and adaptive) are aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction as F
from functools import cached_property


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta method. `a[i]` holds the coefficients of stage i on stages 0..i-1."""

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_embedded: tuple[float, ...] | None = None
    embedded_order: int | None = None

    def __post_init__(self) -> None:
        stages = len(self.c)
        if len(self.a) != stages or len(self.b) != stages:
            raise ValueError(f"tableau {self.name}: c, a and b must have one entry per stage")
        if any(len(row) != i for i, row in enumerate(self.a)):
            raise ValueError(f"tableau {self.name}: a must be strictly lower triangular (row i has i entries)")
        if self.b_embedded is not None and len(self.b_embedded) != stages:
            raise ValueError(f"tableau {self.name}: b_embedded must have one entry per stage")

    @property
    def stages(self) -> int:
        return len(self.c)

    @property
    def embedded(self) -> bool:
        """True when the method carries an error estimate, so it can take adaptive steps."""
        return self.b_embedded is not None

    @property
    def advance_stages(self) -> int:
        """Stages one step needs when no error estimate is wanted (trailing stages with zero weight are skipped,
        e.g. the first-same-as-last stage of dopri5, tsit5 and bosh3)."""
        return max(i for i, w in enumerate(self.b) if w != 0) + 1

    @property
    def error_weights(self) -> tuple[float, ...]:
        """b - b_embedded: the local error estimate of one step is h * sum_i (b_i - b_embedded_i) k_i."""
        if self.b_embedded is None:
            raise ValueError(f"tableau {self.name} has no embedded weights, so no error estimate")
        return tuple(b - e for b, e in zip(self.b, self.b_embedded))

    @property
    def fsal(self) -> bool:
        """First same as last: the last stage is evaluated at y_{n+1} itself (c = 1, its row of A equal to b, weight 0),
        so an accepted step's last stage is the next step's first (dopri5, tsit5, bosh3), as torchdiffeq reuses it."""
        return self.c[-1] == 1 and self.b[-1] == 0 and self.a[-1] == self.b[:-1]

    @cached_property
    def nonzero(self) -> tuple[tuple[tuple[int, float], ...], ...]:
        """Row i: the (j, a_ij) with a_ij != 0, so a step's inner loop touches only the stages it combines (computed
        once per tableau; the stepping loop runs per step and per stage)."""
        return tuple(tuple((j, a) for j, a in enumerate(row) if a != 0) for row in self.a)

    @cached_property
    def nonzero_b(self) -> tuple[tuple[int, float], ...]:
        return tuple((j, b) for j, b in enumerate(self.b) if b != 0)

    @cached_property
    def nonzero_error(self) -> tuple[tuple[int, float], ...]:
        return tuple((j, e) for j, e in enumerate(self.error_weights) if e != 0)


def _f(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _tableau(name, order, c, a, b, b_embedded=None, embedded_order=None) -> Tableau:
    return Tableau(name, order, _f(c), tuple(_f(row) for row in a), _f(b),
                   None if b_embedded is None else _f(b_embedded), embedded_order)


_TSIT5_B = (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
            2.324710524099774, 0.0)
# b_embedded - b (Tsitouras 2011, as tabulated in OrdinaryDiffEq.jl / diffrax).
_TSIT5_BTILDE = (-0.00178001105222577714, -0.0008164344596567469, 0.007880878010261995, -0.1447110071732629,
                 0.5823571654525552, -0.45808210592918697, 1.0 / 66.0)

TABLEAUS: dict[str, Tableau] = {
    t.name: t
    for t in (
        _tableau("euler", 1, [0], [[]], [1]),
        _tableau("midpoint", 2, [0, F(1, 2)], [[], [F(1, 2)]], [0, 1]),
        _tableau("heun", 2, [0, 1], [[], [1]], [F(1, 2), F(1, 2)], b_embedded=[1, 0], embedded_order=1),
        _tableau("heun3", 3, [0, F(1, 3), F(2, 3)], [[], [F(1, 3)], [0, F(2, 3)]], [F(1, 4), 0, F(3, 4)]),
        _tableau("ralston3", 3, [0, F(1, 2), F(3, 4)], [[], [F(1, 2)], [0, F(3, 4)]], [F(2, 9), F(1, 3), F(4, 9)]),
        _tableau("rk4", 4, [0, F(1, 2), F(1, 2), 1], [[], [F(1, 2)], [0, F(1, 2)], [0, 0, 1]],
                 [F(1, 6), F(1, 3), F(1, 3), F(1, 6)]),
        _tableau(
            "bosh3", 3, [0, F(1, 2), F(3, 4), 1],
            [[], [F(1, 2)], [0, F(3, 4)], [F(2, 9), F(1, 3), F(4, 9)]],
            [F(2, 9), F(1, 3), F(4, 9), 0],
            b_embedded=[F(7, 24), F(1, 4), F(1, 3), F(1, 8)], embedded_order=2,
        ),
        _tableau(
            "dopri5", 5, [0, F(1, 5), F(3, 10), F(4, 5), F(8, 9), 1, 1],
            [
                [],
                [F(1, 5)],
                [F(3, 40), F(9, 40)],
                [F(44, 45), F(-56, 15), F(32, 9)],
                [F(19372, 6561), F(-25360, 2187), F(64448, 6561), F(-212, 729)],
                [F(9017, 3168), F(-355, 33), F(46732, 5247), F(49, 176), F(-5103, 18656)],
                [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84)],
            ],
            [F(35, 384), 0, F(500, 1113), F(125, 192), F(-2187, 6784), F(11, 84), 0],
            b_embedded=[F(5179, 57600), 0, F(7571, 16695), F(393, 640), F(-92097, 339200), F(187, 2100),
                        F(1, 40)],
            embedded_order=4,
        ),
        _tableau(
            "tsit5", 5, [0, 0.161, 0.327, 0.9, 0.9800255409045097, 1, 1],
            [
                [],
                [0.161],
                [-0.008480655492356989, 0.335480655492357],
                [2.8971530571054935, -6.359448489975075, 4.3622954328695815],
                [5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525],
                [5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401,
                 -0.028269050394068383],
                list(_TSIT5_B[:6]),
            ],
            _TSIT5_B,
            b_embedded=[b + d for b, d in zip(_TSIT5_B, _TSIT5_BTILDE)], embedded_order=4,
        ),
    )
}
# torchdiffeq's names for schemes in the table.
ALIASES = {"heun2": "heun", "adaptive_heun": "heun"}


def get_tableau(name: str) -> Tableau:
    """The tableau called `name` (or an alias of it); a ValueError naming the choices otherwise."""
    key = ALIASES.get(name, name)
    if key not in TABLEAUS:
        raise ValueError(f"solver={name!r} has no Butcher tableau in solvers/tableaus.py; choose one of "
                         f"{', '.join(list(TABLEAUS) + list(ALIASES))}")
    return TABLEAUS[key]


def has_tableau(name: str) -> bool:
    return ALIASES.get(name, name) in TABLEAUS
