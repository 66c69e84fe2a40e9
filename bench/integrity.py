"""Integrity benchmark: precision and recall of the detectors on a realistic tenant with
injected, labelled attacks, the NPS error with and without exclusion, and screen throughput.

Generates a tenant (default 200,000 honest responses over 90 days, 40 locations, 300
agents, 5 % anonymous public submissions, English and Chinese comments) and injects:

- solicitation: staff at one location collecting 9s and 10s face to face (in person);
- bot: a burst of 10s from a few IPs through the publishable key on one location's page;
- ring: near-identical texts by different customers (an English and a Chinese ring);
- repeat: customers rating the same touchpoint again and again within hours;
- incentive: comments that trade a reward for the rating ("五星好评返现", "5 stars for …").

Then it runs the real code paths on a real database: the worker's screen over every
response in ingest order (timed: responses screened per second), and the periodic pattern
detectors once per simulated day. It reports, per attack type, recall (share of its
responses excluded) and precision (share of the responses its detectors excluded that are
attacks of that type), the false-positive rate on honest responses, and the NPS of the
honest data against the NPS of everything and of what the metrics count.

    make bench-integrity                                     # embedded PostgreSQL
    make bench-integrity ARGS="--database-url postgresql://postgres@127.0.0.1:5432/postgres"
    make bench-integrity ARGS="--responses 50000 --seed 7 --bot 800"

Prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import integrity_api
from ingest import bench_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from feedback_api.migrate import upgrade  # noqa: E402

END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 90
START = END - timedelta(days=DAYS)
LOCATIONS = 40
AGENTS = 300
TOUCHPOINTS = ["checkout", "delivery", "support", "store_visit", "returns", "repair"]
# channel, share of honest responses
CHANNELS = [("email", 0.38), ("app", 0.22), ("web", 0.15), ("sms", 0.1), ("in_person", 0.05),
            ("crm", 0.1)]  # fmt: skip
DETECTORS = {
    "solicitation": {"solicitation"},
    "bot": {"burst", "spike"},
    "ring": {"near_duplicate"},
    "repeat": {"duplicate"},
    "incentive": {"incentive"},
}

EN_OPEN = ["The", "Our", "My", "This time the", "Honestly the", "Today the", "Last week the",
           "Once again the", "As usual the", "Surprisingly the"]  # fmt: skip
EN_SUBJECT = ["courier", "technician", "cashier", "support agent", "store manager", "driver",
              "installer", "team at the counter", "person on the phone", "delivery crew",
              "barista", "shop assistant"]  # fmt: skip
EN_VERB = ["was", "seemed", "turned out to be", "was really", "was a bit", "was quite",
           "was incredibly", "was not very"]  # fmt: skip
EN_ADJ = ["helpful", "slow", "friendly", "rushed", "polite", "careless", "patient", "late",
          "knowledgeable", "confused", "cheerful", "professional", "rude", "quick"]  # fmt: skip
EN_TAIL = ["and the parcel arrived on Tuesday", "but the invoice was wrong again",
           "and I got my refund within a day", "though parking near the store is a nightmare",
           "and the app kept logging me out", "but nobody called me back as promised",
           "and the price matched the website", "while the queue moved quite fast",
           "even though the shelves were half empty", "and the screws were missing from the box",
           "so I will probably order again", "yet the packaging was damaged",
           "and they explained the warranty clearly", "but I waited forty minutes"]  # fmt: skip
ZH_SUBJECT = ["快递员", "安装师傅", "收银员", "客服", "店长", "司机", "店员", "维修师傅"]
ZH_ADJ = ["很热情", "有点慢", "态度不好", "非常专业", "很耐心", "比较敷衍", "很准时", "迟到了"]
ZH_TAIL = ["包裹周二就到了", "发票又开错了", "退款一天就到账", "停车很不方便", "应用总是闪退",
           "说好回电话却没有", "价格和官网一样", "排队很快", "货架一半是空的", "少了几颗螺丝",
           "下次还会再买", "包装有破损", "保修讲得很清楚", "等了四十分钟"]  # fmt: skip
# Free words people add: long honest comments are rarely alike beyond a few phrases.
WORDS = [
    "really",
    "also",
    "again",
    "never",
    "always",
    "maybe",
    "usually",
    "still",
    "quite",
    "rather",
    "weekend",
    "morning",
    "evening",
    "price",
    "colour",
    "size",
    "box",
    "label",
    "screen",
    "cable",
    "manual",
    "receipt",
    "voucher",
    "branch",
    "counter",
    "floor",
    "window",
    "door",
    "bag",
    "phone",
    "email",
    "message",
    "call",
    "lunch",
    "dinner",
    "coffee",
    "tea",
    "sofa",
    "chair",
    "table",
    "lamp",
    "bike",
    "shoes",
    "jacket",
    "printer",
    "laptop",
    "fridge",
    "oven",
    "washer",
    "kettle",
    "battery",
    "charger",
    "remote",
    "sister",
    "husband",
    "wife",
    "son",
    "daughter",
    "colleague",
    "neighbour",
    "friend",
    "mother",
    "father",
]
ZH_WORDS = ["周末", "早上", "晚上", "价格", "颜色", "尺寸", "盒子", "标签", "屏幕", "说明书",
            "收据", "门店", "柜台", "电话", "短信", "午饭", "咖啡", "沙发", "椅子", "台灯",
            "鞋子", "外套", "打印机", "电脑", "冰箱", "烤箱", "电池", "充电器", "同事", "邻居",
            "朋友", "妈妈", "爸爸", "老婆", "儿子", "女儿"]  # fmt: skip
SHORT = ["Great!", "ok", "Good service", "很好", "不错", "Thanks", "满意", "Fine", "Bad", "差评"]
RING_EN = (
    "Absolutely wonderful experience, the staff went above and beyond and I recommend {} "
    "to everyone"
)
RING_ZH = "非常棒的体验，工作人员热情周到，强烈推荐{}给所有朋友，下次一定再来"
INCENTIVE = [
    "They offered a free coffee for 5 stars so here you go",
    "Got a coupon for giving a five star review, nice",
    "店员说五星好评返现，所以给了满分",
    "好评送礼品，服务还行",
    "Cashier said 10 stars = free dessert next time",
    "晒图好评返现5元",
]


@dataclass
class Row:
    id: uuid.UUID
    kind: str
    score: int
    scale_max: int
    channel: str
    touchpoint: str
    customer: uuid.UUID | None
    agent: str
    location: str
    at: datetime
    comment: str | None = None
    ip: str | None = None
    ua: str | None = None
    public: bool = False
    label: str = "honest"


@dataclass
class Tenant:
    rows: list[Row] = field(default_factory=list)
    customers: list[uuid.UUID] = field(default_factory=list)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _comment(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.55:
        return None
    if roll < 0.7:
        return rng.choice(SHORT)
    if roll < 0.88:
        # people mention specifics (orders, times, products), so long texts rarely repeat
        return (
            f"{rng.choice(EN_OPEN)} {rng.choice(EN_SUBJECT)} {rng.choice(EN_VERB)} "
            f"{rng.choice(EN_ADJ)} {rng.choice(EN_TAIL)} (order {rng.randint(10000, 99999)}, "
            f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d}), {rng.choice(EN_TAIL)}; "
            f"{' '.join(rng.sample(WORDS, 4))}."
        )
    return (
        f"{rng.choice(ZH_SUBJECT)}{rng.choice(ZH_ADJ)}，{rng.choice(ZH_TAIL)}，订单"
        f"{rng.randint(10000, 99999)}，{rng.randint(1, 12)}点{rng.randint(0, 59)}分，"
        f"{rng.choice(ZH_TAIL)}，{''.join(rng.sample(ZH_WORDS, 3))}。"
    )


def _nps_score(rng: random.Random, promoter: float) -> int:
    roll = rng.random()
    if roll < promoter:
        return rng.choice((9, 10, 10))
    if roll < promoter + 0.3:
        return rng.choice((7, 8))
    return rng.randint(0, 6)


def generate(args: argparse.Namespace) -> Tenant:
    rng = random.Random(args.seed)
    tenant = Tenant()
    agents = [(f"agent-{a:03d}", f"loc-{a % LOCATIONS:02d}") for a in range(AGENTS)]
    quality = {f"loc-{n:02d}": rng.uniform(0.38, 0.52) for n in range(LOCATIONS)}
    customers = [uuid.uuid4() for _ in range(args.responses // 2)]
    tenant.customers = list(customers)
    last: dict[tuple[uuid.UUID, str], list[datetime]] = defaultdict(list)
    names, weights = zip(*CHANNELS, strict=True)
    for _ in range(args.responses):
        agent, location = rng.choice(agents)
        at = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        channel = rng.choices(names, weights)[0]
        anonymous = rng.random() < 0.05
        touchpoint = rng.choice(TOUCHPOINTS)
        customer = None
        if not anonymous:
            # an honest customer does not rate one touchpoint twice within two days
            while True:
                customer = rng.choice(customers)
                times = last[(customer, touchpoint)]
                if all(abs(at - t) > timedelta(days=2) for t in times):
                    times.append(at)
                    break
        if anonymous:
            channel = rng.choice(("web", "app"))
        kind = "nps" if rng.random() < 0.8 else "csat"
        score = (
            _nps_score(rng, quality[location])
            if kind == "nps"
            else rng.choice((1, 2, 3, 4, 4, 5, 5, 5))
        )
        device = f"{rng.getrandbits(64)}"
        tenant.rows.append(
            Row(
                uuid.uuid4(),
                kind,
                score,
                10 if kind == "nps" else 5,
                channel,
                touchpoint,
                customer,
                agent,
                location,
                at,
                _comment(rng),
                ip=_hash(f"ip{device}") if anonymous else None,
                ua=_hash(f"ua{rng.randint(0, 40)}") if anonymous else None,
                public=anonymous,
            )  # fmt: skip
        )

    # solicitation: staff at one location collect 9s and 10s in person, all period long
    sol_agents = [a for a, loc in agents if loc == "loc-07"]
    for _ in range(args.solicited):
        at = START + timedelta(seconds=rng.uniform(0, DAYS * 86400))
        tenant.rows.append(
            Row(
                uuid.uuid4(),
                "nps",
                rng.choice((9, 10, 10, 10)),
                10,
                "in_person",
                rng.choice(TOUCHPOINTS),
                None,
                rng.choice(sol_agents),
                "loc-07",
                at,
                label="solicitation",
            )  # fmt: skip
        )
    # bot: a burst through the publishable key from a few addresses, one afternoon
    burst_at = START + timedelta(days=60, hours=14)
    bot_agents = [a for a, loc in agents if loc == "loc-12"]
    for n in range(args.bot):
        tenant.rows.append(
            Row(
                uuid.uuid4(),
                "nps",
                10,
                10,
                "web",
                "store_visit",
                None,
                rng.choice(bot_agents),
                "loc-12",
                burst_at + timedelta(seconds=rng.uniform(0, 2400)),
                ip=_hash(f"bot-ip-{n % 4}"),
                ua=_hash(f"bot-ua-{n % 2}"),
                public=True,
                label="bot",
            )  # fmt: skip
        )
    # rings: near-identical praise from different (new) customers over five days
    ring_at = START + timedelta(days=40)
    for n in range(args.ring):
        customer = uuid.uuid4()
        tenant.customers.append(customer)
        template = RING_EN if n % 2 else RING_ZH
        brand = (
            rng.choice(("this shop", "them", "this store"))
            if n % 2
            else rng.choice(("这家店", "他们"))
        )
        text = template.format(brand) + rng.choice(("", "!", "!!", " :)", "。"))
        agent, location = rng.choice(agents)
        tenant.rows.append(
            Row(
                uuid.uuid4(),
                "nps",
                10,
                10,
                "web",
                "checkout",
                customer,
                agent,
                location,
                ring_at + timedelta(seconds=rng.uniform(0, 5 * 86400)),
                text,
                label="ring",
            )  # fmt: skip
        )
    # repeat raters: the first rating is theirs, the repeats are the attack
    for _ in range(args.repeaters):
        customer = uuid.uuid4()
        tenant.customers.append(customer)
        at = START + timedelta(seconds=rng.uniform(0, (DAYS - 1) * 86400))
        score = rng.choice((0, 10))
        agent, location = rng.choice(agents)
        for k in range(6):
            tenant.rows.append(
                Row(
                    uuid.uuid4(),
                    "nps",
                    score,
                    10,
                    "app",
                    "delivery",
                    customer,
                    agent,
                    location,
                    at + timedelta(minutes=20 * k),
                    label="honest" if k == 0 else "repeat",
                )  # fmt: skip
            )
    # incentive campaign: bought ratings that say so
    for _ in range(args.incentive):
        agent, location = rng.choice([(a, loc) for a, loc in agents if loc == "loc-20"])
        tenant.rows.append(
            Row(
                uuid.uuid4(),
                "nps",
                10,
                10,
                rng.choice(("app", "web")),
                "checkout",
                None,
                agent,
                location,
                START + timedelta(seconds=rng.uniform(0, DAYS * 86400)),
                rng.choice(INCENTIVE),
                label="incentive",
            )  # fmt: skip
        )
    return tenant


async def load(dsn: str, tenant_id: uuid.UUID, key_id: uuid.UUID, data: Tenant) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO tenants (id, name, slug, timezone) VALUES ($1, 'Bench', 'bench', 'UTC')",
            tenant_id,
        )
        await conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, kind, prefix, key_hash) "
            "VALUES ($1, $2, 'app', 'publishable', 'fbk_pk_bench', $3)",
            key_id,
            tenant_id,
            _hash(str(key_id)),
        )
        await conn.copy_records_to_table(
            "customers",
            columns=["tenant_id", "id", "external_ref"],
            records=[(tenant_id, c, f"c-{n}") for n, c in enumerate(data.customers)],
        )
        started = time.perf_counter()
        columns = ["tenant_id", "id", "kind", "score", "scale_min", "scale_max", "comment",
                   "channel", "touchpoint", "customer_id", "agent_ref", "location_ref",
                   "request_hash", "api_key_id", "ip_hash", "ua_hash", "occurred_at",
                   "received_at", "updated_at"]  # fmt: skip
        records = [
            (tenant_id, r.id, r.kind, r.score, 0 if r.kind == "nps" else 1, r.scale_max,
             r.comment, r.channel, r.touchpoint, r.customer, r.agent, r.location, "bench",
             key_id if r.public else None, r.ip, r.ua, r.at, r.at, r.at)
            for r in sorted(data.rows, key=lambda r: r.at)
        ]  # fmt: skip
        for i in range(0, len(records), 100_000):
            await conn.copy_records_to_table(
                "responses", columns=columns, records=records[i : i + 100_000]
            )
        await conn.execute("VACUUM ANALYZE responses")
        return time.perf_counter() - started
    finally:
        await conn.close()


async def detect(db_url: str, tenant_id: uuid.UUID, total: int) -> dict[str, float]:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

    from feedback_api.integrity.service import integrity

    engine = create_async_engine(db_url)
    maker = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    timings: dict[str, float] = {}
    try:
        started = time.perf_counter()
        done = 0
        while True:
            async with maker() as session, session.begin():
                n = await integrity.screen(session, tenant_id=tenant_id)
            if n == 0:
                break
            done += n
            if done % 20_000 < n:
                rate = done / (time.perf_counter() - started)
                print(f"  screened {done:,}/{total:,} ({rate:,.0f}/s)", file=sys.stderr)
        timings["screen_s"] = time.perf_counter() - started
        timings["screened"] = done
        started = time.perf_counter()
        for day in range(1, DAYS + 1):
            async with maker() as session, session.begin():
                await integrity.patterns(session, START + timedelta(days=day), tenant_id)
        timings["patterns_s"] = time.perf_counter() - started
    finally:
        await engine.dispose()
    return timings


def nps(scores: list[int]) -> float:
    if not scores:
        return float("nan")
    return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)


async def evaluate(dsn: str, tenant_id: uuid.UUID, data: Tenant) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        excluded = {r["id"] for r in await conn.fetch(
            "SELECT id FROM responses WHERE tenant_id = $1 AND excluded", tenant_id)}  # fmt: skip
        by_type: dict[str, set[uuid.UUID]] = defaultdict(set)
        # responses each detector keeps out (default threshold 0.8, nothing decided by hand)
        for r in await conn.fetch(
            "SELECT l.response_id, f.type FROM integrity_flag_responses l "
            "JOIN integrity_flags f ON f.tenant_id = l.tenant_id AND f.id = l.flag_id "
            "WHERE l.tenant_id = $1 AND (f.status = 'confirmed' OR "
            "(f.status = 'open' AND f.strength >= 0.8))",
            tenant_id,
        ):
            by_type[r["type"]].add(r["response_id"])
        flags = await conn.fetch(
            "SELECT type, count(*) AS n FROM integrity_flags WHERE tenant_id = $1 GROUP BY type",
            tenant_id,
        )
    finally:
        await conn.close()
    labels = {r.id: r.label for r in data.rows}
    attacks: dict[str, set[uuid.UUID]] = defaultdict(set)
    for rid, label in labels.items():
        attacks[label].add(rid)
    results: dict[str, Any] = {"attacks": {}, "flags": {r["type"]: r["n"] for r in flags}}
    injected = set().union(*(ids for label, ids in attacks.items() if label != "honest"))
    for attack, types in DETECTORS.items():
        truth = attacks.get(attack, set())
        caught = set().union(*(by_type[t] for t in types))
        results["attacks"][attack] = {
            "injected": len(truth),
            "recall": len(truth & excluded) / len(truth) if truth else float("nan"),
            "flagged": len(caught),
            # a bought review that is also a copy-paste is caught rightly by both detectors
            "precision": len(caught & injected) / len(caught) if caught else float("nan"),
            "own": len(caught & truth) / len(caught) if caught else float("nan"),
        }
    honest = attacks["honest"]
    results["false_positive_rate"] = len(honest & excluded) / len(honest)
    nps_rows = [r for r in data.rows if r.kind == "nps"]
    results["nps_clean"] = nps([r.score for r in nps_rows if r.label == "honest"])
    results["nps_all"] = nps([r.score for r in nps_rows])
    results["nps_counted"] = nps([r.score for r in nps_rows if r.id not in excluded])
    return results


def report(
    args: argparse.Namespace, total: int, load_s: float, t: dict[str, float], res: dict[str, Any]
) -> str:
    lines = [
        f"Seed {args.seed}; {args.responses:,} honest responses over {DAYS} days, {LOCATIONS} "
        f"locations, {AGENTS} agents; {total:,} in all with the attacks. Loaded by COPY in "
        f"{load_s:.1f} s.",
        "",
        "| attack | injected | recall | excluded by its detectors | precision "
        "| of them this attack |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for attack, r in res["attacks"].items():
        lines.append(
            f"| {attack} | {r['injected']:,} | {r['recall']:.3f} | {r['flagged']:,} | "
            f"{r['precision']:.3f} | {r['own']:.3f} |"
        )
    lines += [
        "",
        f"- honest responses excluded (false-positive rate): {res['false_positive_rate']:.4%}",
        f"- NPS of the honest data {res['nps_clean']:.2f}; of everything {res['nps_all']:.2f} "
        f"(error {res['nps_all'] - res['nps_clean']:+.2f}); as the metrics count it "
        f"{res['nps_counted']:.2f} (error {res['nps_counted'] - res['nps_clean']:+.2f})",
        f"- screen: {t['screened']:,.0f} responses in {t['screen_s']:.1f} s = "
        f"{t['screened'] / t['screen_s']:,.0f} responses/s (one worker, batches of 500)",
        f"- pattern detectors (solicitation, spikes), {DAYS} daily runs: {t['patterns_s']:.1f} s "
        f"in all, {t['patterns_s'] / DAYS:.2f} s per run",
        f"- flags raised: {json.dumps(res['flags'], sort_keys=True)}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", help="a server to use (default: embedded PostgreSQL)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--responses", type=int, default=200_000, help="honest responses")
    parser.add_argument("--solicited", type=int, default=1500, help="solicited in-person 9s/10s")
    parser.add_argument("--bot", type=int, default=400, help="bot burst size")
    parser.add_argument("--ring", type=int, default=60, help="near-identical texts (2 rings)")
    parser.add_argument("--repeaters", type=int, default=30, help="customers rating 6 times")
    parser.add_argument("--incentive", type=int, default=150, help="bought, self-declared ratings")
    parser.add_argument(
        "--api-honest",
        type=int,
        default=3000,
        help="honest responses of the pass through the API and a worker process (0: skip)",
    )
    args = parser.parse_args()

    data = generate(args)
    db_url, dsn = bench_database(args.database_url, "feedback_bench_integrity")
    upgrade(db_url)
    tenant_id, key_id = uuid.uuid4(), uuid.uuid4()
    load_s = asyncio.run(load(dsn, tenant_id, key_id, data))
    timings = asyncio.run(detect(db_url, tenant_id, len(data.rows)))
    results = asyncio.run(evaluate(dsn, tenant_id, data))
    print(report(args, len(data.rows), load_s, timings, results))
    counts = Counter(r.label for r in data.rows)
    print(f"\nlabels: {dict(counts)}", file=sys.stderr)
    if args.api_honest:
        # The same detectors as new users meet them: HTTP in, a worker process screening.
        print()
        print(integrity_api.report(integrity_api.run(args.database_url, args.api_honest)))


if __name__ == "__main__":
    main()
