"""What a scenario kind offers the matrix's generic loop (matrix.Runner.run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from asgilab.verdicts import Judgement, Verdict

if TYPE_CHECKING:
    from asgilab.planning import Cell
    from asgilab.presets import Scenario
    from asgilab.topology import Route

RAW_OUTPUT_LIMIT = 20_000
STATIC_PATH = "/_lab/static"  # answered by every proxy itself (see proxy templates)


@dataclass(frozen=True)
class Recheck:
    """What the second client requests when a tool saw failures."""

    url: str
    attempts: int
    timeout: float = 10.0
    method: str = "GET"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Run:
    """One run of a cell: its entry in ``result["runs"]`` and the kind's judgement.

    ``record`` holds at least command and raw_output; a verified run also req_per_s.
    Keys starting with ``_`` are for ``Kind.fold`` only and never saved."""

    record: dict
    judgement: Judgement


@dataclass
class Context:
    """What the runner lends a kind: the lab's CA, a scratch folder, the log, the tools."""

    ca: str | None
    work_dir: Path
    log: Callable[[str], None] = print
    h2load: str = "h2load"
    tool_checks: dict[str, bool | None] = field(default_factory=dict)
    port_base: int = 18000


class Kind:
    """A load tool's part of a cell. Subclasses set ``name``, ``tool`` and ``Params``."""

    name: ClassVar[str]
    tool: ClassVar[str]
    Params: ClassVar[type]
    has_ceiling: ClassVar[bool] = False  # may a scenario ask for ``ceiling = true``
    last_run_fields: ClassVar[tuple[str, ...]] = ()  # evidence copied from the last run, any status

    # -- declaring scenarios -------------------------------------------------------------
    def validate(self, params: Any) -> str | None:
        """A problem with a scenario's parameters that their types do not catch."""
        return None

    def scenario_id(self, s: Scenario) -> str:
        raise NotImplementedError

    def label(self, s: Scenario) -> str:
        raise NotImplementedError

    def app_paths(self, params: Any) -> tuple[str, ...]:
        """The app's paths a run requests ("/x/": under it), so that a variant whose app
        serves fewer (the talk's 2021 app) leaves the cell n/a instead of failing it."""
        raise NotImplementedError

    def cannot_speak(self, s: Scenario, client: str) -> str | None:
        """Why this scenario's tool cannot speak a route's client protocol (None: it can).
        Such cells are n/a and never run: a tool's limit is no verdict on a server."""
        return None

    def expected_s(self, s: Scenario, client: str, tools: dict[str, float]) -> float:
        """Seconds one run of this scenario takes on a route with this client protocol, by
        the timing model's ``tools`` figures (loadgen/timing.toml)."""
        raise NotImplementedError

    def tool_for(self, s: Scenario) -> str:
        """The load tool a scenario runs (results' ``tool``; a kind may let scenarios choose)."""
        return self.tool

    # -- running a cell ------------------------------------------------------------------
    def before(self, cell: Cell, ctx: Context | None = None) -> Verdict | None:
        """A verdict that needs no run (a protocol this tool cannot speak)."""
        return None

    def run_once(self, ctx: Context, cell: Cell, index: int) -> Run:
        raise NotImplementedError

    def recheck(self, cell: Cell) -> Recheck:
        raise NotImplementedError

    def fold(self, result: dict, runs: list[dict]) -> None:
        """Kind-specific figures of a verified cell from its runs (percentiles...)."""

    def describe(self, cell: Cell) -> dict:
        """Fields this kind adds to every result (its settings), and its tool's versions
        under ``"versions"``."""
        return {}

    # -- the load generator's ceiling -----------------------------------------------------
    def ceiling_cell(self, cell: Cell, target: Route) -> Cell | None:
        """The same load against a proxy's own 200 on the same client path (None: this
        scenario has no meaningful ceiling)."""
        return None

    def close(self) -> None:
        """Stops what the kind keeps between cells (a browser)."""


def tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
