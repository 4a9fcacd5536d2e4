"""Benchmark of ``carnet enrol``: a generated national registry file into a fresh database.

Generates a valid registry CSV (Luxembourg matricules with their check digits, 2 % minors
named with a parent enrolled earlier in the file, 0.1 % bad e-mail addresses), runs the real
command in a child process against a throwaway database, and reports rows per second and the
command's peak memory (its maximum resident set size); then runs it again, which must change
nothing. Run ``python -m bench.enrolment --help``; results go to
``bench/results/enrolment-<database>.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.databases import RESULTS, database
from carnet import schema
from carnet.db import make_engine
from carnet.lifecycle.enrolment import OPTIONAL, REQUIRED
from carnet.patients.identifiers import lu_matricule

# Adults are born 1920-2005, minors 2010-2019: the two ranges never share a matricule.
_ADULTS_FROM, _ADULT_DAYS = dt.date(1920, 1, 1), 31_000
_MINORS_FROM, _MINOR_DAYS = dt.date(2010, 1, 1), 3_650
_FAMILIES = ("Weber", "Schmit", "Muller", "Wagner", "Hoffmann", "Da Silva", "Martin", "Thill")
_GIVENS = ("Léa", "Luc", "Anne", "Marc", "Sofia", "Tom", "Inês", "Jean", "Mia", "Paul")
_CITIES = (("4011", "Esch-sur-Alzette"), ("1111", "Luxembourg"), ("9001", "Ettelbruck"))


def main() -> None:
    """Parse arguments, generate the file, time the command twice, write the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="postgresql")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, database(args.database, Path(work)) as url:
        registry = Path(work) / "registry.csv"
        generated = _generate(registry, args.rows)
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        first = _enrol(registry, url, Path(work), args.batch_size)
        again = _enrol(registry, url, Path(work), args.batch_size)
    result = {
        "database": args.database,
        "rows": args.rows,
        "file_mib": round(generated / 2**20, 1),
        "batch_size": args.batch_size,
        "first_run": first,
        "second_run": again,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"enrolment-{args.database}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {path}")


def _generate(path: Path, rows: int) -> int:
    """Write a registry file of ``rows`` people; its size in bytes."""
    identifiers: list[str] = []  # the adults' identifiers, looked up for minors' parents
    minors = 0
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=(*REQUIRED, *OPTIONAL), lineterminator="\n")
        writer.writeheader()
        for index in range(rows):
            minor = index % 50 == 49 and index > 10_000
            if minor:
                born = _MINORS_FROM + dt.timedelta(days=minors % _MINOR_DAYS)
                matricule = lu_matricule(born, minors // _MINOR_DAYS)
                parent = identifiers[(index - 5_000) % len(identifiers)]
                minors += 1
            else:
                adult = len(identifiers)
                born = _ADULTS_FROM + dt.timedelta(days=adult % _ADULT_DAYS)
                matricule = lu_matricule(born, adult // _ADULT_DAYS)
                identifiers.append(matricule)
                parent = ""
            family, given = _FAMILIES[index % 8], _GIVENS[index % 10]
            postal_code, city = _CITIES[index % 3]
            email = f"{given}.{family}.{index}@example.lu".lower().replace(" ", "")
            writer.writerow(
                {
                    "national_identifier": matricule,
                    "family": family,
                    "given": given,
                    "birth_date": born.isoformat(),
                    "sex": ("female", "male")[index % 2],
                    "address_line": f"{index % 200 + 1}, rue de la Gare",
                    "postal_code": postal_code,
                    "city": city,
                    "country": "LU",
                    "email": "not-an-address" if index % 1000 == 999 else email,
                    "language": ("fr", "de", "en", "lb", "pt")[index % 5],
                    "insured_since": "2001-01-01",
                    "representative_identifier": parent,
                    "representation_kind": "parent" if parent else "",
                }
            )
    return path.stat().st_size


def _enrol(registry: Path, url: str, work: Path, batch_size: int) -> dict[str, object]:
    """Run ``carnet enrol`` in a child process; its figures."""
    env = os.environ | {"CARNET_DATABASE_URL": url, "CARNET_VAR_DIR": str(work / "var")}
    command = [sys.executable, "-m", "carnet", "enrol", str(registry), "--no-progress"]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 — our own command, arguments built here
        [*command, "--batch-size", str(batch_size)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    counts = re.search(r"Enrolment: .*", done.stdout)
    rows = sum(1 for _ in registry.open(encoding="utf-8")) - 1
    # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN covers the children waited for so far,
    # and each run here uses about as much as the other.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "seconds": round(elapsed, 1),
        "rows_per_second": round(rows / elapsed),
        "peak_rss_mib": round(peak / 1024, 1),
        "summary": counts.group(0) if counts else done.stdout.strip(),
        "problems_reported": done.stderr.count("\n"),
    }


if __name__ == "__main__":
    main()
