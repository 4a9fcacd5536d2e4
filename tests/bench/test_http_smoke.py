"""The national HTTP benchmark end to end at ``--scale 0.01``: every workload runs without an error.

No timing is asserted: this machine's speed is measured by the benchmark itself, not tested. The
run is the documented command (``python -m bench.national``) in a child process, on a throwaway
PostgreSQL database (10,000 patients, 100,000 documents, 100 of them reachable), with two workers
and two seconds per workload; a second run, at ``--scale 0.001``, switches the audit off on
hash-partitioned tables.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import throwaway_postgres

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = {
    "publish",
    "xds-publish",
    "find",
    "xds-find",
    "everything",
    "read",
    "retrieve",
    "xds-retrieve",
    "search",
    "mixed",
}


def _bench(results: Path, scale: str, *options: str) -> Path:
    with throwaway_postgres() as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.national",
                f"--scale={scale}",
                "--workers=2",
                "--concurrency=4",
                "--duration=2",
                "--warmup=0.5",
                "--reachable=100",
                "--readers=5",
                "--fsync-seconds=0",
                f"--database-url={url}",
                f"--results={results}",
                *options,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=420,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [written] = results.glob(f"http-{scale}-*.json")
    return written


def _consultations(result: dict[str, Any]) -> int:
    return sum(
        result["workloads"][name]["requests"]
        for name in ("find", "everything", "read", "retrieve")
        if name in result["workloads"]
    )


def test_every_workload_runs_without_errors_and_is_reported(tmp_path: Path) -> None:
    written = _bench(tmp_path / "results", "0.01")
    result = json.loads(written.read_text())
    assert set(result["workloads"]) == WORKLOADS
    for name, row in result["workloads"].items():
        assert row["requests"] > 0, name
        assert row["errors"] == 0, (name, row["error_kinds"])
        assert row["warmup_errors"] == 0, name
        assert [worker["peak_mib"] > 0 for worker in row["workers"]] == [True, True], name
    assert result["population"]["documents"]["loaded"] == 100_000
    assert result["population"]["patients"] == 10_000
    assert result["server"]["exit_code"] == 0
    assert result["audit"]["intact"]
    # Every consultation of the load, warm-up included, is in the audit trail.
    assert result["audit"]["written_during_load"] >= _consultations(result)
    assert result["sizes"]["per_million_documents"] > 0
    table = written.with_suffix(".md").read_text()
    assert "| find |" in table
    assert "| mixed |" in table

    compared = subprocess.run(
        [sys.executable, "-m", "bench.national", "--compare", str(written), str(written)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "| find |" in compared.stdout
    assert "+0.0 %" in compared.stdout


def test_the_audit_switched_off_on_partitioned_tables_records_no_consultation(
    tmp_path: Path,
) -> None:
    written = _bench(
        tmp_path / "results", "0.001", "--workloads=read", "--without=audit", "--partitions=4"
    )
    result = json.loads(written.read_text())
    assert result["run"]["partitions"] == 4
    assert result["run"]["without"] == ["audit"]
    assert result["workloads"]["read"]["errors"] == 0
    assert _consultations(result) > 0
    assert result["audit"]["written_during_load"] == 0
    assert "Switched off for comparison: audit" in written.with_suffix(".md").read_text()
