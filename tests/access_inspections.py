"""Access matrix entries of inspections, notices, waivers, penalties and self-checks (see
tests/access_matrix.py), and the builders the tests of those domains share.

Roles: supervisors (and admins) run inspections, issue, verify, return and close notices, waive
findings and decide penalties and appeals; a department acknowledges and answers its own notices,
appeals its own penalties and submits its own self-checks; managers read. Everything of another
department answers 404.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from rules.validate import content_hash, to_payloads
from service.evaluation.runtime import Runtime, runtime_for
from service.ingest import service as ingest
from service.inspections.config import InspectionConfig, load_config
from service.inspections.models import Inspection, InspectionSummary
from service.notices import flows as notice_flows
from service.notices import service as notices
from service.notices.models import Notice
from service.notices.service import EvidenceFile
from service.penalties import service as penalties
from service.penalties.models import Penalty
from service.records.flows import load_dataset
from service.selfchecks.models import SelfCheck
from service.settings import Settings
from tests.access_matrix import Access, Call, authenticated, expect, register, supervisors
from tests.api_fixtures import DEPT_A, DEPT_B, World, unique
from tests.ingest_helpers import payment, receipt, submit_as_system, violation_in

SYSTEM = "system"

# --- builders shared by the tests ------------------------------------------------------------------


def runtime_of(settings: Settings) -> Runtime:
    return runtime_for(settings)


def config_of(settings: Settings) -> InspectionConfig:
    return load_config(settings.policies_dir, runtime_for(settings).library.model)


def store(
    session_factory: sessionmaker[Session],
    settings: Settings,
    record_type: str,
    rows: Sequence[dict[str, Any]],
    *,
    now: datetime,
) -> None:
    """Store records as `zhidu load` does: validated, canonical, no evaluation on arrival."""
    library = runtime_for(settings).library
    rt = library.model[record_type]
    checked = ingest.check_json(rt, list(rows), tz=library.company.tz, dept=None)
    assert not checked.problems, checked.problems
    payloads = to_payloads(rt, checked.frame, library.company.tz)
    load_dataset(
        session_factory,
        records={record_type: [(p, content_hash(p)) for p in payloads]},
        submitted_by="test",
        source="test",
        now=now,
    )


def department(dept: str, head: str) -> dict[str, Any]:
    return {"id": dept, "name": f"部门{dept}", "name_en": f"Dept {dept}", "head": head}


PERSON = "张三"


def expense(
    rid: str,
    submitted: str,
    paid: str | None,
    *,
    invoice: str | None,
    dept: str = DEPT_A,
    applicant: str = PERSON,
) -> dict[str, Any]:
    """An expense claim of 1,280 CNY; without `invoice` it breaks EXP-001 (no invoice attached)."""
    row: dict[str, Any] = {
        "id": rid,
        "dept": dept,
        "applicant": applicant,
        "category": "travel",
        "amount": "1280.00",
        "invoice_count": 1 if invoice else 0,
        "submitted_at": submitted,
        "paid_at": paid,
    }
    if invoice:
        row["invoice_no"] = invoice
    return row


def claim_approval(aid: str, claim_id: str, step: str, decided: str) -> dict[str, Any]:
    """An approval (approved) of an expense claim at `step` (dept_head, finance, ...)."""
    return {
        "id": aid,
        "record_type": "expense_claim",
        "record_id": claim_id,
        "step": step,
        "approver": "王经理" if step == "dept_head" else "财务李",
        "decision": "approved",
        "decided_at": decided,
    }


def notice_for(world: World, *, dept: str = DEPT_A, state: str = "issued") -> Notice:
    """A notice of `dept` listing a new PUR-007 violation (a payment without goods receipt), moved
    to `state`: issued, acknowledged, response_submitted (the receipt submitted, so the rule
    complies), verified, or closed (with its penalty proposed)."""
    settings: Settings = world.app.state.settings
    runtime, config = runtime_of(settings), config_of(settings)
    pid = unique("PM")
    violation_id = violation_in(world, dept=dept, record_id=pid)
    now = datetime.now(UTC)
    with world.session_factory() as session:
        (notice,) = notice_flows.issue(
            session,
            runtime=runtime,
            config=config,
            dept=None,
            violation_ids=[violation_id],
            actor=SYSTEM,
            now=now,
        )
    if state == "issued":
        return notice
    with world.session_factory() as session:
        notice = notice_flows.acknowledge(session, notice_id=notice.id, visible=None, actor="dept", now=now)
    if state == "acknowledged":
        return notice
    submit_as_system(
        world.session_factory,
        settings,
        "goods_receipt",
        [receipt(unique("GR"), f"PO-{pid}", dept=dept)],
        user_id=world.users["supervisor"].id,
    )
    with world.session_factory() as session:
        notice, _ = notice_flows.respond(
            session,
            runtime=runtime,
            config=config,
            notice_id=notice.id,
            given=notice_flows.ResponseInput(
                description="验收单已补录",
                item_ids=None,
                records=[],
                files=[EvidenceFile("receipt.pdf", "application/pdf", b"%PDF-1.4 evidence")],
            ),
            visible=None,
            actor="dept",
            now=now,
        )
    if state == "response_submitted":
        return notice
    with world.session_factory() as session:
        notice, _ = notice_flows.verify(
            session, runtime=runtime, notice_id=notice.id, note="", visible=None, actor="sup", now=now
        )
    if state == "verified":
        return notice
    with world.session_factory() as session:
        notice, _ = notice_flows.close(
            session, runtime=runtime, notice_id=notice.id, note="", visible=None, actor="sup", now=now
        )
    assert state == "closed", state
    return notice


def penalty_in(world: World, *, dept: str = DEPT_A, status: str = "proposed") -> int:
    """The id of a penalty of `dept` (a closed notice's finding), moved to `status`: proposed,
    confirmed or appealed."""
    notice = notice_for(world, dept=dept, state="closed")
    now = datetime.now(UTC)
    with world.session_factory() as session:
        penalty = session.query(Penalty).filter(Penalty.notice_id == notice.id).one()
        if status in ("confirmed", "appealed"):
            penalties.decide(
                session, penalty=penalty, action="confirm", adjusted=None, reason=None, actor="sup", now=now
            )
        if status == "appealed":
            penalties.appeal(session, penalty=penalty, reason="不服", appeal_days=15, actor="dept", now=now)
        session.commit()
        return penalty.id


def inspection_in(world: World, *, dept: str = DEPT_A) -> int:
    """An inspection row of `dept` only (as a run would leave it, without running one)."""
    now = datetime.now(UTC)
    with world.session_factory() as session:
        inspection = Inspection(
            period="2026-03",
            period_start=datetime(2026, 2, 28, 16, tzinfo=UTC),
            period_end=datetime(2026, 3, 31, 16, tzinfo=UTC),
            as_of=datetime(2026, 4, 5, 16, tzinfo=UTC),
            complete=True,
            depts=[dept],
            trigger="api",
            run_key=None,
            requested_by="sup",
            started_at=now,
            finished_at=now,
            policy_version="test",
            records_checked=3,
            counts={"opened": 1},
            timings={"checks_seconds": 0.1},
        )
        session.add(inspection)
        session.flush()
        session.add(
            InspectionSummary(
                inspection_id=inspection.id,
                dept=dept,
                records_checked=3,
                findings_minor=0,
                findings_major=1,
                findings_critical=0,
                waived=0,
                data_quality=0,
                opened=1,
                closed=0,
                score=0.0,
            )
        )
        session.commit()
        return inspection.id


_PERIODS = itertools.count()


def selfcheck_in(world: World, *, dept: str = DEPT_A) -> int:
    """A self-check row of `dept` for a period of its own."""
    now = datetime.now(UTC)
    n = next(_PERIODS)
    with world.session_factory() as session:
        item = SelfCheck(
            dept=dept,
            period=f"{2000 + n // 12}-{n % 12 + 1:02d}",
            revision=1,
            submitted_by="dept",
            submitted_at=now,
            due_at=now + timedelta(days=1),
            late=False,
            as_of=now,
            policy_version="test",
            declaration={"compliant_rules": ["EXP-001"], "deviations": [], "statement": ""},
            records_checked=1,
            result={"records_checked": 1, "findings": [], "data_quality": []},
            comparison={"undeclared": [], "contradicted_rules": [], "declared_not_found": [], "matched": 0},
            under_reported=0,
        )
        session.add(item)
        session.commit()
        return item.id


# --- the matrix --------------------------------------------------------------------------------------

OF_A = expect(admin=200, supervisor=200, dept_a=200, dept_b=404, manager_a=200)
DEPARTMENT_ACTS = expect(admin=403, supervisor=403, dept_a=200, dept_b=404, manager_a=403)
DEPARTMENT_CREATES = expect(admin=403, supervisor=403, dept_a=201, dept_b=404, manager_a=403)


def _check_only_a(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    depts = {item.get("dept") for item in response.json()["items"]}
    if principal in ("dept_a", "manager_a"):
        assert depts <= {DEPT_A}, depts
    elif principal == "dept_b":
        assert depts <= {DEPT_B}, depts


def _notices_of_both(world: World, _principal: str) -> Call:
    notice_for(world, dept=DEPT_A)
    notice_for(world, dept=DEPT_B)
    return Call()


def _notice(state: str, **body: Any) -> Any:
    def build(world: World, _principal: str) -> Call:
        return Call(path={"notice_id": notice_for(world, state=state).id}, json=body or None)

    return build


def _respond(world: World, _principal: str) -> Call:
    notice = notice_for(world, state="acknowledged")
    return Call(
        path={"notice_id": notice.id},
        data={"description": "已整改"},
        files=[("files", ("photo.png", b"\x89PNG evidence", "image/png"))],
    )


def _evidence(world: World, _principal: str) -> Call:
    notice = notice_for(world, state="response_submitted")
    with world.session_factory() as session:
        response = notices.latest_response(session, notice_id=notice.id)
        assert response is not None
        (found,) = notices.evidence_of(session, response_ids=[response.id])
    return Call(path={"notice_id": notice.id, "evidence_id": found.id})


def _check_evidence(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code != 200:
        return
    body = response.json()
    assert base64.b64decode(body["content_base64"]) == b"%PDF-1.4 evidence"
    assert body["filename"] == "receipt.pdf"
    raw = world.client.get(
        str(response.request.url), headers={**world.headers(principal), "Accept": "application/octet-stream"}
    )
    assert raw.content == b"%PDF-1.4 evidence"
    assert raw.headers["content-type"] == "application/octet-stream"
    assert raw.headers["content-disposition"] == "attachment; filename*=UTF-8''receipt.pdf"


def _issue(world: World, _principal: str) -> Call:
    return Call(json={"violation_ids": [violation_in(world, dept=DEPT_A)]})


def _waive(world: World, _principal: str) -> Call:
    return Call(
        json={
            "violation_id": violation_in(world, dept=DEPT_A),
            "reason": "总经理特批",
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        }
    )


def _waiver(world: World, _principal: str) -> Call:
    settings: Settings = world.app.state.settings
    violation_id = violation_in(world, dept=DEPT_A)
    with world.session_factory() as session:
        waiver = notice_flows.waive(
            session,
            runtime=runtime_of(settings),
            violation_id=violation_id,
            reason="特批",
            expires_at=datetime.now(UTC) + timedelta(days=30),
            visible=None,
            actor="sup",
            now=datetime.now(UTC),
        )
    return Call(path={"waiver_id": waiver.id}, json={"reason": "撤销特批"})


def _penalty(status: str, **body: Any) -> Any:
    def build(world: World, _principal: str) -> Call:
        return Call(path={"penalty_id": penalty_in(world, status=status)}, json=body or None)

    return build


def _inspection(world: World, _principal: str) -> Call:
    return Call(path={"inspection_id": inspection_in(world)})


def _selfcheck(world: World, _principal: str) -> Call:
    return Call(path={"selfcheck_id": selfcheck_in(world)})


def _run_inspection(_world: World, _principal: str) -> Call:
    return Call(json={"period": "2026-03", "depts": [DEPT_A], "issue_notices": False})


def _check_inspection(_world: World, _principal: str, response: httpx.Response) -> None:
    if response.status_code == 201:
        body = response.json()
        assert body["period"] == "2026-03"
        assert body["depts"] == [DEPT_A]
        assert [s["dept"] for s in body["summaries"]] == [DEPT_A]


def _submit_selfcheck(_world: World, _principal: str) -> Call:
    return Call(json={"period": "2026-02", "declaration": {"compliant_rules": ["EXP-001"]}})


def _check_selfcheck(world: World, principal: str, response: httpx.Response) -> None:
    if response.status_code == 201:
        body = response.json()
        assert body["dept"] == world.users[principal].dept
        assert body["comparison"] is None  # the comparison is the supervision group's


register(
    "POST",
    "/api/v1/inspections",
    Access(expect=supervisors(201), build=_run_inspection, check=_check_inspection),
)
register("GET", "/api/v1/inspections", Access(expect=authenticated()))
register("GET", "/api/v1/inspections/{inspection_id}", Access(expect=OF_A, build=_inspection))
register("GET", "/api/v1/data-quality-findings", Access(expect=authenticated(), check=_check_only_a))

register(
    "GET", "/api/v1/notices", Access(expect=authenticated(), build=_notices_of_both, check=_check_only_a)
)
register("POST", "/api/v1/notices", Access(expect=supervisors(201), build=_issue))
register("GET", "/api/v1/notices/{notice_id}", Access(expect=OF_A, build=_notice("issued")))
register(
    "POST", "/api/v1/notices/{notice_id}/acknowledge", Access(expect=DEPARTMENT_ACTS, build=_notice("issued"))
)
register("POST", "/api/v1/notices/{notice_id}/responses", Access(expect=DEPARTMENT_CREATES, build=_respond))
register(
    "GET",
    "/api/v1/notices/{notice_id}/evidence/{evidence_id}",
    Access(expect=OF_A, build=_evidence, check=_check_evidence),
)
register(
    "GET", "/api/v1/notices/{notice_id}/verification", Access(expect=supervisors(), build=_notice("issued"))
)
register(
    "POST",
    "/api/v1/notices/{notice_id}/verify",
    Access(expect=supervisors(), build=_notice("response_submitted", note="核验通过")),
)
register(
    "POST",
    "/api/v1/notices/{notice_id}/return",
    Access(expect=supervisors(), build=_notice("response_submitted", reason="仍缺验收单")),
)
register(
    "POST",
    "/api/v1/notices/{notice_id}/close",
    Access(expect=supervisors(), build=_notice("verified", note="结案")),
)
register("GET", "/api/v1/reminders", Access(expect=authenticated(), check=_check_only_a))

register("POST", "/api/v1/waivers", Access(expect=supervisors(201), build=_waive))
register("GET", "/api/v1/waivers", Access(expect=authenticated(), check=_check_only_a))
register("POST", "/api/v1/waivers/{waiver_id}/revoke", Access(expect=supervisors(), build=_waiver))

register("GET", "/api/v1/penalties", Access(expect=authenticated(), check=_check_only_a))
register("GET", "/api/v1/penalties/{penalty_id}", Access(expect=OF_A, build=_penalty("proposed")))
register(
    "POST",
    "/api/v1/penalties/{penalty_id}/decision",
    Access(expect=supervisors(), build=_penalty("proposed", action="confirm")),
)
register(
    "POST",
    "/api/v1/penalties/{penalty_id}/appeal",
    Access(expect=DEPARTMENT_CREATES, build=_penalty("confirmed", reason="发票次日已补交")),
)
register(
    "POST",
    "/api/v1/penalties/{penalty_id}/appeal/decision",
    Access(expect=supervisors(), build=_penalty("appealed", outcome="upheld", reason="证据不足")),
)
register(
    "GET",
    "/api/v1/penalties/ledger/persons/{person}",
    Access(expect=authenticated(), build=lambda _w, _p: Call(path={"person": "张三"})),
)
register(
    "GET",
    "/api/v1/penalties/ledger/depts/{dept}",
    Access(expect=OF_A, build=lambda _w, _p: Call(path={"dept": DEPT_A})),
)

register(
    "POST",
    "/api/v1/selfchecks",
    Access(
        expect=expect(admin=403, supervisor=403, dept_a=201, dept_b=201, manager_a=403),
        build=_submit_selfcheck,
        check=_check_selfcheck,
    ),
)
register("GET", "/api/v1/selfchecks", Access(expect=authenticated(), check=_check_only_a))
register("GET", "/api/v1/selfchecks/missing", Access(expect=authenticated(), check=_check_only_a))
register("GET", "/api/v1/selfchecks/{selfcheck_id}", Access(expect=OF_A, build=_selfcheck))

__all__ = [
    "DEPT_A",
    "DEPT_B",
    "PERSON",
    "claim_approval",
    "config_of",
    "department",
    "expense",
    "inspection_in",
    "notice_for",
    "payment",
    "penalty_in",
    "runtime_of",
    "selfcheck_in",
    "store",
]
