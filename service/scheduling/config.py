"""Schedules as data: `policies/schedules.yaml`, validated with every problem named (file, line, key).

    scheduler:                       # optional; every key has a default
      leadership: auto               # auto | lease | advisory (see service/scheduling/__init__.py)
      poll_seconds: 5                # a follower tries to become leader this often
      lease_seconds: 30              # lease leadership: expiry; the leader renews every third of it
      heartbeat_seconds: 10          # a running job's ledger row is renewed this often
      stale_after_seconds: 300       # a `started` run without heartbeat this long is abandoned
      retry_abandoned: 1             # times an abandoned run is run again (0: never)
      max_workers: 4                 # jobs running at once in the leader
    schedules:
      - id: inspection.monthly       # unique; the APScheduler job id and the ledger's job_id
        kind: inspection.monthly     # a registered job kind (service.scheduling.registry)
        cron: {day: 1, hour: 2, minute: 0}   # APScheduler cron fields, or a crontab "0 2 1 * *"
        timezone: Asia/Shanghai      # optional; default ZHIDU_TIMEZONE
        misfire_grace_seconds: 21600 # a fire time later than this is recorded `missed`, not run
        enabled: true                # optional, default true
        params: {}                   # optional keyword arguments of the job kind
        description: {zh: ..., en: ...}   # optional

Cron fields: year, month, day, week, day_of_week, hour, minute, second (APScheduler 3 syntax:
`*`, `*/n`, `a-b`, `a,b`, `last`, names such as `mon-fri`, `jan`). Unset fields finer than the
finest set field are 0 (e.g. `{day: 1}` fires at 00:00:00). `day_of_week` must use names:
APScheduler 3 numbers Monday 0 where crontab numbers Sunday 0 (apscheduler issue #286), so digits
are refused rather than silently shifted by a day.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from rules.problems import Problems
from rules.yamlsource import YamlDoc, line_of, load_yaml, plain

SCHEDULES_FILE = "schedules.yaml"
CRON_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
CRONTAB_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
JOB_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
MAX_MISFIRE_GRACE_SECONDS = 7 * 24 * 3600
DEFAULT_MISFIRE_GRACE_SECONDS = 3600
_DIGIT = re.compile(r"\d")

Leadership = Literal["auto", "lease", "advisory"]


@dataclass(frozen=True)
class SchedulerOptions:
    leadership: Leadership = "auto"
    poll_seconds: float = 5.0
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    stale_after_seconds: float = 300.0
    retry_abandoned: int = 1
    max_workers: int = 4


# key -> (type, minimum, maximum)
_OPTION_BOUNDS: dict[str, tuple[type, float, float]] = {
    "poll_seconds": (float, 0.05, 3600),
    "lease_seconds": (float, 0.3, 86400),
    "heartbeat_seconds": (float, 0.05, 3600),
    "stale_after_seconds": (float, 0.3, 7 * 86400),
    "retry_abandoned": (int, 0, 5),
    "max_workers": (int, 1, 64),
}


@dataclass(frozen=True)
class Schedule:
    id: str
    kind: str
    cron: dict[str, str]  # APScheduler cron field -> expression
    timezone: str
    misfire_grace_seconds: int
    enabled: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    description_zh: str | None = None
    description_en: str | None = None

    def trigger(self) -> Any:
        """The APScheduler CronTrigger (its repr is the schedule's identity in the job store)."""
        return CronTrigger(timezone=ZoneInfo(self.timezone), **self.cron)

    @property
    def cron_text(self) -> str:
        return " ".join(f"{name}={self.cron[name]}" for name in CRON_FIELDS if name in self.cron)

    def next_fire_time(self, after: datetime) -> datetime | None:
        value = self.trigger().get_next_fire_time(None, after)
        return value.astimezone(UTC) if value is not None else None


@dataclass(frozen=True)
class ScheduleConfig:
    source: str
    options: SchedulerOptions = SchedulerOptions()
    schedules: tuple[Schedule, ...] = ()

    def get(self, job_id: str) -> Schedule | None:
        return next((s for s in self.schedules if s.id == job_id), None)


def schedules_path(policies_dir: Path) -> Path:
    return policies_dir / SCHEDULES_FILE


def load_config(path: Path, *, default_timezone: str) -> ScheduleConfig:
    """Read and validate `path`; raises rules.problems.InputError naming every problem. A missing
    file is no schedules with default options."""
    if not path.exists():
        return ScheduleConfig(source=str(path))
    return _cached(path.resolve(), path.stat().st_mtime_ns, default_timezone)


@functools.lru_cache(maxsize=16)
def _cached(path: Path, _mtime_ns: int, default_timezone: str) -> ScheduleConfig:
    problems = Problems()
    doc = load_yaml(path, problems)
    config = ScheduleConfig(source=str(path))
    if doc is not None:
        config = _parse(doc, default_timezone, problems)
    problems.raise_if_any(f"{path.name} has problems / 调度配置存在问题")
    return config


def _parse(doc: YamlDoc, default_timezone: str, problems: Problems) -> ScheduleConfig:
    data = doc.data
    if data is None:
        return ScheduleConfig(source=doc.name)
    if not isinstance(data, dict):
        problems.add(
            doc.name,
            "top level must be a mapping with `schedules` (and optionally `scheduler`)",
            "顶层须为含 schedules（可选 scheduler）的映射",
            line=1,
        )
        return ScheduleConfig(source=doc.name)
    for key in data:
        if key not in ("scheduler", "schedules"):
            problems.add(
                doc.name,
                f"unknown key {key!r}; allowed: scheduler, schedules",
                f"未知键 {key!r}；允许：scheduler、schedules",
                line=line_of(data, key),
                key=str(key),
            )
    options = _options(doc, data.get("scheduler"), line_of(data, "scheduler"), problems)
    schedules: list[Schedule] = []
    raw = data.get("schedules", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        problems.add(
            doc.name,
            "schedules must be a list of schedules",
            "schedules 须为调度列表",
            line=line_of(data, "schedules"),
            key="schedules",
        )
        raw = []
    seen: dict[str, int | None] = {}
    for index, node in enumerate(raw):
        schedule = _schedule(doc, raw, index, node, default_timezone, problems)
        if schedule is None:
            continue
        line = line_of(raw, index)
        if schedule.id in seen:
            problems.add(
                doc.name,
                f"schedules[{index}].id: {schedule.id!r} is already used (line {seen[schedule.id]})",
                f"schedules[{index}].id：{schedule.id!r} 重复（第 {seen[schedule.id]} 行已使用）",
                line=line_of(node, "id") or line,
                key=f"schedules[{index}].id",
            )
            continue
        seen[schedule.id] = line_of(node, "id") or line
        schedules.append(schedule)
    return ScheduleConfig(source=doc.name, options=options, schedules=tuple(schedules))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _options(doc: YamlDoc, node: Any, line: int | None, problems: Problems) -> SchedulerOptions:
    if node is None:
        return SchedulerOptions()
    if not isinstance(node, dict):
        problems.add(
            doc.name, "scheduler must be a mapping", "scheduler 须为映射", line=line, key="scheduler"
        )
        return SchedulerOptions()
    values: dict[str, Any] = {}
    for key, value in node.items():
        where = f"scheduler.{key}"
        at = line_of(node, key)
        if key == "leadership":
            if value in ("auto", "lease", "advisory"):
                values[key] = value
            else:
                problems.add(
                    doc.name,
                    f"{where}: {value!r} is not one of auto, lease, advisory",
                    f"{where}：{value!r} 不是 auto、lease、advisory 之一",
                    line=at,
                    key=where,
                )
        elif key in _OPTION_BOUNDS:
            kind, low, high = _OPTION_BOUNDS[key]
            ok = _number(value) and (kind is float or isinstance(value, int)) and low <= value <= high
            if ok:
                values[key] = kind(value)
            else:
                noun, noun_zh = ("an integer", "整数") if kind is int else ("a number", "数值")
                problems.add(
                    doc.name,
                    f"{where}: {value!r} must be {noun} from {low:g} to {high:g}",
                    f"{where}：{value!r} 须为 {low:g} 到 {high:g} 之间的{noun_zh}",
                    line=at,
                    key=where,
                )
        else:
            allowed = ", ".join(["leadership", *_OPTION_BOUNDS])
            problems.add(
                doc.name,
                f"{where}: unknown key; allowed: {allowed}",
                f"{where}：未知键；允许：{allowed}",
                line=at,
                key=where,
            )
    options = SchedulerOptions(**values)
    if options.stale_after_seconds < 2 * options.heartbeat_seconds:
        problems.add(
            doc.name,
            "scheduler.stale_after_seconds must be at least twice heartbeat_seconds "
            f"({options.stale_after_seconds:g} < 2 × {options.heartbeat_seconds:g}), or live runs look abandoned",
            "scheduler.stale_after_seconds 须至少为 heartbeat_seconds 的两倍，否则运行中的任务会被误判为已中断",
            line=line_of(node, "stale_after_seconds") or line,
            key="scheduler.stale_after_seconds",
        )
    if options.lease_seconds < 2 * options.poll_seconds:
        problems.add(
            doc.name,
            "scheduler.lease_seconds must be at least twice poll_seconds "
            f"({options.lease_seconds:g} < 2 × {options.poll_seconds:g})",
            "scheduler.lease_seconds 须至少为 poll_seconds 的两倍",
            line=line_of(node, "lease_seconds") or line,
            key="scheduler.lease_seconds",
        )
    return options


_SCHEDULE_KEYS = (
    "id",
    "kind",
    "cron",
    "timezone",
    "misfire_grace_seconds",
    "enabled",
    "params",
    "description",
)


def _schedule(
    doc: YamlDoc, parent: Any, index: int, node: Any, default_timezone: str, problems: Problems
) -> Schedule | None:
    here = f"schedules[{index}]"
    if not isinstance(node, dict):
        problems.add(
            doc.name,
            f"{here} must be a mapping with id, kind, cron",
            f"{here} 须为含 id、kind、cron 的映射",
            line=line_of(parent, index),
            key=here,
        )
        return None
    count = len(problems)

    def bad(key: str, en: str, zh: str) -> None:
        # The line of the key itself; for `cron.<field>`, of that field in the cron mapping.
        head, _, field_name = key.partition(".")
        line = line_of(node, head) if head in node else line_of(parent, index)
        cron_node = node.get("cron")
        if field_name and isinstance(cron_node, dict) and field_name in cron_node:
            line = line_of(cron_node, field_name) or line
        problems.add(doc.name, f"{here}.{key}: {en}", f"{here}.{key}：{zh}", line=line, key=f"{here}.{key}")

    for key in node:
        if key not in _SCHEDULE_KEYS:
            bad(str(key), f"unknown key; allowed: {', '.join(_SCHEDULE_KEYS)}", "未知键")

    job_id = node.get("id")
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.fullmatch(job_id):
        bad(
            "id",
            f"{job_id!r} must be 1-128 characters: lowercase letters, digits, . _ -",
            f"{job_id!r} 须为 1-128 个小写字母、数字或 . _ -",
        )
    kind = node.get("kind")
    if not isinstance(kind, str) or not KIND_PATTERN.fullmatch(kind) or len(kind) > 64:
        bad("kind", f"{kind!r} must name a job kind such as inspection.monthly", f"{kind!r} 须为任务类型名")

    timezone = node.get("timezone", default_timezone)
    try:
        ZoneInfo(str(timezone))
        zone_ok = isinstance(timezone, str) and bool(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        zone_ok = False
    if not zone_ok:
        bad("timezone", f"unknown time zone {timezone!r}: use an IANA name such as Asia/Shanghai", "未知时区")
        timezone = default_timezone

    grace = node.get("misfire_grace_seconds", DEFAULT_MISFIRE_GRACE_SECONDS)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 1 <= grace <= MAX_MISFIRE_GRACE_SECONDS:
        bad(
            "misfire_grace_seconds",
            f"{grace!r} must be whole seconds from 1 to {MAX_MISFIRE_GRACE_SECONDS} (7 days): "
            "the grace is bounded",
            f"{grace!r} 须为 1 到 {MAX_MISFIRE_GRACE_SECONDS}（7 天）之间的整秒数：宽限期必须有上限",
        )
    enabled = node.get("enabled", True)
    if not isinstance(enabled, bool):
        bad("enabled", f"{enabled!r} must be true or false", f"{enabled!r} 须为 true 或 false")
    params = node.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        bad("params", "must be a mapping of keyword arguments", "须为参数映射")
        params = {}
    description = node.get("description")
    zh = en = None
    if description is not None:
        if (
            isinstance(description, dict)
            and isinstance(description.get("zh"), str)
            and isinstance(description.get("en"), str)
        ):
            zh, en = description["zh"].strip(), description["en"].strip()
        else:
            bad("description", "must be {zh: ..., en: ...}", "须为 {zh: ..., en: ...}")

    cron = _cron(node, here, str(timezone), bad)
    if len(problems) > count or cron is None:
        return None
    schedule = Schedule(
        id=cast(str, job_id),
        kind=cast(str, kind),
        cron=cron,
        timezone=str(timezone),
        misfire_grace_seconds=cast(int, grace),
        enabled=cast(bool, enabled),
        params=plain(params),
        description_zh=zh,
        description_en=en,
    )
    if schedule.next_fire_time(datetime.now(UTC)) is None:
        bad("cron", f"{schedule.cron_text} never fires", f"{schedule.cron_text} 永远不会触发")
        return None
    return schedule


def _cron(node: dict[str, Any], here: str, timezone: str, bad: Any) -> dict[str, str] | None:
    if "cron" not in node:
        bad("cron", "is required: cron fields such as {day: 1, hour: 2} or a crontab string", "缺少 cron")
        return None
    raw = node["cron"]
    ok = True
    if isinstance(raw, str):
        values = raw.split()
        if len(values) != len(CRONTAB_FIELDS):
            bad(
                "cron",
                f"{raw!r}: a crontab has 5 fields (minute hour day month day_of_week), got {len(values)}",
                f"{raw!r}：crontab 须有 5 个字段（分 时 日 月 周），实际 {len(values)} 个",
            )
            return None
        fields = dict(zip(CRONTAB_FIELDS, values, strict=True))
    elif isinstance(raw, dict) and raw:
        fields = {}
        for key, value in raw.items():
            if key not in CRON_FIELDS:
                ok = False
                bad(f"cron.{key}", f"unknown cron field; allowed: {', '.join(CRON_FIELDS)}", "未知 cron 字段")
            elif isinstance(value, bool) or not isinstance(value, int | str) or str(value).strip() == "":
                ok = False
                bad(
                    f"cron.{key}",
                    f"{value!r} must be a number or an expression such as '*/5'",
                    "须为数字或表达式",
                )
            else:
                fields[str(key)] = str(value).strip()
    else:
        bad(
            "cron",
            "must be a mapping of cron fields or a crontab string",
            "须为 cron 字段映射或 crontab 字符串",
        )
        return None

    day_of_week = fields.get("day_of_week")
    if day_of_week is not None and _DIGIT.search(day_of_week):
        key = "cron" if isinstance(raw, str) else "cron.day_of_week"
        bad(
            key,
            f"day of week {day_of_week!r}: use names (mon, tue, ..., sun; mon-fri): APScheduler 3 "
            "numbers Monday 0, crontab numbers Sunday 0",
            f"星期字段 {day_of_week!r} 须用英文缩写（mon…sun，如 mon-fri）：APScheduler 3 以 0 表示周一，crontab 以 0 表示周日",
        )
        ok = False
    zone = ZoneInfo(timezone)
    for name, expression in fields.items():
        try:
            CronTrigger(timezone=zone, **{name: expression})
        except ValueError as exc:
            key = "cron" if isinstance(raw, str) else f"cron.{name}"
            bad(key, f"{name}={expression!r}: {exc}", f"{name}={expression!r} 无效：{exc}")
            ok = False
    return fields if ok else None
