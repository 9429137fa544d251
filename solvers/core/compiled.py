"""The compiled stepping core (`method.compile=true`): the steps of a fixed grid as one compiled loop.

On a small field every tensor operation costs far more in dispatch than in arithmetic, and a compiled function
called once per step still pays its own entry cost (guards and wrappers: tens of µs). So what is compiled is the
*loop*: `Compiler.loop(body, ...)` runs `body` over the steps start .. stop - 1 of a grid inside one
`torch._higher_order_ops.while_loop`, compiled by torch.compile (inductor) with its C++ wrapper on CPU, so no Python
runs between steps; parameters and carried state are one flat tensor each, since the loop handles a tensor handle per
input and output every iteration. The step index is a tensor, so one compiled loop serves every number of steps.
The step times are read from the grid's own times (a tensor of the host floats), so the compiled steps take exactly
the eager steps' times. Where a step must stand alone (a checkpointing U-turn, a step under autograd for direct
backprop) `Compiler.function` compiles it by itself.

A body is written with the field in functional form (`FunctionalField`): its parameters are explicit arguments,
so a body can take VJPs with torch.func.vjp inside the compiled graph. The field's evaluations inside a compiled
loop are not seen by the NFE counter's wrapper; the caller counts them (`solvers.nfe.add_evaluations`-style, see
`count_steps`).

Any method can take the switch: a `SteppingMethod` has it already (`compile=` in its constructor, `self.compiler`);
another method (e.g. one whose backward pass is its own loop) makes a `Compiler()` when asked, runs its loop bodies
through `compiler.loop(key, body, params, times, start, stop, carry)` or `compiler.function(key, fn)`, and returns
`{"compile": True, "compile_stats": compiler.stats}` from `describe()`.

Compile time is kept apart from step time: `Compiler.stats` (a dict the method's `describe()` hands to the run
record, filled as compilation happens) holds the seconds spent in first calls of each compiled function (tracing,
code generation, C++ build) and how many were compiled. Results equal the eager steps' to round-off (the compiled
kernels may contract a * b + c into one rounding): tests/test_compiled.py holds compiled against eager gradients to
1e-12 in float64. ODEs on fixed grids only; SDE solves and adaptive steps run eagerly (their `compile_stats` count
no compiled function). The same code compiles for CUDA (inductor's C++ wrapper there drives the GPU kernels); CUDA
graphs, and any measurement on a GPU, are not done yet: no GPU was available to the session that wrote this.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch._higher_order_ops.while_loop import while_loop
from torch._inductor.custom_graph_pass import CustomGraphPass
from torch.func import functional_call

from solvers.nfe import counter_of, report_step, unwrap


class FunctionalField:
    """field(t, y) with its trainable parameters passed explicitly: `call(params, t, y)`."""

    def __init__(self, field: Any) -> None:
        self.module: nn.Module = unwrap(field)
        self.names = [name for name, p in self.module.named_parameters() if p.requires_grad]

    def params(self) -> tuple[torch.Tensor, ...]:
        found = dict(self.module.named_parameters())
        return tuple(found[name] for name in self.names)

    def call(self, params: tuple[torch.Tensor, ...], t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, dict(zip(self.names, params)), (t, y))


class SmallMatmulsAsLoops(CustomGraphPass):
    """An inductor post-grad pass: a matrix product small enough (M K N <= 4096, e.g. the layers of a 1-10-1 field)
    becomes a broadcast product and a sum, which inductor fuses into the C++ loops around it, instead of an
    external BLAS call per product (several µs each, more than the arithmetic of a whole step of such a field)."""

    LIMIT = 4096

    def __call__(self, graph: torch.fx.Graph) -> None:
        aten = torch.ops.aten
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target not in (aten.mm.default, aten.addmm.default):
                continue
            bias, a, b = (None, *node.args[:2]) if node.target is aten.mm.default else node.args[:3]
            if node.kwargs or any("val" not in getattr(x, "meta", {}) for x in (a, b)):
                continue
            (m, k), (_, n) = a.meta["val"].shape, b.meta["val"].shape
            if not all(isinstance(d, int) for d in (m, k, n)) or m * k * n > self.LIMIT:
                continue
            with graph.inserting_before(node):
                product = graph.call_function(aten.mul.Tensor, (graph.call_function(aten.unsqueeze.default, (a, 2)),
                                                                graph.call_function(aten.unsqueeze.default, (b, 0))))
                out = graph.call_function(aten.sum.dim_IntList, (product, [1]))
                if bias is not None:
                    out = graph.call_function(aten.add.Tensor, (out, bias))
            out.meta = dict(node.meta)
            node.replace_all_uses_with(out)
            graph.erase_node(node)

    def uuid(self) -> str:
        return f"small-matmuls-as-loops-{self.LIMIT}"


class Compiler:
    """Compiled loops and single steps for one method (one per method instance, so its stats are that method's)."""

    def __init__(self) -> None:
        self.stats: dict[str, Any] = {"compile_seconds": 0.0, "compiled_functions": 0}
        self._cache: dict[Any, Callable] = {}
        self._first: set[Any] = set()
        # on CPU the Python wrapper between kernels costs more than the kernels: the C++ wrapper, and tiny matmuls
        # fused into the loops
        options = {"cpp_wrapper": True, "post_grad_custom_pre_pass": SmallMatmulsAsLoops()}
        self.options = options

    def _timed_first(self, key: Any, fn: Callable, *args):
        if key in self._first:
            return fn(*args)
        start = time.perf_counter()
        out = fn(*args)
        self.stats["compile_seconds"] += time.perf_counter() - start
        self.stats["compiled_functions"] += 1
        self._first.add(key)
        return out

    def function(self, key: Any, fn: Callable) -> Callable:
        """fn compiled by itself (its first call, which compiles it, counted as compile time)."""
        if key not in self._cache:
            self._cache[key] = torch.compile(own_code(fn, len(self._cache)), fullgraph=True, dynamic=False,
                                             options=self.options)
        compiled = self._cache[key]
        return lambda *args: self._timed_first(key, compiled, *args)

    def loop(self, key: Any, body: Callable, params: tuple[torch.Tensor, ...], times: torch.Tensor, start: int,
             stop: int, carry: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """carry after body(params, t_k, t_{k+1}, *carry) for k = start .. stop - 1 (t = times), in one compiled
        call; `key` names the body (one compiled loop per key, whatever the number of steps)."""
        if stop <= start:
            return carry
        if key not in self._cache:
            param_shapes = [p.shape for p in params]
            carry_shapes = [c.shape for c in carry]

            def run(flat_params, times, start, stop, flat_carry):
                # one flat tensor each for the parameters and the carried state: the compiled loop manages a
                # tensor handle per input and output of every iteration, which costs more than a small step itself
                def cond(i, c):
                    return i < stop

                def step(i, c):
                    pair = torch.index_select(times, 0, torch.stack((i, i + 1)))  # t_i, t_{i+1}: no data-dependent
                    ps = unflatten(flat_params, param_shapes)                         # indexing in a compiled loop
                    out = body(ps, pair[0], pair[1], *unflatten(c, carry_shapes))
                    return i + 1, torch.cat([o.reshape(-1) for o in out])

                return while_loop(cond, step, (start.clone(), flat_carry.clone()))[1]

            self._cache[key] = torch.compile(own_code(run, len(self._cache)), fullgraph=True, dynamic=False,
                                             options=self.options)
        index = torch.tensor(start), torch.tensor(stop)
        flat = self._timed_first(key, self._cache[key], flatten(params), times, *index, flatten(carry))
        return tuple(unflatten(flat, [c.shape for c in carry]))


def own_code(fn: Callable, n: int) -> Callable:
    """fn with a code object of its own, so a dynamo cache of its own: the loops (and single steps) of every method
    share their code, and dynamo keeps a bounded number of compiled variants per code object (8) before it
    refuses to compile more."""
    bound = getattr(fn, "__self__", None)
    fn = getattr(fn, "__func__", fn)
    copy = types.FunctionType(fn.__code__.replace(), fn.__globals__, f"{fn.__name__}_{n}", fn.__defaults__,
                              fn.__closure__)
    return copy if bound is None else types.MethodType(copy, bound)


def flatten(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def unflatten(flat: torch.Tensor, shapes) -> list[torch.Tensor]:
    sizes = [math.prod(shape) for shape in shapes]
    return [part.view(shape) for part, shape in zip(torch.split(flat, sizes), shapes)]


def traceable(tableau: Any) -> Any:
    """The tableau with its cached properties filled in: dynamo cannot trace functools.cached_property's lock."""
    tableau.nonzero, tableau.nonzero_b  # noqa: B018 - filled in by reading them (the error weights: never compiled)
    return tableau


def count_steps(field: Any, steps: int, evaluations_per_step: int) -> None:
    """Report `steps` steps of a compiled loop to the field's counter, as the eager steps report theirs."""
    counter = counter_of(field)
    if counter is None:
        for _ in range(steps):
            report_step(field, True)
        return
    counter.add_evaluations(steps * evaluations_per_step)
    for _ in range(steps):  # what report_step does for a counted field, without its lookup per step
        counter.step()


def times_tensor(times: list[float], like: torch.Tensor) -> torch.Tensor:
    """The grid's step times as a tensor (the host floats themselves: the compiled steps take the eager times)."""
    return torch.tensor(times, dtype=like.dtype, device=like.device)


class CompiledPlainSteps:
    """The base scheme y + Psi_h(t, y) compiled: loops of steps without a graph (`steps`), one step under autograd
    (`step`, for direct backprop), and one step pulled back by its VJP (`grad_step`, checkpointing's U-turn)."""

    def __init__(self, compiler: Compiler, field: Any, tableau: Any) -> None:
        self.compiler, self.field, self.tableau = compiler, field, traceable(tableau)
        self.functional = FunctionalField(field)
        self._times: tuple[list[float], torch.Tensor] | None = None
        self.key = (id(self.functional.module), tableau.name)  # one compiled loop per field and scheme

    def increment(self, params, t0: torch.Tensor, t1: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from solvers.core.terms import ODETerm, rk_increment  # noqa: PLC0415 - terms imports nothing of ours

        term = ODETerm(lambda t, x: self.functional.call(params, t, x))
        return rk_increment(term, self.tableau, t0, t1 - t0, y, None, base=y)

    def times(self, times: list[float], like: torch.Tensor) -> torch.Tensor:
        if self._times is None or self._times[0] is not times:
            self._times = (times, times_tensor(times, like))
        return self._times[1]

    def steps(self, times: list[float], start: int, stop: int, y: torch.Tensor) -> torch.Tensor:
        ts = self.times(times, y)
        (y,) = self.compiler.loop(("plain", *self.key), lambda p, t0, t1, x: (self.increment(p, t0, t1, x),),
                                  self.functional.params(), ts, start, stop, (y,))
        count_steps(self.field, stop - start, self.tableau.advance_stages)
        return y

    def _scalars(self, t0: float, t1: float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor(t0, dtype=like.dtype, device=like.device),
                torch.tensor(t1, dtype=like.dtype, device=like.device))

    def step(self, t0: float, t1: float, y: torch.Tensor) -> torch.Tensor:
        fn = self.compiler.function(("plain step", *self.key), self.increment)
        out = fn(self.functional.params(), *self._scalars(t0, t1, y), y)
        counter = counter_of(self.field)
        if counter is not None:
            counter.add_evaluations(self.tableau.advance_stages)
        return out

    def grad_step(self, t0: float, t1: float, y: torch.Tensor, adj: torch.Tensor, params) -> tuple:
        def pull_back(params, t0, t1, y, adj):
            _, back = torch.func.vjp(lambda x, *p: self.increment(p, t0, t1, x), y, *params)
            return back(adj)

        fn = self.compiler.function(("plain grad step", *self.key), pull_back)
        g = fn(tuple(p.detach() for p in params), *self._scalars(t0, t1, y), y.detach(), adj.detach())
        counter = counter_of(self.field)
        if counter is not None:
            counter.add_evaluations(self.tableau.advance_stages)
        return g
