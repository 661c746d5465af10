"""Job kinds: named callables other domains register, which schedules and on-demand runs name.

A job kind is a function

    def run(session_factory, *, fire_time: datetime, job_id: str, **params) -> dict

`session_factory` makes sessions on the service's database (the function owns its transactions,
like any flow); `fire_time` is the scheduled time (aware, UTC) or, for an on-demand run, the time
it was requested; `job_id` the schedule's id; `params` the schedule's or request's parameters.
The returned dict (JSON-able) is stored in the run ledger as the run's result.

Domains register their kinds in `service/<domain>/jobs.py` (found by `discover_job_kinds`):

    from service.scheduling.registry import register_job_kind
    register_job_kind("inspection.monthly", run_monthly_inspection)

A run may be retried once after its process died mid-run (see `service.scheduling`), so a kind's
own writes should be idempotent for one (job_id, fire_time): upsert, do not append blindly.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
MAX_KIND_LENGTH = 64

SessionFactory = Callable[[], Session]


class JobKind(Protocol):
    def __call__(
        self, session_factory: SessionFactory, /, *, fire_time: datetime, job_id: str
    ) -> Mapping[str, Any]: ...


class UnknownJobKindError(LookupError):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        known = ", ".join(sorted(_KINDS)) or "none"
        super().__init__(f"no job kind {kind!r} is registered (registered: {known})")


_KINDS: dict[str, Callable[..., Mapping[str, Any]]] = {}
_LOCK = threading.Lock()


def register_job_kind(name: str, func: Callable[..., Mapping[str, Any]]) -> None:
    """Register `func` under `name` (e.g. "inspection.monthly"). Registering the same function
    again is a no-op; another function under a taken name raises ValueError."""
    if not KIND_PATTERN.fullmatch(name) or len(name) > MAX_KIND_LENGTH:
        raise ValueError(f"a job kind name is lowercase dotted words, at most 64 characters: {name!r}")
    if not callable(func):
        raise TypeError(f"job kind {name!r}: {func!r} is not callable")
    with _LOCK:
        existing = _KINDS.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"job kind {name!r} is already registered to {existing!r}")
        _KINDS[name] = func


def unregister_job_kind(name: str) -> None:
    """Remove a kind (tests)."""
    with _LOCK:
        _KINDS.pop(name, None)


def job_kind(name: str) -> Callable[..., Mapping[str, Any]]:
    """The function registered under `name`; UnknownJobKindError otherwise."""
    with _LOCK:
        func = _KINDS.get(name)
    if func is None:
        raise UnknownJobKindError(name)
    return func


def is_registered(name: str) -> bool:
    with _LOCK:
        return name in _KINDS


def registered_kinds() -> list[str]:
    with _LOCK:
        return sorted(_KINDS)


def discover_job_kinds() -> list[str]:
    """Import every `service/<domain>/jobs.py` (each registers its kinds); the modules imported."""
    import service

    found: list[str] = []
    for info in sorted(pkgutil.iter_modules(service.__path__), key=lambda m: m.name):
        name = f"service.{info.name}.jobs"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
            found.append(name)
    return found
