"""A result as a Markdown table, the issue's targets beside it, and two results compared."""

from __future__ import annotations

from typing import Any

# Issue 8's targets at the default scale on a 2-core machine: (requests/s at least, p99 ms at most).
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "find": (1500, 25),
    "everything": (None, 200),
    "read": (3000, 15),
    "retrieve": (2500, 25),
    "publish": (500, 60),
}
BULK_TARGET = 20_000  # documents/s, metadata
MEMORY_TARGET_MIB = 250
START_TARGET_SECONDS = 5.0


def markdown(result: dict[str, Any]) -> str:
    """The whole result, readable."""
    run, machine, population = result["run"], result["machine"], result["population"]
    fsync = result.get("fsync") or {}
    fsync_text = (
        f"{fsync['fdatasync_ops_per_second']:,} fdatasync/s ({fsync['usecs_per_op']} µs/op)"
        if "fdatasync_ops_per_second" in fsync
        else "not measured"
    )
    documents, started = population["documents"], result["server"]
    lines = [
        f"## HTTP benchmark, scale {run['scale']:g} — {run['date']}, commit {run['commit']}",
        "",
        f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, {machine['kernel']}; PostgreSQL {machine['postgresql']} "
        f"on the same machine (shared_buffers {machine['shared_buffers']}, synchronous_commit "
        f"{machine['synchronous_commit']}); load average {run['load_before']} before, "
        f"{run['load_after']} after.",
        f"- Disk (`pg_test_fsync`): {fsync_text}.",
        f"- Population: {population['patients']:,} patients, {documents['loaded']:,} documents; "
        f"{run['workers']} workers, {run['concurrency']} connections, {run['duration']} s per "
        f"workload after {run['warmup']} s of warm-up; patient tables "
        + (
            f"hash-partitioned into {run['partitions']}."
            if run.get("partitions")
            else "not partitioned."
        )
        + (
            " Every consultation measured is the doctor's first of that dossier (it tells the "
            "patient)."
            if run.get("first_consultations") or not result.get("acquaintance")
            else f" Each doctor consulted each of their patients once before the measure "
            f"({result['acquaintance']['consultations']:,} finds in "
            f"{result['acquaintance']['seconds']} s): the workloads measure usual consultations."
        )
        + (
            f" **Switched off for comparison: {', '.join(run['without'])}.**"
            if run.get("without")
            else ""
        )
        + (
            " Server settings: "
            + ", ".join(f"`{name}={value}`" for name, value in run["settings"].items())
            + "."
            if run.get("settings")
            else ""
        ),
        f"- Bulk load ({documents['method']}, batches of {documents['batch']:,}): "
        f"{_number(documents['load_per_second'])} documents/s of metadata "
        f"(target ≥ {BULK_TARGET:,}: {_verdict(documents['load_per_second'], BULK_TARGET, True)}); "
        f"{_number(documents['end_to_end_per_second'])}/s with generation and content; "
        f"enrolment {population['enrolment']['patients_per_second']:,} patients/s.",
        f"- Database: {_mib(result['sizes']['per_million_documents'])} per million documents "
        f"(documents table and its indexes); whole database {_mib(result['sizes']['database'])} "
        f"after the run; audit trail {_mib(result['sizes']['audit_events'])}.",
        f"- Server start: /health after {started['to_health_seconds']} s, workers ready after "
        f"{', '.join(str(s) for s in started['workers_ready_seconds'])} s (target ≤ "
        f"{START_TARGET_SECONDS:g} s: "
        f"{_verdict(max(started['workers_ready_seconds']), START_TARGET_SECONDS, False)}).",
        "",
        "| workload | requests/s | p50 ms | p95 ms | p99 ms | errors | worker CPU % | "
        "peak MiB per worker | PostgreSQL CPU % | connections opened | client CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["workloads"].items():
        lines.append(
            f"| {name} | {_number(row['per_second'])} | {row['p50_ms']} | {row['p95_ms']} | "
            f"{row['p99_ms']} | {row['errors']} | "
            f"{' / '.join(str(w['cpu_percent']) for w in row['workers'])} | "
            f"{' / '.join(str(w['peak_mib']) for w in row['workers'])} | "
            f"{row.get('postgresql_all_cpu_percent', row['postgresql_cpu_percent'])} | "
            f"{row.get('postgresql_connections_opened', '—')} | "
            f"{row['client_cpu_percent']} |"
        )
    lines += ["", *targets(result)]
    return "\n".join(lines) + "\n"


def targets(result: dict[str, Any]) -> list[str]:
    """The issue's targets against what was measured (at this run's scale)."""
    fsync = (result.get("fsync") or {}).get("fdatasync_ops_per_second")
    lines = ["| target | measured | verdict |", "|---|---|---|"]
    for name, (rate, p99) in TARGETS.items():
        row = result["workloads"].get(name)
        if row is None:
            continue
        disk = f" (disk {fsync:,} fdatasync/s)" if name == "publish" and fsync else ""
        if rate is not None:
            lines.append(
                f"| {name} ≥ {rate:,.0f}/s | {_number(row['per_second'])}/s{disk} | "
                f"{_verdict(row['per_second'], rate, True)} |"
            )
        if p99 is not None and row["p99_ms"] is not None:
            lines.append(
                f"| {name} p99 ≤ {p99:g} ms | {row['p99_ms']} ms | "
                f"{_verdict(row['p99_ms'], p99, False)} |"
            )
    peaks = [w["peak_mib"] for row in result["workloads"].values() for w in row["workers"]]
    if peaks:
        lines.append(
            f"| ≤ {MEMORY_TARGET_MIB} MiB per worker | {max(peaks)} MiB | "
            f"{_verdict(max(peaks), MEMORY_TARGET_MIB, False)} |"
        )
    return lines


def _verdict(measured: float | None, target: float, at_least: bool) -> str:
    if measured is None:
        return "not measured"
    met = measured >= target if at_least else measured <= target
    if met:
        return "met"
    gap = (target - measured) / target if at_least else (measured - target) / target
    return f"missed by {100 * gap:.0f} %"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _mib(value: float) -> str:
    return f"{value / 2**20:,.0f} MiB"


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Per workload: throughput and p99 of ``before`` and ``after``, and the change."""
    lines = [
        f"Comparing {before['run']['date']} ({before['run']['commit']}, scale "
        f"{before['run']['scale']:g}) with {after['run']['date']} ({after['run']['commit']}, "
        f"scale {after['run']['scale']:g})",
        "",
        "| workload | requests/s before → after | change | p99 ms before → after | change | "
        "errors before → after |",
        "|---|---|---|---|---|---|",
    ]
    for name in dict.fromkeys([*before["workloads"], *after["workloads"]]):
        old, new = before["workloads"].get(name), after["workloads"].get(name)
        if old is None or new is None:
            lines.append(f"| {name} | only in {'after' if old is None else 'before'} | | | | |")
            continue
        lines.append(
            f"| {name} | {_number(old['per_second'])} → {_number(new['per_second'])} | "
            f"{_change(old['per_second'], new['per_second'])} | {old['p99_ms']} → "
            f"{new['p99_ms']} | {_change(old['p99_ms'], new['p99_ms'])} | "
            f"{old['errors']} → {new['errors']} |"
        )
    old_bulk = before["population"]["documents"]["load_per_second"]
    new_bulk = after["population"]["documents"]["load_per_second"]
    lines.append(
        f"| bulk load (documents/s) | {_number(old_bulk)} → {_number(new_bulk)} | "
        f"{_change(old_bulk, new_bulk)} | | | |"
    )
    return "\n".join(lines) + "\n"


def _change(old: float | None, new: float | None) -> str:
    if not old or new is None:
        return "—"
    return f"{100 * (new - old) / old:+.1f} %"
