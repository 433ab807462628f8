"""Event-log benchmark: the audit trail and the desired state at 1,000,000 events.

Builds a log the way months of use would (bulk-written with executemany of codec-encoded
rows into a file with the schema an older gateway wrote, so opening it also measures the
upgrade), then times the real code paths:

1. the first open of that file (generated columns, indexes, time blocks) and a later open;
2. gateway start cold (no snapshot: LiveDesired folds the whole log and leaves a snapshot
   every SNAPSHOT_EVERY records) and warm (from the newest snapshot);
3. audit queries: `store.query` plus the JSON that GET /system/events sends
   (`api.audit.record_json`, serialised as the response does), for random functions and
   time windows, and a few other filter shapes;
4. the state as of a random time or position (`api.audit.desired_at`: position_at, the
   nearest snapshot, the records after it), including the worst case (a position just
   before the next snapshot);
5. durable appends through `SQLiteEventStore.append` (one event per append,
   synchronous=FULL, on the 1M-record log) against raw sqlite3 INSERTs, each in its own
   transaction, with the same pragmas on the same disk: the limit.

Run: `.venv/bin/python bench/eventlog.py` (about 3 minutes on 2 cores; --events for less).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.audit import desired_at, record_json  # noqa: E402
from controller.state import LiveDesired  # noqa: E402
from events import snapshot  # noqa: E402
from events.codec import encode  # noqa: E402
from events.model import FunctionSpec, Resources  # noqa: E402
from events.project import project  # noqa: E402
from events.sqlite import SQLiteEventStore  # noqa: E402
from events.store import EventQuery  # noqa: E402
from events.types import (  # noqa: E402
    Event,
    FunctionDeployed,
    FunctionRemoved,
    FunctionScaled,
    FunctionUpdated,
    NamespaceCreated,
    ReplicaFailed,
    SecretCreated,
    SecretUpdated,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 180
NAMESPACES = [f"team-{i}" for i in range(10)]
NAMES = [f"fn-{i:03d}" for i in range(100)]  # each name in every namespace: 1,000 functions

OLD_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL,
    version INTEGER NOT NULL, type TEXT NOT NULL, schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL, time TEXT NOT NULL, actor TEXT NOT NULL,
    request_id TEXT NOT NULL, source TEXT NOT NULL, user_agent TEXT NOT NULL,
    correlation_id TEXT NOT NULL);
CREATE UNIQUE INDEX events_stream_version ON events (stream, version);
"""
INSERT = """INSERT INTO events (stream, version, type, schema_version, payload, time, actor,
    request_id, source, user_agent, correlation_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)"""

Row = tuple[str, int, str, int, str, str, str, str, str, str, str]


# ---- building the log -------------------------------------------------------------------


def spec(ns: str, name: str, release: int, rng: random.Random) -> FunctionSpec:
    return FunctionSpec(
        name=name, namespace=ns, image=f"registry.example.com/{ns}/{name}:1.{release}",
        env_process="python index.py",
        env_vars={"LOG_LEVEL": rng.choice(["info", "debug"]), "RELEASE": str(release)},
        labels={"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "10",
                "team": ns},
        annotations={"owner": f"{ns}-owners"},
        secrets=("db-password",) if release % 3 else (),
        limits=Resources(memory="128Mi", cpu="250m"),
    )


def generate(count: int, seed: int = 5) -> Iterator[Row]:
    """`count` records of a plausible history: namespaces and secrets first, then deploys,
    updates (CI), scales (mostly the autoscaler, some wakes and people), removes and
    redeploys, replica failures; times spread over DAYS with a clock that sometimes steps
    back a little (a second gateway on the same log)."""
    rng = random.Random(seed)
    gap = DAYS * 86400 / count
    clock = START
    versions: dict[str, int] = {}
    replicas: dict[tuple[str, str], int] = {}
    releases: dict[tuple[str, str], int] = {}
    digests: dict[tuple[str, str], int] = {}
    made = 0
    ci_run = 0

    def row(stream: str, event: Event, actor: str, correlation: str = "") -> Row:
        nonlocal made, clock
        step = rng.expovariate(1 / gap)
        if rng.random() < 0.001:
            step = -rng.uniform(0, 2)  # skew between two writers
        clock = clock + timedelta(seconds=step)
        versions[stream] = versions.get(stream, 0) + 1
        name, schema, payload = encode(event)
        made += 1
        request = f"req-{made}"
        return (stream, versions[stream], name, schema,
                json.dumps(payload, sort_keys=True, separators=(",", ":")),
                clock.isoformat(), actor, request, "10.0.0.1" if actor != "autoscaler" else "",
                "faas-cli/0.17" if actor in ("alice", "bob", "ci-bot") else actor,
                correlation or request)

    for ns in NAMESPACES:
        yield row(f"namespace/{ns}", NamespaceCreated(ns, {"openfaas": "1"}), "admin")
        digests[(ns, "db-password")] = 1
        yield row(f"secret/{ns}/db-password", SecretCreated(ns, "db-password", "d1"), "admin")
    for ns in NAMESPACES:
        for name in NAMES:
            key = (ns, name)
            releases[key], replicas[key] = 1, 1
            yield row(f"function/{ns}/{name}", FunctionDeployed(spec(ns, name, 1, rng), 1),
                      "ci-bot")
    while made < count:
        ns, name = rng.choice(NAMESPACES), rng.choice(NAMES)
        key, stream = (ns, name), f"function/{ns}/{name}"
        roll = rng.random()
        if key not in replicas:  # removed earlier: deployed again
            releases[key] = releases.get(key, 0) + 1
            replicas[key] = 1
            yield row(stream, FunctionDeployed(spec(ns, name, releases[key], rng), 1), "alice")
        elif roll < 0.08:  # CI releases, several functions of a namespace per run
            ci_run += 1
            for other in rng.sample(NAMES, 3):
                if (ns, other) in replicas and made < count:
                    releases[(ns, other)] += 1
                    yield row(f"function/{ns}/{other}", FunctionUpdated(
                        spec(ns, other, releases[(ns, other)], rng)), "ci-bot",
                        f"ci-run-{ci_run}")
        elif roll < 0.11:
            yield row(f"outcome/{ns}/{name}", ReplicaFailed(
                ns, name, rng.randrange(3), f"{rng.getrandbits(48):012x}",
                "exited with code 1", 1, 1, 0.1), "controller")
        elif roll < 0.115:
            del replicas[key]
            yield row(stream, FunctionRemoved(ns, name), "bob")
        elif roll < 0.117:
            digests[(ns, "db-password")] += 1
            d = digests[(ns, "db-password")]
            yield row(f"secret/{ns}/db-password",
                      SecretUpdated(ns, "db-password", f"d{d}", f"d{d - 1}"), "admin")
        else:
            now = replicas[key]
            if roll < 0.90:
                target = max(0, min(10, now + rng.choice([-2, -1, 1, 2])))
                actor, reason = "autoscaler", f"rps load {rng.uniform(0, 500):.2f}"
            elif roll < 0.96:
                target, actor, reason = (0 if now else 1), "gateway", "scale-from-zero"
            else:
                target, actor, reason = rng.randrange(0, 6), rng.choice(["alice", "bob"]), \
                    "manual"
            if target == now:
                target = now + 1
            replicas[key] = target
            yield row(stream, FunctionScaled(ns, name, target, now, reason), actor)


def build(path: Path, count: int) -> float:
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;" + OLD_SCHEMA)
    started = time.perf_counter()
    batch: list[Row] = []
    for r in generate(count):
        batch.append(r)
        if len(batch) == 50_000:
            with conn:
                conn.executemany(INSERT, batch)
            batch.clear()
    with conn:
        conn.executemany(INSERT, batch)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


# ---- measuring ----------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def spread(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered):8.1f} {p95:8.1f} {ordered[-1]:8.1f}"


def render(records: list[Any]) -> bytes:
    """What GET /system/events sends for these records (JSONResponse's serialisation)."""
    return json.dumps([record_json(r) for r in records], ensure_ascii=False,
                      allow_nan=False, indent=None, separators=(",", ":")).encode()


def random_time(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.uniform(0, DAYS * 86400))


def audit_queries(store: SQLiteEventStore, rng: random.Random, runs: int) -> list[tuple]:
    shapes: list[tuple[str, Callable[[], EventQuery]]] = [
        ("function (any ns), 7-day window", lambda: _window(rng, 7, function=rng.choice(NAMES))),
        ("function + ns, 30-day window", lambda: _window(
            rng, 30, function=rng.choice(NAMES), namespace=rng.choice(NAMESPACES))),
        ("function (any ns), all time, newest 100", lambda: EventQuery(
            function=rng.choice(NAMES), newest_first=True, limit=100)),
        ("namespace, newest 100", lambda: EventQuery(
            namespace=rng.choice(NAMESPACES), newest_first=True, limit=100)),
        ("1-day window, no other filter", lambda: _window(rng, 1)),
        ("actor alice, 30-day window", lambda: _window(rng, 30, actor="alice")),
        ("type function.removed, oldest 100", lambda: EventQuery(
            types={"function.removed"}, after=rng.randrange(900_000), limit=100)),
        ("correlation id (one CI run)", lambda: EventQuery(
            correlation_id=f"ci-run-{rng.randrange(1, 20_000)}", limit=100)),
    ]
    out = []
    for label, make in shapes:
        samples, found = [], []
        for _ in range(runs):
            query = make()
            ms, body = timed(lambda q=query: render(store.query(q)))
            samples.append(ms)
            found.append(body.count(b'"position"'))
        out.append((label, spread(samples), statistics.median(found)))
    return out


def _window(rng: random.Random, days: int, **filters: Any) -> EventQuery:
    since = random_time(rng)
    return EventQuery(since=since, until=since + timedelta(days=days), limit=1000, **filters)


def state_queries(store: SQLiteEventStore, live: LiveDesired, rng: random.Random,
                  runs: int) -> list[tuple[str, str]]:
    gw = SimpleNamespace(store=store, desired=live.current)
    head = store.head()
    every = snapshot.SNAPSHOT_EVERY
    cases: list[tuple[str, Callable[[], str]]] = [
        ("?at=<random time>", lambda: random_time(rng).isoformat().replace("+00:00", "Z")),
        ("?at=<random position>", lambda: str(rng.randrange(1, head))),
        ("?at=<snapshot + N - 1> (worst)", lambda: str(
            rng.randrange(1, head // every) * every + every - 1)),
    ]
    out = []
    for label, make in cases:
        samples = []
        for _ in range(runs):
            at = make()
            ms, desired = timed(lambda a=at: desired_at(gw, a))  # type: ignore[arg-type]
            samples.append(ms)
        out.append((label, spread(samples)))
    return out


def appends(store: SQLiteEventStore, tmp: Path, n: int, rounds: int = 10
            ) -> dict[str, list[float]]:
    """Latencies (ms) of one-event durable appends three ways, interleaved in rounds so
    that a noisy neighbour on the machine hurts them alike: our append; a raw INSERT into
    the same file and table (same indexes) through a plain connection; a raw INSERT into a
    fresh file holding only the old table. Each in its own transaction, WAL, FULL."""
    ns, name = NAMESPACES[0], NAMES[0]
    stream = f"function/{ns}/{name}"
    payload = json.dumps(encode(FunctionScaled(ns, name, 1, 2, "bench"))[2])
    same = sqlite3.connect(store.path, isolation_level=None)
    same.execute("PRAGMA synchronous = FULL")
    fresh = sqlite3.connect(tmp / "raw.db", isolation_level=None)
    fresh.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;" + OLD_SCHEMA)
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out: dict[str, list[float]] = {"append": [], "raw-same": [], "raw-fresh": []}
    version = store.stream_version(stream)
    count = 0

    def raw(conn: sqlite3.Connection, raw_stream: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(INSERT, (raw_stream, count, "function.scaled", 2, payload,
                              datetime.now(UTC).isoformat(), "bench", f"b{count}", "", "",
                              ""))
        conn.execute("COMMIT")

    for _ in range(rounds):
        for _ in range(n // rounds):
            count += 1
            event = FunctionScaled(ns, name, count % 5 + 1, (count - 1) % 5 + 1, "bench")
            ms, _ = timed(lambda e=event, v=version: store.append(
                stream, [e], v, time=datetime.now(UTC), actor="bench", request_id="b"))
            out["append"].append(ms)
            version += 1
            out["raw-same"].append(timed(lambda: raw(same, "bench/raw"))[0])
            out["raw-fresh"].append(timed(lambda: raw(fresh, stream))[0])
    same.close()
    fresh.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30, help="samples per query shape")
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--dir", help="where to build the log (default: a temp dir)")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="eventlog-") as tmp:
        path = Path(tmp) / "events.db"
        print(f"building {args.events:,} events in {path} ...", flush=True)
        built = build(path, args.events)
        size_old = path.stat().st_size
        rows: list[tuple[str, str]] = [
            ("build (generate + encode + executemany)", f"{built:.1f} s"),
            ("file before first open (old schema)", f"{size_old / 2**20:.0f} MiB"),
        ]
        ms, store = timed(lambda: SQLiteEventStore(path))
        rows.append(("first open: generated columns, 5 indexes, time blocks", f"{ms / 1000:.1f} s"))
        store.close()
        ms, store = timed(lambda: SQLiteEventStore(path))
        rows.append(("later open", f"{ms:.1f} ms"))

        saved: list[float] = []
        real_save = snapshot.save

        def counting_save(to: Any, desired: Any) -> None:  # encode + write
            saved.append(timed(lambda: real_save(to, desired))[0])

        snapshot.save = counting_save  # type: ignore[assignment]
        ms, live = timed(lambda: LiveDesired(store))
        snapshot.save = real_save  # type: ignore[assignment]
        rows.append(("gateway start, cold (fold all, write snapshots)", f"{ms / 1000:.1f} s"))
        rows.append(("  of which writing snapshots", f"{len(saved)} x, {sum(saved) / 1000:.1f} s"))
        live.close()
        ms, fold = timed(lambda: _fold_all(store))
        rows.append(("projection rebuild, cold (read + decode + fold)", f"{ms / 1000:.1f} s "
                     f"({ms * 1000 / store.head():.1f} µs/record)"))
        ms, live = timed(lambda: LiveDesired(store))
        rows.append(("gateway start, warm (newest snapshot + rest)", f"{ms:.1f} ms"))
        assert live.current == fold, "a snapshot start must equal the full fold"
        newest = store.latest_snapshot(store.head(), snapshot.FORMAT, snapshot.schema())
        assert newest is not None
        dec, _ = timed(lambda: snapshot.decode(newest))
        enc, _ = timed(lambda: snapshot.encode(live.current))
        rows.append(("snapshot: functions / size / encode / decode",
                     f"{len(live.current.functions)} / {len(newest.data) / 1024:.0f} KiB / "
                     f"{enc:.1f} ms / {dec:.1f} ms"))
        _print("log and start-up", rows)

        print(f"\naudit queries: store.query + JSON of GET /system/events, {args.runs} random "
              "each (ms)")
        print(f"{'shape':44} {'p50':>8} {'p95':>8} {'max':>8}  records")
        for label, figures, found in audit_queries(store, rng, args.runs):
            print(f"{label:44} {figures}  {found:.0f}")

        print(f"\nstate as of T: api.audit.desired_at, {args.runs} random each (ms), "
              f"N = SNAPSHOT_EVERY = {snapshot.SNAPSHOT_EVERY}")
        print(f"{'case':44} {'p50':>8} {'p95':>8} {'max':>8}")
        for label, figures in state_queries(store, live, rng, args.runs):
            print(f"{label:44} {figures}")
        live.close()

        print(f"\ndurable appends, one event per transaction, WAL + synchronous=FULL, "
              f"{args.appends} each, interleaved")
        timings = appends(store, Path(tmp), args.appends)
        print(f"{'':52} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        labels = {"append": "SQLiteEventStore.append (on the log)",
                  "raw-same": "raw INSERT, same file and indexes",
                  "raw-fresh": "raw INSERT, fresh file, table + unique index"}
        for key, label in labels.items():
            ordered = sorted(timings[key])
            print(f"{label:52} {len(ordered) / (sum(ordered) / 1000):8.0f} "
                  f"{statistics.median(ordered):8.2f} {ordered[int(len(ordered) * .99)]:8.2f}")
        for key in ("raw-same", "raw-fresh"):
            ratio = sum(timings[key]) / sum(timings["append"])
            print(f"{'ratio append / ' + key + ' (throughput)':52} {ratio:8.2f}")
        store.close()
        size = sum(f.stat().st_size for f in Path(tmp).glob("events.db*"))
        print(f"\nfile after the run: {size / 2**20:.0f} MiB")
    return 0


def _fold_all(store: SQLiteEventStore) -> Any:
    desired = project(())
    while page := store.query(EventQuery(after=desired.position, limit=10_000)):
        desired = project(page, desired)
    return desired


def _print(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    for label, value in rows:
        print(f"{label:56} {value}")


if __name__ == "__main__":
    raise SystemExit(main())
