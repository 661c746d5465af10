"""The organisation of the synthetic company: departments, people, suppliers' and customers' names.

People are held in one list of unique Chinese names; every other table refers to a person by index.
Role holders (department heads, division leaders, reviewers, the general manager) are never ordinary
staff, so no clean record has an approver who is also its applicant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.synthetic.clock import MISSING, Arr

# code, Chinese name, English name, staff weight
DEPARTMENTS: tuple[tuple[str, str, str, int], ...] = (
    ("FIN", "财务部", "Finance", 5),
    ("PUR", "采购部", "Procurement", 5),
    ("HR", "人力资源部", "Human Resources", 4),
    ("SAL", "销售部", "Sales", 20),
    ("CS", "客户服务部", "Customer Service", 12),
    ("WH", "仓储物流部", "Warehousing and Logistics", 12),
    ("RD", "技术研发部", "Research and Development", 18),
    ("MKT", "市场营销部", "Marketing", 8),
    ("ADM", "行政部", "Administration", 5),
    ("LEG", "法务部", "Legal", 2),
    ("QC", "质量检验部", "Quality Control", 6),
    ("CEN", "集中管理部", "Central Management", 3),
)
DEPT_CODES: tuple[str, ...] = tuple(d[0] for d in DEPARTMENTS)
DEPT_INDEX: dict[str, int] = {code: i for i, code in enumerate(DEPT_CODES)}
N_DEPTS = len(DEPARTMENTS)

# Division leaders (分管领导): each oversees a group of departments.
DIVISIONS: tuple[tuple[str, ...], ...] = (
    ("FIN", "PUR", "CEN"),
    ("SAL", "CS", "MKT"),
    ("HR", "ADM", "LEG"),
    ("WH", "QC", "RD"),
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂华玉萍红鹏飞辉宇浩凯晨欣怡婷雪琳颖晶博文斌宁建国志海波峰林鑫"
    "帅龙阳蕾倩璐瑶佳思子梓涵轩然睿诗雨梦嘉俊健毅晓春秋冬梅兰凤慧丹莉宏振昊天逸泽清佩悦琪妍薇楠航铭哲亮成立荣新"
)

CITIES = (
    "上海",
    "北京",
    "广州",
    "深圳",
    "杭州",
    "苏州",
    "南京",
    "天津",
    "重庆",
    "成都",
    "武汉",
    "西安",
    "长沙",
    "青岛",
    "宁波",
    "厦门",
    "合肥",
    "郑州",
    "济南",
    "无锡",
    "东莞",
    "佛山",
    "福州",
    "大连",
    "沈阳",
    "昆明",
    "南昌",
    "石家庄",
    "常州",
    "嘉兴",
)
_BRANDS_TEXT = (
    "恒达 华信 鼎盛 瑞丰 金诚 宏远 东方 新源 博雅 中科 天成 盛世 永安 润泽 启航 嘉禾 佳美 德信 凯越 鸿运 "
    "长城 海纳 正泰 联创 汇通 众诚 华润 宝丰 锦程 鑫茂 安泰 同舟 明德 致远 卓越 祥和 荣昌 兴业 万达 银河 "
    "金桥 远景 晨光 沃土 泰和 聚源 弘毅 立信 通达 睿智 蓝海 和信 福瑞 开元 云帆 星辰 伟业 百川 华峰 中联 "
    "创新 精工 科达 恒信 新华 国泰 建业 天宇 亚太 信达 "
)
BRANDS = tuple(_BRANDS_TEXT.split())
INDUSTRIES = (
    "电子科技",
    "信息技术",
    "办公用品",
    "物流",
    "包装材料",
    "机械设备",
    "仪器仪表",
    "贸易",
    "建材",
    "网络科技",
    "印刷",
    "实业",
    "新材料",
    "环保科技",
    "商贸",
    "化工",
    "智能装备",
    "软件",
    "供应链管理",
    "文化传媒",
)

WAREHOUSE_NAMES = (
    "上海嘉定中心仓",
    "广州白云仓",
    "北京顺义仓",
    "成都双流仓",
    "武汉东西湖仓",
    "沈阳于洪仓",
    "西安国际港务仓",
    "苏州工业园区仓",
)


def _person_name(index: int) -> str:
    """Decode a combination index into surname + one or two given characters."""
    n_given = len(GIVEN)
    per_surname = n_given + n_given * n_given
    surname = SURNAMES[index // per_surname]
    rest = index % per_surname
    if rest < n_given:
        return surname + GIVEN[rest]
    rest -= n_given
    return surname + GIVEN[rest // n_given] + GIVEN[rest % n_given]


def unique_people(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct Chinese names; mostly two given characters, as in life."""
    n_given = len(GIVEN)
    per_surname = n_given + n_given * n_given
    total = len(SURNAMES) * per_surname
    if n > total:
        raise ValueError(f"cannot make {n} distinct names")
    # Weight surnames by their rank (common surnames first) by drawing more candidates than needed.
    picks = rng.choice(total, size=min(total, n * 2 + 16), replace=False)
    surname_rank = picks // per_surname
    keep = rng.random(len(picks)) < 1.2 - surname_rank / len(SURNAMES)
    chosen = np.concatenate([picks[keep], picks[~keep]])[:n]
    return [_person_name(int(i)) for i in chosen]


def unique_companies(rng: np.random.Generator, n: int) -> list[str]:
    total = len(CITIES) * len(BRANDS) * len(INDUSTRIES)
    if n > total:
        raise ValueError(f"cannot make {n} distinct company names")
    picks = rng.choice(total, size=n, replace=False)
    out = []
    for p in picks.tolist():
        city = CITIES[p // (len(BRANDS) * len(INDUSTRIES))]
        brand = BRANDS[(p // len(INDUSTRIES)) % len(BRANDS)]
        industry = INDUSTRIES[p % len(INDUSTRIES)]
        suffix = "股份有限公司" if p % 7 == 0 else "有限公司"
        out.append(f"{city}{brand}{industry}{suffix}")
    return out


@dataclass
class Org:
    """People and roles. Every person is an index into `names`.

    Some ordinary staff joined during the period (the hires); they only appear on records from their
    first day on. `random_staff(..., when=...)` draws someone employed at that instant.
    """

    names: list[str]
    head: Arr  # per department: person index of the department head
    division_leader: Arr  # per department: person index of the division leader
    finance_reviewer: int
    legal_reviewer: int
    general_manager: int
    central_reviewer: int
    staff: Arr  # person indices of ordinary staff, grouped by department
    staff_dept: Arr  # department of each staff member (same order as `staff`)
    staff_start: Arr  # per department: first position in `staff`
    staff_count: Arr  # per department: number of staff
    joined: Arr  # per staff position: first day (epoch seconds), MISSING if employed before the period
    hire_pos: Arr  # staff positions of the hires, in order of hiring
    veterans: Arr  # person indices of staff employed before the period, grouped by department
    veteran_start: Arr
    veteran_count: Arr

    def random_staff(self, rng: np.random.Generator, dept: Arr, when: Arr | None = None) -> Arr:
        """A random ordinary staff member of each given department (employed at `when`, if given)."""
        u = rng.random(len(dept))
        pos = self.staff_start[dept] + (u * self.staff_count[dept]).astype(np.int64)
        out: Arr = self.staff[pos]
        if when is not None:
            joined = self.joined[pos]
            late = (joined != MISSING) & (joined > when)
            vpos = self.veteran_start[dept] + (u * self.veteran_count[dept]).astype(np.int64)
            out = np.where(late, self.veterans[vpos], out)
        return out

    def staff_of(self, rng: np.random.Generator, code: str, n: int, when: Arr | None = None) -> Arr:
        return self.random_staff(rng, np.full(n, DEPT_INDEX[code], dtype=np.int64), when)


def build_org(rng: np.random.Generator, n_staff: int, n_hires: int, hire_times: Arr) -> Org:
    """People, roles, and which staff joined during the period (at the given sorted `hire_times`)."""
    weights = np.array([d[3] for d in DEPARTMENTS], dtype=np.float64)
    counts = np.maximum(3, np.floor(weights / weights.sum() * n_staff)).astype(np.int64)
    n_roles = N_DEPTS + len(DIVISIONS) + 4
    names = unique_people(rng, n_roles + int(counts.sum()))
    head = np.arange(N_DEPTS, dtype=np.int64)
    division_leader = np.zeros(N_DEPTS, dtype=np.int64)
    for k, group in enumerate(DIVISIONS):
        for code in group:
            division_leader[DEPT_INDEX[code]] = N_DEPTS + k
    base = N_DEPTS + len(DIVISIONS)
    staff = np.arange(n_roles, len(names), dtype=np.int64)
    staff_dept = np.repeat(np.arange(N_DEPTS, dtype=np.int64), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    # hires: never the first member of a department, so every department keeps a veteran
    hireable = np.ones(len(staff), dtype=bool)
    hireable[starts] = False
    hire_pos = rng.choice(np.flatnonzero(hireable), size=min(n_hires, int(hireable.sum())), replace=False)
    joined = np.full(len(staff), MISSING, dtype=np.int64)
    joined[hire_pos] = hire_times[: len(hire_pos)]
    vet = np.flatnonzero(joined == MISSING)
    vcounts = np.bincount(staff_dept[vet], minlength=N_DEPTS).astype(np.int64)
    return Org(
        names=names,
        head=head,
        division_leader=division_leader,
        finance_reviewer=base,
        legal_reviewer=base + 1,
        general_manager=base + 2,
        central_reviewer=base + 3,
        staff=staff,
        staff_dept=staff_dept,
        staff_start=starts,
        staff_count=counts,
        joined=joined,
        hire_pos=hire_pos,
        veterans=staff[vet],
        veteran_start=np.concatenate([[0], np.cumsum(vcounts)[:-1]]).astype(np.int64),
        veteran_count=vcounts,
    )


def dept_weights(spec: Mapping[str, float]) -> Any:
    """A probability vector over DEPT_CODES from a partial mapping (unlisted departments: 0)."""
    w = np.array([spec.get(code, 0.0) for code in DEPT_CODES], dtype=np.float64)
    return w / w.sum()


# Purchasing catalogue: item, specification, unit price (yuan), quantity range.
CATALOGUE: tuple[tuple[str, str, float, int, int], ...] = (
    ("笔记本电脑", "ThinkPad T14 i7/16G/512G", 7800.0, 1, 20),
    ("台式电脑", "联想启天M450 i5/16G/1T", 5200.0, 1, 30),
    ("显示器", "戴尔P2422H 23.8英寸", 1300.0, 2, 40),
    ("服务器", "华为FusionServer 2288H V6", 68000.0, 1, 10),
    ("交换机", "华为S5735-L48T4X", 9800.0, 1, 8),
    ("激光打印机", "惠普M405dn", 2600.0, 1, 6),
    ("A4复印纸", "70g 500张/包", 23.0, 50, 800),
    ("办公桌椅", "1.4米工位含椅", 1600.0, 2, 40),
    ("重型货架", "四层 2000×600×2000mm", 1200.0, 5, 80),
    ("电动叉车", "合力CPD20 2吨", 98000.0, 1, 3),
    ("塑料托盘", "川字型 1200×1000mm", 180.0, 20, 500),
    ("包装纸箱", "五层瓦楞 60×40×40cm", 6.5, 500, 10000),
    ("数显千分尺", "三丰 0-25mm", 1900.0, 1, 10),
    ("光谱分析仪", "手持式合金分析仪", 260000.0, 1, 3),
    ("软件许可", "ERP年度订阅(用户)", 4800.0, 5, 100),
    ("研发测试板", "定制FPGA开发板", 12000.0, 1, 20),
    ("劳保用品", "防护手套及安全鞋套装", 85.0, 20, 400),
    ("宣传物料", "展架及宣传册印刷", 15000.0, 1, 6),
    ("商务车租赁", "七座商务车月租", 9000.0, 1, 12),
    ("空调", "3匹立式柜机", 8500.0, 1, 10),
    ("安防监控", "摄像头及NVR套装", 32000.0, 1, 5),
    ("实验耗材", "试剂及玻璃器皿", 3500.0, 1, 15),
    ("自动贴标机", "全自动不干胶贴标机", 180000.0, 1, 3),
    ("数据中心机柜", "42U标准机柜含PDU", 15000.0, 2, 20),
)

CLAIM_CATEGORIES = ("travel", "office", "entertainment", "training", "transport", "other")

DISCREPANCY_NOTES = (
    "盘亏：领用未及时登记",
    "盘盈：供应商多发未入账",
    "损耗：包装破损报废",
    "盘亏：调拨在途未入账",
    "盘盈：退货已入库未过账",
    "计量误差：散装物料称重差异",
)
