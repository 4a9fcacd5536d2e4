"""Carnet at national scale, over HTTP: ``python -m bench.national --scale 0.01``.

1. Generates a synthetic population straight into a throwaway PostgreSQL database through
   Carnet's bulk paths (registry enrolment, ``documents.bulk``): 1,000,000 patients and
   10,000,000 documents at ``--scale 1`` (the default), ``--scale 0.01`` for 10,000 and 100,000.
2. Starts ``carnet serve --workers N`` as in production and drives it over HTTP with real
   tokens, every request authorised and audited: publish (ITI-65), find (ITI-67), read a
   DocumentReference, retrieve (ITI-68), patient search (PDQm), their XDS.b counterparts
   (ITI-41, ITI-18, ITI-43 over SOAP 1.2 and MTOM) and a mixed load, each from C
   keep-alive connections for D seconds (closed loop, in this process, apart from the server).
3. Reports throughput, p50/p95/p99, errors, CPU and peak memory per worker, the database size
   per million documents and the workers' start time; writes
   ``bench/results/http-<scale>-<date>.json`` and ``.md``.

``python -m bench.national --compare a.json b.json`` prints the difference of two results.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import platform as host
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bench.databases import RESULTS, throwaway_postgres
from bench.national import client, content, population, report, server, unguarded, workloads
from bench.national.client import closed_loop, one
from carnet import schema
from carnet.access.actors import Assurance
from carnet.audit import service as audit_trail
from carnet.auth import grants
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.platform import Platform, build_platform
from carnet.settings import Settings

FULL_PATIENTS, FULL_DOCUMENTS = 1_000_000, 10_000_000


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments; run (or compare); write the results."""
    args = _parser().parse_args(argv)
    if args.compare:
        before, after = (json.loads(Path(name).read_text()) for name in args.compare)
        print(report.compare(before, after))
        return 0
    result = run(args)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"http-{args.scale:g}-{result['run']['date']}" + (f"-{args.tag}" if args.tag else "")
    (results / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    table = report.markdown(result)
    (results / f"{stem}.md").write_text(table)
    print(table)
    print(f"written to {results / stem}.json and .md")
    failed = sum(row["errors"] + row["warmup_errors"] for row in result["workloads"].values())
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.national",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 1M patients, 10M documents")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="carnet serve --workers (default: two per core — each waits on PostgreSQL half "
        "the time)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per workload")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument(
        "--workloads", default=",".join(workloads.NAMES), help="comma-separated subset"
    )
    parser.add_argument("--readers", type=int, default=20, help="doctors the load signs in as")
    parser.add_argument(
        "--reachable",
        type=int,
        default=10_000,
        help="patients granting a reader access, with their content stored",
    )
    parser.add_argument("--batch", type=int, default=10_000, help="documents per bulk call")
    parser.add_argument(
        "--partitions",
        type=int,
        default=None,
        help="hash-partition the patient tables into N (carnet db upgrade --partitions)",
    )
    parser.add_argument(
        "--without",
        default="",
        help="switch off policy, audit or both in the server (bench.national.unguarded), to "
        "measure what they cost",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Carnet setting for the server (CARNET_NAME=VALUE), e.g. "
        "audit_group_commit=false; repeatable",
    )
    parser.add_argument(
        "--first-consultations",
        action="store_true",
        help="skip the pass in which each doctor consults each of their patients once before "
        "the measure: every consultation then is a first one, and tells the patient",
    )
    parser.add_argument(
        "--alternate",
        type=Path,
        default=None,
        metavar="TREE",
        help="after the measure, serve the same population alternately from this tree and "
        "from TREE (a worktree of another commit with the same schema: its src/ goes first "
        "on PYTHONPATH), --rounds times each: a comparison in one sitting",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of --alternate")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument(
        "--fsync-seconds", type=int, default=1, help="pg_test_fsync seconds per test (0: skip)"
    )
    parser.add_argument(
        "--database-url",
        help="an empty database to load into (default: a throwaway one, dropped at the end)",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop it")
    parser.add_argument("--results", default=str(RESULTS), help="where the JSON and .md go")
    parser.add_argument("--tag", default="", help="appended to the result files' names")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"))
    return parser


def _without(args: argparse.Namespace) -> list[str]:
    names = [name.strip() for name in args.without.split(",") if name.strip()]
    unknown = set(names) - set(unguarded.SWITCHES)
    if unknown:
        raise SystemExit(f"--without takes {', '.join(unguarded.SWITCHES)}, not {unknown}")
    return names


def _settings(args: argparse.Namespace) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in args.setting:
        name, equals, value = item.partition("=")
        if not equals or not name.strip():
            raise SystemExit(f"--setting takes NAME=VALUE, not {item!r}")
        settings[name.strip().lower()] = value
    return settings


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Generate, serve, load, measure; the result."""
    names = [name.strip() for name in args.workloads.split(",") if name.strip()]
    unknown = set(names) - set(workloads.NAMES)
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(sorted(unknown))}")
    patients = max(1, round(FULL_PATIENTS * args.scale))
    scale = population.Scale(
        patients=patients,
        documents=max(1, round(FULL_DOCUMENTS * args.scale)),
        readers=max(1, min(args.readers, patients)),
        reachable=max(1, min(args.reachable, patients)),
        batch=args.batch,
        seed=args.seed,
    )
    result: dict[str, Any] = {
        "run": {
            "scale": args.scale,
            "date": dt.datetime.now(dt.UTC).date().isoformat(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "workers": args.workers,
            "partitions": args.partitions,
            "without": _without(args),
            "settings": _settings(args),
            "first_consultations": args.first_consultations,
            "concurrency": args.concurrency,
            "duration": args.duration,
            "warmup": args.warmup,
            "load_before": _load(),
            "client": "asyncio HTTP/1.1 (bench/national/client.py), in the harness process",
        },
        "machine": _machine(),
    }
    with tempfile.TemporaryDirectory(prefix="carnet-bench-") as scratch:
        work = Path(scratch)
        result["fsync"] = server.fdatasync_rate(args.fsync_seconds, work)
        with _database(args) as (url, libpq):
            result["machine"] |= _postgres(libpq)
            result |= _serve_and_measure(args, scale, names, url=url, libpq=libpq, work=work)
    result["run"]["load_after"] = _load()
    return result


def _serve_and_measure(
    args: argparse.Namespace,
    scale: population.Scale,
    names: list[str],
    *,
    url: str,
    libpq: str,
    work: Path,
) -> dict[str, Any]:
    port = args.port or _free_port()
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    settings = Settings(
        var_dir=work / "var",
        database_url=url,
        store_url=(work / "store").as_uri(),
        master_key=SecretStr(key),
        public_url=f"http://127.0.0.1:{port}",
        jobs_interval_seconds=0,
    )
    platform = build_platform(settings)
    try:
        schema.upgrade(platform.engine, partitions=args.partitions)
        templates = content.templates()
        started = time.perf_counter()
        made = population.build(platform, scale, templates)
        made.figures["vacuum_analyze_seconds"] = _vacuum(libpq)
        made.figures["total_seconds"] = round(time.perf_counter() - started, 1)
        print(f"population ready: {json.dumps(made.figures)}", flush=True)
        lifetime = int(len(names) * (args.duration + args.warmup) + 3600)
        tokens = _tokens(platform, settings, made, lifetime)
        loaded_sizes = server.sizes(libpq)
        events_before = _audit_events(libpq)
        env = {key: value for key, value in os.environ.items() if not key.startswith("CARNET_")}
        env |= {
            "CARNET_VAR_DIR": str(settings.var_dir),
            "CARNET_DATABASE_URL": url,
            "CARNET_STORE_URL": settings.effective_store_url,
            "CARNET_MASTER_KEY": key,
            "CARNET_PUBLIC_URL": settings.public_url,
            "CARNET_JOBS_INTERVAL_SECONDS": "0",
        }
        env |= {f"CARNET_{name.upper()}": value for name, value in _settings(args).items()}
        running = server.start(
            env,
            workers=args.workers,
            port=port,
            log=work / "server.log",
            without=_without(args),
        )
        measured: dict[str, Any] = {}
        acquaintance: dict[str, Any] | None = None
        try:
            makers = workloads.makers(made, tokens, templates)
            _check(port, makers, templates)
            if not args.first_consultations:
                started_acquainting = time.perf_counter()
                consultations = workloads.acquaintances(made, tokens)
                failed = asyncio.run(
                    client.each_once(port, consultations, concurrency=args.concurrency)
                )
                if failed:
                    raise RuntimeError(f"{failed} consultations before the measure failed")
                acquaintance = {
                    "consultations": len(consultations),
                    "seconds": round(time.perf_counter() - started_acquainting, 1),
                }
                print(f"acquainted: {json.dumps(acquaintance)}", flush=True)
            database = make_url(url).database or ""
            for number, name in enumerate(names):
                # Said before the warm-up: a profiler attached after this line sees the workload.
                print(f"measuring {name} (workers {running.workers})", flush=True)
                measured[name] = _measure(
                    args, running, makers[name], libpq, database, seed=args.seed + number
                )
                row = measured[name]
                print(
                    f"{name}: {row['per_second']}/s p50 {row['p50_ms']} p99 {row['p99_ms']} ms, "
                    f"{row['errors']} errors",
                    flush=True,
                )
        finally:
            exit_code = running.stop()
        running.figures["exit_code"] = exit_code
        alternation = _alternate(
            args,
            names,
            port=port,
            env=env,
            makers=makers,
            libpq=libpq,
            database=make_url(url).database or "",
            work=work,
        )
        after = server.sizes(libpq)
        written = _audit_events(libpq) - events_before
        store_bytes, store_files = server.directory_size(work / "store")
        per_million = (
            (loaded_sizes["documents"] + loaded_sizes["submission_sets"])
            / max(1, loaded_sizes["documents_rows"])
            * 1_000_000
        )
        return {
            "population": made.figures,
            "server": running.figures,
            "workloads": measured,
            "acquaintance": acquaintance,
            "alternation": alternation,
            "sizes": after
            | {
                "loaded": loaded_sizes,
                "per_million_documents": round(per_million),
                "store_bytes": store_bytes,
                "store_objects": store_files,
            },
            "audit": _verify(platform, made) | {"written_during_load": written},
        }
    finally:
        platform.close()


def _alternate(
    args: argparse.Namespace,
    names: list[str],
    *,
    port: int,
    env: dict[str, str],
    makers: dict[str, workloads.Maker],
    libpq: str,
    database: str,
    work: Path,
) -> list[dict[str, Any]]:
    """``--alternate``: each round serves the population from this tree, then from the other.

    Alternating in one sitting, on one population, is what makes two commits comparable on a
    virtual machine whose speed drifts by 20 to 30 % from one run to the next.
    """
    if args.alternate is None:
        return []
    other = str(args.alternate.resolve() / "src")
    variants = {"this tree": env, str(args.alternate): env | {"PYTHONPATH": other}}
    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        for variant, variant_env in variants.items():
            running = server.start(
                variant_env,
                workers=args.workers,
                port=port,
                log=work / "server-alternate.log",
                without=_without(args),
            )
            try:
                for offset, name in enumerate(names):
                    row = _measure(
                        args, running, makers[name], libpq, database, seed=args.seed + offset
                    )
                    # CPU per request: what a request costs, whatever the hypervisor took.
                    seconds = args.duration / max(1, row["requests"]) * 1000 / 100
                    cost = {
                        "worker_cpu_ms": round(
                            sum(w["cpu_percent"] for w in row["workers"]) * seconds, 2
                        ),
                        "postgresql_cpu_ms": round(row["postgresql_cpu_percent"] * seconds, 2),
                    }
                    rounds.append(
                        {"round": number + 1, "variant": variant, "workload": name}
                        | {key: row[key] for key in ("per_second", "p50_ms", "p99_ms", "errors")}
                        | cost
                    )
                    print(
                        f"round {number + 1}, {variant}: {name} {row['per_second']}/s "
                        f"p99 {row['p99_ms']} ms, {row['errors']} errors, CPU per request: "
                        f"workers {cost['worker_cpu_ms']} ms, "
                        f"PostgreSQL {cost['postgresql_cpu_ms']} ms",
                        flush=True,
                    )
            finally:
                running.stop()
    return rounds


def _tokens(
    platform: Platform, settings: Settings, made: population.Population, lifetime: int
) -> workloads.Tokens:
    """Real access tokens, signed with the server's key (the demo identity provider's path)."""
    authority = TokenAuthority.from_settings(settings, platform.key_wrapper)
    with unit_of_work(platform.sessions) as session:

        def mint(as_: str, scope: str | None) -> str:
            return grants.mint_token(
                session,
                authority,
                as_=as_,
                assurance=Assurance.HIGH,
                scope=scope,
                lifetime=dt.timedelta(seconds=lifetime),
                clock=platform.clock,
            ).token

        readers = [mint(f"professional:{identifier}", None) for identifier in made.readers]
        feeder = mint(f"system:{made.feeder}", "system/DocumentReference.c")
    return workloads.Tokens(readers=readers, feeder=feeder)


def _check(port: int, makers: dict[str, workloads.Maker], templates: content.Templates) -> None:
    """One request of each kind, answered as the workload expects, before anything is timed."""
    import random  # noqa: PLC0415

    rng = random.Random(1)  # noqa: S311
    kinds = ("find", "read", "retrieve", "search", "publish")
    for kind in (*kinds, "xds-find", "xds-retrieve", "xds-publish"):
        answer = asyncio.run(one(port, makers[kind](rng)))
        problem = workloads.check(kind, answer.status, answer.body, templates)
        if problem is not None:
            raise RuntimeError(f"check before the run failed: {problem}")


def _measure(
    args: argparse.Namespace,
    running: server.Server,
    maker: workloads.Maker,
    libpq: str,
    database: str,
    *,
    seed: int,
) -> dict[str, Any]:
    marks: dict[str, Any] = {}

    def begin() -> None:
        marks["workers"] = {pid: server.cpu_seconds(pid) for pid in running.workers}
        pids, marks["sessions"] = server.backends(libpq, database)
        marks["backends"] = {pid: server.cpu_seconds(pid) for pid in pids}
        marks["postgresql"] = server.postgresql_cpu_seconds()

    def end() -> None:
        marks["workers_end"] = {pid: server.cpu_seconds(pid) for pid in running.workers}
        pids, marks["sessions_end"] = server.backends(libpq, database)
        marks["backends_end"] = {pid: server.cpu_seconds(pid) for pid in pids}
        marks["postgresql_end"] = server.postgresql_cpu_seconds()

    outcome = asyncio.run(
        closed_loop(
            running.port,
            maker,
            concurrency=args.concurrency,
            duration=args.duration,
            warmup=args.warmup,
            seed=seed,
            on_begin=begin,
            on_end=end,
        )
    )
    figures = outcome.summary()
    figures["workers"] = [
        {
            "pid": pid,
            "cpu_percent": round(
                100 * (marks["workers_end"][pid] - marks["workers"][pid]) / args.duration, 1
            ),
            "peak_mib": server.memory_mib(pid)["peak"],
            "current_mib": server.memory_mib(pid)["current"],
        }
        for pid in running.workers
    ]
    backends = sum(
        spent - marks["backends"].get(pid, 0.0) for pid, spent in marks["backends_end"].items()
    )
    figures["postgresql_cpu_percent"] = round(100 * backends / args.duration, 1)
    spent = marks["postgresql_end"] - marks["postgresql"]
    figures["postgresql_all_cpu_percent"] = round(100 * spent / args.duration, 1)
    # Connections the workers opened during the window (the two probes left out; approximate:
    # PostgreSQL counts a session when its statistics are flushed).
    figures["postgresql_connections_opened"] = max(0, marks["sessions_end"] - marks["sessions"] - 2)
    return figures


def _verify(platform: Platform, made: population.Population) -> dict[str, Any]:
    """Walk the audit chains of a sample of the dossiers the load touched, and the operator's."""
    chains = [target.patient_id for target in made.targets[:200]]
    chains.append(audit_trail.chain_of(population.OPERATOR.agent, None))
    with platform.sessions() as session:
        found = audit_trail.verify(session, chain_ids=chains)
    return {"chains": found.chains, "events": found.events, "intact": found.intact}


def _audit_events(libpq: str) -> int:
    """How many audit events the database holds."""
    with psycopg.connect(libpq) as connection:
        row = connection.execute("SELECT count(*) FROM audit_events").fetchone()
    return int(row[0]) if row else 0


def _vacuum(libpq: str) -> float:
    """VACUUM (ANALYZE) after the load, as autovacuum would in time; the seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(libpq, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE)")
    return round(time.perf_counter() - started, 1)


@contextlib.contextmanager
def _database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The SQLAlchemy and libpq URLs of the database to load: given, or made and dropped."""
    with (
        contextlib.nullcontext(args.database_url)
        if args.database_url
        else throwaway_postgres(keep=args.keep_database)
    ) as url:
        given = make_url(url)
        yield (
            given.set(drivername="postgresql+psycopg").render_as_string(hide_password=False),
            given.set(drivername="postgresql").render_as_string(hide_password=False),
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _commit() -> str:
    def git(*arguments: str) -> str:
        done = subprocess.run(  # noqa: S603 — read-only git queries
            ["git", *arguments],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+uncommitted" if git("status", "--porcelain", "--untracked-files=no") else "")


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory / 2**20, 1),
        "kernel": f"{host.system()} {host.release()}",
        "python": host.python_version(),
    }


def _postgres(libpq: str) -> dict[str, Any]:
    with psycopg.connect(libpq, autocommit=True) as connection:
        values = {
            name: connection.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]  # type: ignore[index]
            for name in ("server_version", "shared_buffers", "synchronous_commit")
        }
    return {
        "postgresql": values["server_version"],
        "shared_buffers": values["shared_buffers"],
        "synchronous_commit": values["synchronous_commit"],
    }


if __name__ == "__main__":
    sys.exit(main())
