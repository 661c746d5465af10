"""Which records join which, read off the compiled rules: the fields to index (`record_keys`) and,
for an arriving record, the paths to the stored records whose verdict it can change.

A rule of record type S reads related records through `Exists` (keys: related field = a field of
the record or of an outer related record) and through aggregates (`AggregatePart.keys`: related
field = record field). A record of type T arriving (or changing) can change the verdict of the S
records it joins to, so for every place T is read, a *reverse path* leads from the arriving record
back to those S records:

    start: values of T.<related field> (of the new and of the replaced version)
    steps: rows of <type> whose <match field> is one of the values -> their <take field> values
    the last step is on S and takes `id`: the subjects to evaluate again

A nested `Exists` (T joined to an outer related record of type X, itself joined to the record)
gives two steps: X rows matching T's key, then S rows matching X's key. Without a key, a step
matches every row of its type (no rule of the shipped library does that; it is correct, only slow).
Like the streaming engine, only the first key of a join is followed: the others narrow the match
further, so following the first one finds every subject that can change (and maybe a few more).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rules.lang.ir import RECORD, Aggregate, And, CompiledRule, Exists, Node, Not, Or
from rules.records import FieldType, RecordModel

ID = "id"
# Field types whose payload values `record_keys` can hold exactly (see records.service.key_text).
INDEXABLE = frozenset({FieldType.STRING, FieldType.INT, FieldType.BOOL})


@dataclass(frozen=True, slots=True)
class Step:
    """Rows of `type` whose `match` field is one of the incoming values (None: every row); the
    step yields the values of their `take` field."""

    type: str
    match: str | None
    take: str


@dataclass(frozen=True, slots=True)
class ReversePath:
    """From an arriving record's `start` field (None: no key, every subject) to subjects of
    `steps[-1].type`."""

    start: str | None
    steps: tuple[Step, ...]

    @property
    def subject_type(self) -> str:
        return self.steps[-1].type


@dataclass(frozen=True)
class JoinPlan:
    """Per arriving record type, the reverse paths; and every (type, field) a look-up matches on."""

    reverse: Mapping[str, tuple[ReversePath, ...]]
    lookups: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def key_fields(self, model: RecordModel) -> frozenset[tuple[str, str]]:
        """The (type, field) pairs worth indexing in `record_keys`: looked up by some join, not `id`
        (the records table indexes ids), and of a type whose values the index holds exactly."""
        return frozenset(
            (t, f)
            for t, f in self.lookups
            if f != ID and t in model and f in model[t].fields and model[t].fields[f].type in INDEXABLE
        )


def _exists(node: Node) -> Iterable[Exists]:
    """The top-level `Exists` of a condition (nested ones are reached through their parent)."""
    if isinstance(node, Exists):
        yield node
    elif isinstance(node, And | Or):
        for item in node.items:
            yield from _exists(item)
    elif isinstance(node, Not):
        yield from _exists(node.item)


# A chain from the rows of one scope to the subjects: take this field of the rows, then the steps.
_Chain = tuple[str, tuple[Step, ...]]
# scope -> (its record type, its chain)
_Env = Mapping[str, tuple[str, _Chain]]


def _walk(node: Exists, env: _Env, parent: str, out: list[tuple[str, ReversePath]]) -> None:
    """Reverse paths for `node` (a related record of `node.type`) and the Exists nested in it."""
    if node.keys:
        related_field, ref = node.keys[0]
        outer = ref.scope
        outer_type, (take, steps) = env[outer]
        chain: _Chain = (related_field, (Step(outer_type, ref.field, take), *steps))
        out.append((node.type, ReversePath(related_field, chain[1])))
    else:  # no key: joined to every row of the enclosing scope
        outer_type, (take, steps) = env[parent]
        chain = (ID, (Step(outer_type, None, take), *steps))  # any row of it reaches them all
        out.append((node.type, ReversePath(None, chain[1])))
    inner_env = {**env, node.alias: (node.type, chain)}
    for inner in _exists(node.body):
        _walk(inner, inner_env, node.alias, out)


def plan_joins(rules: Sequence[CompiledRule]) -> JoinPlan:
    """The reverse paths and looked-up fields of `rules` (see the module docstring)."""
    found: list[tuple[str, ReversePath]] = []
    for rule in rules:
        env: dict[str, tuple[str, _Chain]] = {RECORD: (rule.record_type, (ID, ()))}
        for level in rule.levels:
            for node in _exists(level.violation):
                _walk(node, env, RECORD, found)
        for derivation in rule.derivations:
            if not isinstance(derivation, Aggregate):
                continue
            for part in derivation.parts:
                if part.keys:
                    related_field, record_field = part.keys[0]
                    path = ReversePath(related_field, (Step(rule.record_type, record_field, ID),))
                else:
                    path = ReversePath(None, (Step(rule.record_type, None, ID),))
                found.append((part.type, path))
    reverse: dict[str, dict[ReversePath, None]] = {}
    lookups: set[tuple[str, str]] = set()
    for arriving, path in found:
        reverse.setdefault(arriving, {})[path] = None
        if path.start is not None:
            lookups.add((arriving, path.start))  # the engine fetches arriving-type rows by it
        lookups.update((s.type, s.match) for s in path.steps if s.match is not None)
    return JoinPlan({t: tuple(paths) for t, paths in reverse.items()}, frozenset(lookups))
