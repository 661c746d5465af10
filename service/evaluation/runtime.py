"""What evaluation on arrival needs, built once per process: the policy library, ONE streaming
engine (durable-rules rulesets are process-global C state; the engine serialises its calls), the
join plan, the fields to index, and the payload codec with its cache.

`runtime_for(settings)` builds it on first use and returns the same object afterwards (per
policies folder, company file and time zone). Routes get it through `RuntimeDep`, and the time they
judge at through `ClockDep` (tests set `app.state.clock`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from rules.lang.rule import Rule
from rules.library import Library
from service.evaluation.joins import JoinPlan, plan_joins
from service.evaluation.service import load_policy_library
from service.evaluation.source import PayloadCodec
from service.settings import Settings

if TYPE_CHECKING:
    from rules.engine.stream import StreamEngine

Clock = Callable[[], datetime]


@dataclass
class Runtime:
    library: Library
    engine: StreamEngine
    plan: JoinPlan
    key_fields: frozenset[tuple[str, str]]
    codec: PayloadCodec
    rules_by_type: dict[str, tuple[Rule, ...]] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.library.version

    @classmethod
    def build(cls, library: Library) -> Runtime:
        from rules.engine.stream import StreamEngine  # durable-rules loads only when asked for

        rules = library.rules
        compiled = [r.compiled for r in rules]
        plan = plan_joins(compiled)
        by_type: dict[str, list[Rule]] = {}
        for rule in rules:
            by_type.setdefault(rule.record_type, []).append(rule)
        return cls(
            library=library,
            engine=StreamEngine(compiled, tz=library.company.tz),
            plan=plan,
            key_fields=plan.key_fields(library.model),
            codec=PayloadCodec(library.model, library.company.tz),
            rules_by_type={t: tuple(rs) for t, rs in by_type.items()},
        )


_RUNTIMES: dict[tuple[str, str, str], Runtime] = {}
_LOCK = threading.Lock()


def runtime_for(settings: Settings) -> Runtime:
    """The process' runtime for the policy library `settings` name (built on first use)."""
    key = (str(settings.policies_dir), str(settings.company_file), settings.timezone)
    runtime = _RUNTIMES.get(key)
    if runtime is None:
        with _LOCK:
            runtime = _RUNTIMES.get(key)
            if runtime is None:
                runtime = _RUNTIMES[key] = Runtime.build(load_policy_library(settings))
    return runtime


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if isinstance(runtime, Runtime):
        return runtime
    settings: Settings = request.app.state.settings
    return runtime_for(settings)


def system_clock() -> datetime:
    return datetime.now(UTC)


def get_clock(request: Request) -> Clock:
    clock = getattr(request.app.state, "clock", None)
    return clock if callable(clock) else system_clock


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ClockDep = Annotated[Clock, Depends(get_clock)]
