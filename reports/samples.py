"""Deterministic sample documents of any size, for the tests, the benchmark and previews of the
templates. Rules and clauses are quoted from the policy library (as data: `reports` never imports
`rules`); people are synthetic, names include rare surnames and long texts on purpose."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from reports.models import (
    SEVERITIES,
    Clause,
    Department,
    DepartmentCount,
    DepartmentScorecard,
    DeptRuleCount,
    Digest,
    FindingRow,
    NoticeFinding,
    NoticeSummary,
    PenaltyItem,
    Period,
    RectificationNotice,
    ReportScope,
    ResponsiblePerson,
    RuleCount,
    ScoreChange,
    ScorePoint,
    SelfCheck,
    SelfCheckRow,
    SeverityCount,
    SignatureBlock,
    Text,
    TrendPoint,
    ViolationReport,
    ViolationTotals,
)

TZ = ZoneInfo("Asia/Shanghai")
COMPANY = "华东精密制造股份有限公司"

DEPARTMENTS = [
    Department("FIN", Text("财务部", "Finance")),
    Department("PUR", Text("采购部", "Procurement")),
    Department("HR", Text("人力资源部", "Human Resources")),
    Department("SAL", Text("销售部", "Sales")),
    Department("CS", Text("客户服务部", "Customer Service")),
    Department("WH", Text("仓储物流部", "Warehousing and Logistics")),
    Department("RD", Text("技术研发部", "Research and Development")),
    Department("MKT", Text("市场营销部", "Marketing")),
    Department("ADM", Text("行政部", "Administration")),
    Department("LEG", Text("法务部", "Legal")),
]

_CLAUSES = {
    c.id: c
    for c in [
        Clause(
            "m001.7.2.3",
            Text("法务审核", "Legal review"),
            Text(
                "法务部门审核合同的合法性、合规性，防范法律风险。",
                "Legal reviews the contract for legality and compliance to guard against legal risk.",
            ),
        ),
        Clause(
            "m004.3.1.4.2",
            Text("法务审核销售合同", "Legal review of sales contracts"),
            Text(
                "合同文本由公司法务部门审核，确保条款合法合规、风险可控。",
                "The contract text is reviewed by the company's legal department to ensure the terms are lawful, compliant and carry controllable risk.",
            ),
        ),
        Clause(
            "m001.7.2.4",
            Text("财务审核", "Finance review"),
            Text(
                "财务部门审核合同的付款方式、结算条款和资金安排。",
                "Finance reviews the contract's payment terms, settlement clauses and funding arrangements.",
            ),
        ),
        Clause(
            "m001.7.1.1",
            Text("员工申请", "Employee application"),
            Text(
                "员工按公司费用报销制度填写费用报销申请表，并附上相关发票、凭证。",
                "The employee fills in an expense claim form in accordance with the company's expense rules and attaches the relevant invoices and supporting documents.",
            ),
        ),
        Clause(
            "m001.7.1.2",
            Text("部门负责人审核", "Department head review"),
            Text(
                "部门负责人审核报销申请的真实性、合理性，并签署审核意见。",
                "The department head checks that the claim is genuine and reasonable and signs a review opinion.",
            ),
        ),
        Clause(
            "m001.4.1.2.1",
            Text("严格按流程执行", "Follow the process strictly"),
            Text(
                "员工须严格按流程规定开展工作，不得擅自简化、跳过或更改流程环节。",
                "Employees must work strictly as the processes prescribe and must not simplify, skip or change process steps on their own authority.",
            ),
        ),
        Clause(
            "m001.7.1.6",
            Text("报销支付", "Reimbursement payment"),
            Text(
                "财务部门根据审批通过的报销申请支付报销款。",
                "Finance pays the reimbursement on the basis of the approved claim.",
            ),
        ),
        Clause(
            "m004.3.2.1.2",
            Text("部门负责人审核", "Department-head approval"),
            Text(
                "采购需求计划须经部门负责人审核后，方可提交业务集中管理部门。",
                "The purchase requirement plan must be reviewed by the department head before it is submitted to the central department.",
            ),
        ),
        Clause(
            "m000.4.1.1.1",
            Text("需求提出", "Raising the requirement"),
            Text(
                "各部门根据业务需要填写采购申请单，写明所需物资或服务的名称、规格、数量、预算等信息，提交采购部门。",
                "Each department fills in a purchase requisition according to its business needs, stating the name, specification, quantity, budget and other details of the goods or services required, and submits it to the purchasing department.",
            ),
        ),
        Clause(
            "m004.3.2.2.2",
            Text("合格供应商名录", "Qualified-supplier list"),
            Text("建立合格供应商名录。", "A list of qualified suppliers is established."),
        ),
        Clause(
            "m000.4.1.1.2",
            Text("供应商选择", "Supplier selection"),
            Text(
                "采购部门收到采购申请单后，对市场上的供应商进行调查和评估，选择合适的供应商；评估内容包括信誉、产品质量、价格、交货期、售后服务等。",
                "On receiving the requisition, the purchasing department surveys and evaluates suppliers on the market and selects a suitable one; the evaluation covers the supplier's reputation, product quality, price, delivery time, after-sales service, etc.",
            ),
        ),
        Clause(
            "m003.5.1.3",
            Text("预算执行监控与纠偏", "Monitoring budget deviations"),
            Text(
                "定期监控和分析预算执行情况，及时发现偏差并采取措施调整纠正。",
                "Budget execution is monitored and analysed regularly; deviations are detected promptly and corrected.",
            ),
        ),
        Clause(
            "m004.3.3.3.2",
            Text("转交集中管理部门处理", "Routing complaints to the central department"),
            Text(
                "客服人员将投诉转交业务集中管理部门，由其协调相关部门调查处理。",
                "Customer service passes the complaint to the central department, which coordinates the departments concerned to investigate and deal with it.",
            ),
        ),
        Clause(
            "m000.4.1.4.2",
            Text("客户投诉", "Customer complaints"),
            Text(
                "客户对产品或服务不满提出投诉时，客服人员认真倾听诉求、记录投诉内容，并及时将投诉转交相关部门。",
                "When a dissatisfied customer complains about a product or service, customer service staff listen carefully, record the complaint and promptly pass it to the departments concerned.",
            ),
        ),
    ]
}

# (rule, title, severity, clauses, record type, zh message, en message)
RULES = [
    (
        "CON-001",
        Text("合同签订前须经法务审核", "Legal review before signing"),
        "critical",
        ["m001.7.2.3", "m004.3.1.4.2"],
        "contract",
        "合同 {id}（{party}，{amount} 元）于 {day} 签订，签订前没有法务审核通过记录",
        "Contract {id} ({party}, CNY {amount}) was signed on {day} without a prior legal review",
    ),
    (
        "CON-002",
        Text("合同签订前须经财务审核", "Finance review before signing"),
        "major",
        ["m001.7.2.4"],
        "contract",
        "合同 {id}（{party}，{amount} 元）签订前没有财务审核通过记录",
        "Contract {id} ({party}, CNY {amount}) was signed without a prior finance review",
    ),
    (
        "EXP-001",
        Text("报销须附发票", "Invoice attached to the claim"),
        "minor",
        ["m001.7.1.1"],
        "expense",
        "报销单 {id}（{amount} 元）未附发票",
        "Expense claim {id} (CNY {amount}) has no invoice attached",
    ),
    (
        "EXP-002",
        Text("报销须经部门负责人审批", "Department-head approval of the claim"),
        "major",
        ["m001.7.1.2"],
        "expense",
        "报销单 {id}（{amount} 元）没有部门负责人审批记录",
        "Expense claim {id} (CNY {amount}) has no department-head approval",
    ),
    (
        "EXP-006",
        Text("审批完成前不得付款", "No payment before the last approval"),
        "critical",
        ["m001.7.1.6", "m001.4.1.2.1"],
        "expense",
        "报销单 {id}（{amount} 元）于 {day} 付款，早于最后一级审批",
        "Expense claim {id} (CNY {amount}) was paid on {day}, before its last approval",
    ),
    (
        "PUR-001",
        Text(
            "采购申请须经部门负责人审批后方可下单",
            "Requisition approved by its department head before ordering",
        ),
        "major",
        ["m004.3.2.1.2", "m000.4.1.1.1"],
        "purchase_order",
        "采购订单 {id}（{amount} 元）下单时采购申请尚未经部门负责人审批",
        "Purchase order {id} (CNY {amount}) was placed before its requisition was approved by the department head",
    ),
    (
        "PUR-002",
        Text("只能向下单日合格的供应商采购", "Supplier qualified on the order date"),
        "critical",
        ["m004.3.2.2.2", "m000.4.1.1.2"],
        "purchase_order",
        "采购订单 {id} 的供应商“{party}”在下单日 {day} 不在合格供应商名录中",
        "The supplier of purchase order {id}, “{party}”, was not on the qualified-supplier list on the order date {day}",
    ),
    (
        "FIN-001",
        Text("部门支出不得超出年度预算", "Department spending within its yearly budget"),
        "major",
        ["m003.5.1.3"],
        "budget",
        "预算 {id} 已支出 {amount} 元，超出年度预算",
        "Budget {id} has spent CNY {amount}, above the yearly budget",
    ),
    (
        "CS-001",
        Text("投诉须按时转交处理部门", "Complaint forwarded within the time limit"),
        "minor",
        ["m004.3.3.3.2", "m000.4.1.4.2"],
        "complaint",
        "投诉 {id} 于 {day} 受理，超过时限仍未转交处理部门",
        "Complaint {id} received on {day} was not forwarded within the time limit",
    ),
]

SURNAMES = [
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "赵",
    "黄",
    "周",
    "吴",
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "皇甫",
]
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "桂芳",
    "晓东",
    "龑",
    "喆",
    "昇",
    "堃",
    "燚",
]
PARTIES = [
    "上海宏达物资有限公司",
    "苏州恒信电子科技有限公司",
    "杭州顺丰包装材料厂",
    "Acme Industrial Supplies Ltd.",
    "宁波港城国际贸易有限公司",
]


def clause(cid: str) -> Clause:
    return _CLAUSES[cid]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randrange(5_000, 50_000_000)) / 100


def period_october() -> Period:
    return Period(date(2026, 10, 1), date(2026, 10, 31), "2026-10")


def generated_at() -> datetime:
    return datetime(2026, 11, 2, 9, 30, tzinfo=TZ)


def findings(n: int, seed: int = 7) -> list[FindingRow]:
    """`n` findings spread over the departments and rules, the first ones hand-picked edge cases."""
    rng = random.Random(seed)
    out: list[FindingRow] = []
    start = datetime(2026, 10, 1, 8, 0, tzinfo=TZ)
    for i in range(n):
        rule, _, severity, clauses, rtype, zh, en = RULES[rng.randrange(len(RULES))]
        dept = DEPARTMENTS[min(int(rng.expovariate(0.35)), len(DEPARTMENTS) - 1)]
        rid = f"{rtype[:3].upper()}-2026-{i + 1:06d}"
        amount = f"{_amount(rng):,.2f}"
        day = (start + timedelta(hours=rng.randrange(0, 30 * 24))).strftime("%Y-%m-%d")
        party = rng.choice(PARTIES)
        found = start + timedelta(minutes=rng.randrange(0, 30 * 24 * 60))
        out.append(
            FindingRow(
                rule=rule,
                record_type=rtype,
                record_id=rid,
                dept=dept,
                severity=severity,
                clauses=list(clauses),
                responsible=person(rng),
                message=Text(
                    zh.format(id=rid, amount=amount, day=day, party=party),
                    en.format(id=rid, amount=amount, day=day, party=party),
                ),
                link=f"https://zhidu.example.cn/records/{rtype}/{rid}",
                found_at=found,
            )
        )
    if n >= 3:
        # the edge cases the renderers must survive: formula-like text, markup, very long text
        out[0] = FindingRow(
            rule="EXP-001",
            record_type="expense",
            record_id='=HYPERLINK("http://evil.example","点我")',
            dept=DEPARTMENTS[0],
            severity="minor",
            clauses=["m001.7.1.1"],
            responsible="@欧阳娜娜",
            message=Text(
                "-报销单备注：<script>alert('注入')</script> 未附发票",
                "-Claim note: <script>alert('x')</script> no invoice",
            ),
            link="javascript:alert(1)",
            found_at=start,
        )
        long_zh = (
            "供应商“宁波港城国际贸易有限公司”"
            + "在下单日不在合格供应商名录中，且其资质证书已于上一季度过期，采购部未按规定重新评估，" * 4
            + "情节严重。"
        )
        long_en = (
            "The supplier “Ningbo Gangcheng International Trading Co., Ltd.” "
            + "was not on the qualified-supplier list on the order date and its certificate had expired in the previous quarter; "
            * 3
            + "a serious case."
        )
        out[1] = FindingRow(
            rule="PUR-002",
            record_type="purchase_order",
            record_id="PO-2026-000002",
            dept=DEPARTMENTS[1],
            severity="critical",
            clauses=["m004.3.2.2.2", "m000.4.1.1.2"],
            responsible="司马龑",
            message=Text(long_zh, long_en),
            link="/records/purchase_order/PO-2026-000002",
            found_at=start + timedelta(days=1),
        )
    return out


def violation_report(n_findings: int = 40, seed: int = 7) -> ViolationReport:
    rows = findings(n_findings, seed)
    by_dept: dict[str, dict[str, int]] = {}
    by_rule: dict[str, int] = {}
    cells: dict[tuple[str, str], int] = {}
    by_day = [0] * 31
    for f in rows:
        code = f.dept.code if f.dept else "-"
        d = by_dept.setdefault(code, {"critical": 0, "major": 0, "minor": 0})
        d[f.severity] += 1
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
        cells[(code, f.rule)] = cells.get((code, f.rule), 0) + 1
        if f.found_at is not None:
            by_day[min(30, (f.found_at.date() - date(2026, 10, 1)).days)] += 1
    depts = {d.code: d for d in DEPARTMENTS}
    dept_counts = sorted(
        (
            DepartmentCount(
                depts[c],
                sum(v.values()),
                v["critical"],
                v["major"],
                v["minor"],
                records=sum(v.values()) * 37 + 500,
            )
            for c, v in by_dept.items()
            if c in depts
        ),
        key=lambda d: -d.findings,
    )
    rule_meta = {r[0]: r for r in RULES}
    rule_counts = sorted(
        (
            RuleCount(r, rule_meta[r][1], rule_meta[r][2], [clause(c) for c in rule_meta[r][3]], n)
            for r, n in by_rule.items()
        ),
        key=lambda r: -r.findings,
    )
    sev = [SeverityCount(s, sum(v[s] for v in by_dept.values())) for s in SEVERITIES]
    rng = random.Random(seed + 1)
    notices = notice_summaries(rng, 12)
    penalties = penalty_items(rng, 15)
    weeks = [TrendPoint(f"10-{d + 1:02d}", by_day[d]) for d in range(31)]
    return ViolationReport(
        company=COMPANY,
        period=period_october(),
        scope=ReportScope(departments=[], rules=[], severities=[]),
        generated_at=generated_at(),
        totals=ViolationTotals(
            records_checked=sum(d.records or 0 for d in dept_counts),
            findings=len(rows),
            departments=len(dept_counts),
            rules=len(rule_counts),
            open_notices=sum(1 for n in notices if n.status == "open"),
            overdue_notices=sum(1 for n in notices if n.status == "overdue"),
            fines=sum((p.amount or Decimal(0) for p in penalties), Decimal(0)),
            performance_points=sum(p.points or 0 for p in penalties),
        ),
        by_department=dept_counts,
        by_rule=rule_counts,
        by_severity=sev,
        by_department_rule=[
            DeptRuleCount(depts[c], r, n) for (c, r), n in sorted(cells.items()) if c in depts
        ],
        trend=weeks,
        notices=notices,
        penalties=penalties,
        findings=rows,
    )


def notice_summaries(rng: random.Random, n: int, dept: Department | None = None) -> list[NoticeSummary]:
    out = []
    for i in range(n):
        issued = date(2026, 10, 1) + timedelta(days=rng.randrange(0, 30))
        status = rng.choice(["open", "overdue", "closed"])
        closed = issued + timedelta(days=rng.randrange(2, 20)) if status == "closed" else None
        out.append(
            NoticeSummary(
                f"ZG-2026-10-{i + 1:04d}",
                dept or rng.choice(DEPARTMENTS),
                issued,
                issued + timedelta(days=15),
                status,
                rng.randrange(1, 9),
                closed,
            )
        )
    return out


def penalty_items(rng: random.Random, n: int, dept: Department | None = None) -> list[PenaltyItem]:
    out = []
    for i in range(n):
        kind = ("warning", "performance_points", "fine", "demotion")[i % 4]
        out.append(
            PenaltyItem(
                person=person(rng),
                dept=dept or rng.choice(DEPARTMENTS),
                rule=RULES[rng.randrange(len(RULES))][0],
                kind=kind,
                decided_on=date(2026, 10, 1) + timedelta(days=rng.randrange(0, 30)),
                occurrence=1 + i % 3,
                amount=Decimal(rng.choice([200, 1000, 2000])) if kind == "fine" else None,
                points=rng.choice([2, 5]) if kind == "performance_points" else None,
                notice=f"ZG-2026-10-{rng.randrange(1, 13):04d}",
            )
        )
    return out


def scorecard(seed: int = 7, dept: Department | None = None) -> DepartmentScorecard:
    rng = random.Random(seed)
    dept = dept or DEPARTMENTS[1]
    labels = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    scores = [
        Decimal("78.5"),
        Decimal("81.0"),
        Decimal("79.2"),
        Decimal("84.6"),
        Decimal("88.1"),
        Decimal("86.4"),
    ]
    rule_meta = RULES
    by_rule = [
        RuleCount(r[0], r[1], r[2], [clause(c) for c in r[3]], rng.randrange(1, 40)) for r in rule_meta[:6]
    ]
    by_rule.sort(key=lambda r: -r.findings)
    self_rows = [
        SelfCheckRow(r.rule, r.title, d := rng.randrange(0, r.findings + 3), r.findings, min(d, r.findings))
        for r in by_rule
    ]
    return DepartmentScorecard(
        company=COMPANY,
        dept=dept,
        period=period_october(),
        generated_at=generated_at(),
        score=scores[-1],
        rank=3,
        ranked_of=len(DEPARTMENTS),
        trend=[ScorePoint(label, s, rng.randrange(5, 60)) for label, s in zip(labels, scores, strict=True)],
        findings_by_rule=by_rule,
        notices=notice_summaries(rng, 8, dept),
        penalties=penalty_items(rng, 6, dept),
        self_check=SelfCheck(
            declared=sum(r.declared for r in self_rows),
            found=sum(r.found for r in self_rows),
            matched=sum(r.matched for r in self_rows),
            by_rule=self_rows,
        ),
    )


def notice(n_findings: int = 4, seed: int = 7) -> RectificationNotice:
    rng = random.Random(seed)
    rows = findings(max(n_findings, 3), seed)[:n_findings]
    rule_meta = {r[0]: r for r in RULES}
    return RectificationNotice(
        number="ZG-2026-10-0007",
        company=COMPANY,
        dept=DEPARTMENTS[1],
        issued_on=date(2026, 10, 21),
        deadline=date(2026, 11, 5),
        findings=[
            NoticeFinding(
                rule=f.rule,
                rule_title=rule_meta[f.rule][1],
                record_type=f.record_type,
                record_id=f.record_id,
                severity=f.severity,
                clauses=[clause(c) for c in f.clauses],
                message=f.message,
                responsible=f.responsible,
            )
            for f in rows
        ],
        responsible=[
            ResponsiblePerson("欧阳娜娜", Text("经办人", "Handler")),
            ResponsiblePerson("司马龑", Text("部门负责人", "Department head")),
            ResponsiblePerson(person(rng), Text("采购专员", "Procurement officer")),
        ],
        to_submit=[
            Text(
                "整改报告（说明问题原因、整改措施及完成情况），加盖部门公章",
                "A rectification report (causes, measures taken and their completion), stamped by the department",
            ),
            Text(
                "补办的审批记录或合同备案凭证的复印件",
                "Copies of the approvals obtained afterwards or of the contract filing receipts",
            ),
            Text("相关责任人的书面说明", "Written statements by the persons responsible"),
        ],
        signature=SignatureBlock(
            issuing_body=Text("流程监督小组", "Process Supervision Group"),
            signer="诸葛晓东",
            recipient="司马龑",
        ),
    )


def digest(seed: int = 7) -> Digest:
    rng = random.Random(seed)
    scope = DEPARTMENTS[:6]
    changes = [
        ScoreChange(
            d,
            None if i == 5 else Decimal(rng.randrange(700, 950)) / 10,
            Decimal(rng.randrange(700, 990)) / 10,
        )
        for i, d in enumerate(scope)
    ]
    notices = notice_summaries(rng, 7)
    return Digest(
        company=COMPANY,
        manager="皇甫桂芳",
        scope=scope,
        cadence="weekly",
        period=Period(date(2026, 10, 26), date(2026, 11, 1), "2026-W44"),
        generated_at=generated_at(),
        score_changes=changes,
        new_notices=[n for n in notices if n.status != "overdue"],
        overdue_notices=[n for n in notices if n.status == "overdue"],
        top_rules=sorted(
            (RuleCount(r[0], r[1], r[2], [clause(c) for c in r[3]], rng.randrange(3, 80)) for r in RULES[:5]),
            key=lambda r: -r.findings,
        ),
        penalties=penalty_items(rng, 5),
        link="https://zhidu.example.cn/reports/violations?period=2026-W44",
    )


def empty_violation_report() -> ViolationReport:
    return ViolationReport(
        company=COMPANY,
        period=period_october(),
        scope=ReportScope(departments=[DEPARTMENTS[9]], rules=["CON-001"], severities=["critical"]),
        generated_at=generated_at(),
        totals=ViolationTotals(0, 0, 0, 0, 0, 0, Decimal(0), 0),
        by_department=[],
        by_rule=[],
        by_severity=[],
        by_department_rule=[],
        trend=[],
        notices=[],
        penalties=[],
        findings=[],
    )


def empty_scorecard() -> DepartmentScorecard:
    return DepartmentScorecard(
        company=COMPANY,
        dept=DEPARTMENTS[9],
        period=period_october(),
        generated_at=generated_at(),
        score=Decimal(100),
        rank=1,
        ranked_of=1,
        trend=[],
        findings_by_rule=[],
        notices=[],
        penalties=[],
        self_check=SelfCheck(0, 0, 0),
    )


def empty_notice() -> RectificationNotice:
    base = notice()
    return RectificationNotice(
        number=base.number,
        company=base.company,
        dept=base.dept,
        issued_on=base.issued_on,
        deadline=base.deadline,
        findings=[],
        responsible=[],
        to_submit=[],
        signature=base.signature,
    )


def empty_digest() -> Digest:
    return Digest(
        company=COMPANY,
        manager="Ann Lee",
        scope=[],
        cadence="monthly",
        period=period_october(),
        generated_at=generated_at(),
        score_changes=[],
        new_notices=[],
        overdue_notices=[],
        top_rules=[],
        penalties=[],
        link=None,
    )
