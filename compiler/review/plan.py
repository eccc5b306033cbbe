"""What each function of a resolved app asks for and may cost: the rows of ``mtc plan`` and ``mtc diff``.

Per function: GPU (type x count, fallbacks in order), CPU, memory, timeout, retries, the estimated $/hour with
the first GPU choice, and the worst case per call: the most expensive fallback's $/hour x the timeout x
(1 + retries), since Modal gives every retry a full timeout. A function without a timeout gets Modal's
default of 300 s. Prices come from :mod:`compiler.platform.pricing`; ``gpu: any`` is priced as the dearest GPU
it may land on, and the table and its footer say which.

A clustered function (``cluster: {size: N}``) runs N containers per call: its $/hour and worst case are N
times one container's, and its GPU cell says ``N x H100:8``.

A function with a ``sweep`` gets a second line, ``NAME --sweep``: its worst case is the number of trials x
the worst case per call (every trial may run to its timeout, and be retried), and its $/hour is what
``max_parallel`` trials cost while they run at once. ``--budget`` checks that figure too.

A class or web endpoint is priced like a function, per container hour (its name says which it is); its
``min_containers`` run whether requests come or not, so they are a standing cost per day, shown under the
table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from compiler.platform import gpus
from compiler.platform.modal_limits import MODAL_DEFAULT_TIMEOUT_S
from compiler.platform.pricing import Prices, hourly_cost
from compiler.review.tables import aligned, money
from compiler.spec.ir import App, Function
from compiler.spec.sweep import function_trials


@dataclass(frozen=True)
class PlanRow:
    function: str
    gpus: tuple[str, ...]  # Modal strings in fallback order, e.g. ("H100", "A100-80GB:2"); () = CPU only
    cpu: float | None  # None = Modal's default
    memory_mib: int | None  # None = Modal's default
    timeout_s: int
    timeout_is_default: bool
    retries: int
    hourly_usd: float  # with the first GPU choice
    worst_hourly_usd: float  # with the most expensive fallback
    worst_case_usd: float  # per call: worst_hourly x timeout x (1 + retries)
    any_priced_as: str | None = None  # gpu `any` is priced as this type, the dearest it may land on
    sweep_trials: int = 0  # 0 = no sweep
    sweep_parallel: int = 0  # trials at once: max_parallel, or every trial when the sweep sets none
    nodes: int = 1  # containers per call: a cluster's size (the $ figures above include it)
    kind: str = "function"  # "function", "class" or "web endpoint"
    min_containers: int = 0  # kept warm at all times

    @property
    def standing_daily_usd(self) -> float:
        """What the containers kept warm cost per day, with no request at all (``hourly_usd`` is a whole
        call's: all ``nodes`` containers of a cluster)."""
        return self.min_containers / self.nodes * self.hourly_usd * 24

    @property
    def sweep_worst_case_usd(self) -> float:
        """Every trial running to its timeout with every retry: trials x the worst case per call."""
        return self.sweep_trials * self.worst_case_usd

    @property
    def sweep_hourly_usd(self) -> float:
        return self.sweep_parallel * self.hourly_usd

    @property
    def most_usd(self) -> float:
        """The larger of the worst case per call and the sweep's, what ``--budget`` compares."""
        return max(self.worst_case_usd, self.sweep_worst_case_usd)


def plan_rows(app: App, prices: Prices) -> list[PlanRow]:
    return [plan_row(fn, prices) for fn in app.functions.values()]


def plan_row(fn: Function, prices: Prices) -> PlanRow:
    resources = fn.resources
    choices = resources.gpus or (None,)
    worst_hourly = max(hourly_cost(resources, prices, gpu=gpu).total for gpu in choices)
    timeout = resources.timeout_s if resources.timeout_s is not None else MODAL_DEFAULT_TIMEOUT_S
    retries = fn.retries.max_retries if fn.retries else 0
    trials = len(function_trials(fn))
    parallel = min(fn.sweep.max_parallel or trials, trials) if fn.sweep else 0
    nodes = fn.nodes
    worst_hourly *= nodes
    return PlanRow(
        function=fn.name,
        gpus=tuple(g.modal_string() for g in resources.gpus),
        cpu=resources.cpu,
        memory_mib=resources.memory_mib,
        timeout_s=timeout,
        timeout_is_default=resources.timeout_s is None,
        retries=retries,
        hourly_usd=hourly_cost(resources, prices).total * nodes,
        worst_hourly_usd=worst_hourly,
        worst_case_usd=worst_hourly * timeout / 3600 * (1 + retries),
        any_priced_as=prices.priced_as(gpus.ANY) if any(g.type == gpus.ANY for g in resources.gpus) else None,
        sweep_trials=trials,
        sweep_parallel=parallel,
        nodes=nodes,
        kind="class" if fn.is_class else "web endpoint" if fn.web else "function",
        min_containers=fn.min_containers or 0,
    )


def over_budget(rows: list[PlanRow], budget_usd: float) -> list[PlanRow]:
    return [row for row in rows if row.most_usd > budget_usd]


# ------------------------------------------------------------------------------------------------ output

COLUMNS = ("function", "gpu", "cpu", "memory MiB", "timeout", "retries", "$/hour", "worst case $")
NUMERIC = {"cpu", "memory MiB", "timeout", "retries", "$/hour", "worst case $"}


def cells(row: PlanRow) -> tuple[str, ...]:
    return (
        row.function if row.kind == "function" else f"{row.function} ({row.kind})",
        _nodes_prefix(row) + (" or ".join(_gpu_cell(gpu, row) for gpu in row.gpus) or "-"),
        "default" if row.cpu is None else f"{row.cpu:g}",
        "default" if row.memory_mib is None else str(row.memory_mib),
        f"{row.timeout_s} s" + (" (default)" if row.timeout_is_default else ""),
        str(row.retries),
        money(row.hourly_usd),
        money(row.worst_case_usd),
    )


def _nodes_prefix(row: PlanRow) -> str:
    """``2 x `` before a cluster's GPUs: each of its containers has them."""
    return f"{row.nodes} x " if row.nodes > 1 else ""


def _gpu_cell(gpu: str, row: PlanRow) -> str:
    """A GPU as Modal names it; ``any`` with the type it is priced as: ``any (as A10)``."""
    return f"{gpu} (as {row.any_priced_as})" if gpu.partition(":")[0] == gpus.ANY else gpu


def sweep_cells(row: PlanRow) -> tuple[str, ...]:
    """The sweep's line under its function's: trials, the rate of the trials at once, the total worst case."""
    name = f"{row.function} --sweep ({row.sweep_trials} trials, {row.sweep_parallel} at once)"
    return (name, *cells(row)[1:6], money(row.sweep_hourly_usd), money(row.sweep_worst_case_usd))


def format_table(rows: list[PlanRow]) -> str:
    """An aligned plain-text table: text columns to the left, numbers to the right."""
    lines = [[cells(row), *([sweep_cells(row)] if row.sweep_trials else [])] for row in rows]
    return aligned(COLUMNS, [line for pair in lines for line in pair], NUMERIC)


def footer(prices: Prices, rows: list[PlanRow]) -> str:
    trials = ", x trials for a sweep" if any(row.sweep_trials for row in rows) else ""
    nodes = " x cluster size" if any(row.nodes > 1 for row in rows) else ""
    text = (
        f"worst case = the most expensive GPU fallback{nodes} x timeout x (1 + retries){trials}; "
        f"prices: {prices.source} ({prices.date})\n"
    )
    for row in rows:
        if row.min_containers:
            warm = f"{row.min_containers} container{'s' if row.min_containers > 1 else ''}"
            text += (
                f"standing cost: {row.function} keeps {warm} warm (min_containers): "
                f"${money(row.standing_daily_usd)}/day before any request\n"
            )
    if any(row.any_priced_as for row in rows):
        may_be = ", ".join(gpus.ANY_MAY_BE)
        text += (
            f"gpu any: Modal picks one of {may_be} by availability; priced as the dearest, "
            f"{prices.priced_as(gpus.ANY)}\n"
        )
    return text


def as_json(rows: list[PlanRow], prices: Prices, app: App) -> str:
    payload = {
        "app": app.name,
        "spec": app.spec_path,
        "profile": app.profile,
        "prices": {"source": prices.source, "date": prices.date},
        "functions": [{**asdict(row), "gpus": list(row.gpus), **_sweep_figures(row)} for row in rows],
    }
    return json.dumps(payload, indent=2) + "\n"


def _sweep_figures(row: PlanRow) -> dict:
    figures = {"standing_daily_usd": row.standing_daily_usd} if row.min_containers else {}
    if not row.sweep_trials:
        return figures
    return {
        **figures,
        "sweep_hourly_usd": row.sweep_hourly_usd,
        "sweep_worst_case_usd": row.sweep_worst_case_usd,
    }
