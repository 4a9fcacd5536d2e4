"""End-to-end browser tests: a real Carnet served by ``carnet serve``, driven in headless Chromium.

Once per session: a temporary var directory with a SQLite database migrated by
``carnet db upgrade``, the people of the journeys seeded through the services (``cast.py``),
then ``carnet serve`` on a free port, and one Chromium (Debian's ``chromium`` package, driven by
Playwright; Playwright's own browser download is not used). The journeys then go through the
pages only, by their labels and roles, and save screenshots at desktop and phone sizes under
``test-artifacts/screenshots/<test>/`` with the axe-core report of each checked page.

These tests run on SQLite only, once: they do not use the ``engine`` fixture, so the suite's
SQLite/PostgreSQL parametrisation does not double them. Without Chromium they are skipped with
the reason in the ``-ra`` summary; where ``CI`` is set a missing Chromium fails the run instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from browser.cast import Cast, OneTimeCodes, seed_cast
from carnet.settings import Settings

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")


def _chromium() -> Path:
    """``CARNET_TEST_CHROMIUM`` if set, else Debian's package, else a chromium on the PATH."""
    configured = os.environ.get("CARNET_TEST_CHROMIUM")
    if configured:
        return Path(configured)
    found = shutil.which("chromium")
    return Path(found) if found and not DEBIAN_CHROMIUM.exists() else DEBIAN_CHROMIUM


CHROMIUM = _chromium()
# Headless, and quiet: the network is closed, so nothing may try to phone home (updates, sync,
# QUIC probes) and stall a page load.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CARNET_TEST_ARTIFACTS", ROOT / "test-artifacts"))
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 1,
}
PHONE_WIDTH = PHONE["viewport"]["width"]
# Impacts that fail a page; "moderate" and "minor" are kept in the saved report only.
BLOCKING_IMPACTS = ("serious", "critical")
# A page waits this long for an element before the test fails: the server is local, but a
# loaded two-core CI machine can be slow.
ACTION_TIMEOUT_MS = 15_000
HEALTH_TIMEOUT_S = 60
expect.set_options(timeout=ACTION_TIMEOUT_MS)
_CSP_REFUSAL = re.compile(r"Content Security Policy|Refused to (apply|execute|load|frame)")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None if Chromium is there."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"


_outcome: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: an end-to-end test in headless Chromium against a served Carnet"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if "ran" in _outcome:
        terminalreporter.write_line(
            f"Browser tests ran in {_outcome['ran']} (on SQLite); screenshots and axe reports "
            f"in {SCREENSHOTS}"
        )
    elif "skipped" in _outcome:
        terminalreporter.write_line(f"Browser tests SKIPPED: {_outcome['skipped']}", yellow=True)


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Debian's Chromium; the browser tests are skipped without it (and fail in CI)."""
    missing = chromium_missing()
    if missing is not None:
        if _in_ci():
            pytest.fail(f"CI is set, so the browser tests must run: {missing}", pytrace=False)
        _outcome["skipped"] = missing
        pytest.skip(f"browser tests skipped: {missing}")
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_driver(chromium_executable: Path) -> Iterator[Playwright]:
    """Playwright's driver process, for the whole session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright, chromium_executable: Path) -> Iterator[Browser]:
    """One headless Chromium for the whole session; each test opens its own contexts."""
    launched = playwright_driver.chromium.launch(
        executable_path=str(chromium_executable), args=CHROMIUM_ARGS
    )
    _outcome["ran"] = f"Chromium {launched.version}"
    yield launched
    launched.close()


# --- the served Carnet -------------------------------------------------------------------------


@dataclass
class ServedCarnet:
    """A Carnet served by ``carnet serve`` for this session, with its people."""

    url: str
    settings: Settings
    cast: Cast
    codes: OneTimeCodes
    server: subprocess.Popen[bytes]
    log: Path
    answering: bool = False

    def wait_until_answering(self) -> None:
        """Wait (once) for /health: the server boots while Chromium starts."""
        if not self.answering:
            _wait_for_health(self.url, self.server, self.log)
            self.answering = True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_health(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    # Generous: on a loaded two-core machine, importing Carnet alone can take several seconds.
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"carnet serve exited with {server.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.load(response).get("status") == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"carnet serve did not answer /health in {HEALTH_TIMEOUT_S} s:\n{_tail(log)}"
    )


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


@dataclass(frozen=True)
class RunningServer:
    """``carnet serve`` started on a fresh, migrated database: what each journey's Carnet runs."""

    url: str
    settings: Settings
    # The environment the server runs with, for the ``carnet …`` commands a journey runs itself.
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    log: Path


@contextmanager
def serve_carnet(
    tmp_path_factory: pytest.TempPathFactory, *, name: str, host: str, demo_idp: bool
) -> Iterator[RunningServer]:
    """Migrate a fresh SQLite database, start ``carnet serve`` on a free port at ``host``.

    The server is stopped on exit and its log kept as ``<name>-server.log`` in the artifacts.
    The caller waits for it to answer (``ServedCarnet.wait_until_answering``): it is not
    awaited here, so that seeding and launching Chromium overlap its start.
    """
    var_dir = tmp_path_factory.mktemp(f"{name}-var")
    port = _free_port()
    url = f"http://{host}:{port}"
    ours = {
        "CARNET_VAR_DIR": str(var_dir),
        "CARNET_DATABASE_URL": f"sqlite:///{var_dir / 'carnet.db'}",
        "CARNET_PUBLIC_URL": url,
        "CARNET_PORT": str(port),
        # The journeys must not race the scheduled jobs (openings, emergency expiry).
        "CARNET_JOBS_INTERVAL_SECONDS": "0",
        "CARNET_DEMO_IDP": "true" if demo_idp else "false",
    }
    # Nothing of the developer's own Carnet configuration leaks into the one tested.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CARNET_")}
    env.update(ours)
    carnet_cli = [sys.executable, "-m", "carnet"]
    upgraded = subprocess.run(
        [*carnet_cli, "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    assert upgraded.returncode == 0, f"carnet db upgrade failed:\n{upgraded.stderr}"
    # The same settings, for seeding from this process.
    settings = Settings(
        var_dir=var_dir,
        database_url=ours["CARNET_DATABASE_URL"],
        public_url=url,
        port=port,
        jobs_interval_seconds=0,
        demo_idp=demo_idp,
    )
    log = var_dir / "server.log"
    with log.open("wb") as output:
        # Started before the seeding, which it does not need until it answers: its imports
        # take seconds, as long as seeding and launching Chromium together.
        server = subprocess.Popen(
            [*carnet_cli, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield RunningServer(url, settings, env, server, log)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, ARTIFACTS / f"{name}-server.log")


@pytest.fixture(scope="session")
def carnet(
    chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedCarnet]:
    """Carnet on a fresh SQLite database, migrated, seeded, served on a free port.

    Tests wait for it to answer through ``pages`` (``wait_until_answering``).
    """
    with serve_carnet(tmp_path_factory, name="browser", host="127.0.0.1", demo_idp=True) as run:
        cast = seed_cast(run.settings)
        yield ServedCarnet(run.url, run.settings, cast, OneTimeCodes(), run.server, run.log)


# --- pages, screenshots, accessibility ---------------------------------------------------------

# The elements wider than the viewport (the innermost of each branch), for a readable message.
_TOO_WIDE = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  const wide = [...document.body.querySelectorAll("*")].filter(
    (e) => e.getBoundingClientRect().right > width + 1 && !e.closest(".table-wrap *"));
  const innermost = wide.filter((e) => !wide.some((other) => other !== e && e.contains(other)));
  return innermost.slice(0, 5).map(
    (e) => `<${e.tagName.toLowerCase()}${e.id ? " id=" + e.id : ""}> ends at ` +
      `${Math.round(e.getBoundingClientRect().right)} px`);
}"""


@dataclass
class Pages:
    """Opens browser contexts for one test (one per person, as on separate devices).

    Keeps what the pages did wrong without stopping the journey, for the test's end: a
    Content-Security-Policy refusal (an inline script or style slipped in), a phone page wider
    than the phone (it scrolls sideways).
    """

    browser: Browser
    carnet: ServedCarnet
    contexts: list[BrowserContext] = field(default_factory=list)
    csp_refusals: list[str] = field(default_factory=list)
    too_wide: list[str] = field(default_factory=list)
    twins: dict[int, Page] = field(default_factory=dict)

    def open(self, size: dict[str, Any] = DESKTOP, *, javascript: bool = True) -> Page:
        """A new page in a context of its own, in English, at ``size``, on the served Carnet."""
        context = self.browser.new_context(
            base_url=self.carnet.url,
            locale="en-GB",
            timezone_id="Europe/Luxembourg",
            java_script_enabled=javascript,
            **size,
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        page.on("console", lambda message: self._console(page, message.text))
        return page

    def _console(self, page: Page, text: str) -> None:
        if _CSP_REFUSAL.search(text):
            self.csp_refusals.append(f"{page.url}: {text}")

    def twin(self, page: Page) -> Page:
        """A page of the other size (phone for desktop, desktop for phone), signed in as
        ``page`` is: the cookies of ``page``'s context, copied as they are now."""
        twin = self.twins.get(id(page.context))
        if twin is None:
            twin = self.open(DESKTOP if _size_of(page) == "phone" else PHONE)
            self.twins[id(page.context)] = twin
        twin.context.clear_cookies()
        twin.context.add_cookies(page.context.cookies())  # type: ignore[arg-type]
        return twin

    def check_fits_phone(self, page: Page) -> None:
        """Note it if this phone-sized page is wider than the phone."""
        wide: list[str] = page.evaluate(_TOO_WIDE)
        if wide:
            self.too_wide.append(f"{page.url}: {'; '.join(wide)}")

    def problems(self) -> list[str]:
        """What the pages of the test did wrong, readably; empty if nothing."""
        found = []
        if self.csp_refusals:
            found.append("Content-Security-Policy refusals:")
            found.extend(f"  {refusal}" for refusal in self.csp_refusals)
        if self.too_wide:
            found.append(f"Pages wider than a {PHONE_WIDTH}-px phone (they scroll sideways):")
            found.extend(f"  {page}" for page in self.too_wide)
        return found

    def close(self) -> None:
        """Close every context the test opened."""
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(carnet: ServedCarnet, browser: Browser) -> Iterator[Pages]:
    """The test's browser contexts; the test fails at its end if a page broke the CSP or
    did not fit a phone's width."""
    # Carnet first, so that it boots while Chromium starts.
    carnet.wait_until_answering()
    opened = Pages(browser, carnet)
    yield opened
    opened.close()
    problems = opened.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(pages: Pages) -> Page:
    """A desktop page (1280x800) on the served Carnet."""
    return pages.open(DESKTOP)


@pytest.fixture
def phone_page(pages: Pages) -> Page:
    """A phone page (360x740, touch) on the served Carnet."""
    return pages.open(PHONE)


def _size_of(page: Page) -> str:
    viewport = page.viewport_size
    return "phone" if viewport is not None and viewport["width"] <= PHONE_WIDTH else "desktop"


class Shot(Protocol):
    """Saves screenshots of a page at desktop and phone sizes."""

    def __call__(self, page: Page, name: str, *, twin: bool = True) -> None: ...


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's screenshot directory, emptied: test-artifacts/screenshots/<test>/."""
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shot(pages: Pages, artifacts: Path) -> Shot:
    """``shot(page, name)``: <name>-desktop.png and <name>-phone.png of the page's URL.

    The page is shot as it is; the other size reloads its URL (a GET) in a context of that size
    holding the same cookies: pass ``twin=False`` for a page a GET cannot show again (a form's
    answer). Every phone-sized page shot is also checked to fit the phone's width.
    """

    def take(page: Page, name: str, *, twin: bool = True) -> None:
        shown = [page]
        if twin:
            other = pages.twin(page)
            other.goto(page.url)
            shown.append(other)
        for each in shown:
            size = _size_of(each)
            each.screenshot(path=artifacts / f"{name}-{size}.png", full_page=True)
            if size == "phone":
                pages.check_fits_phone(each)

    return take


class Accessible(Protocol):
    """Runs axe-core in a page and fails on serious or critical violations."""

    def __call__(self, page: Page, name: str) -> None: ...


def blocking_violations(report: dict[str, Any]) -> str:
    """The serious and critical violations of an axe report, readably; empty if none."""
    lines = []
    for violation in report.get("violations", []):
        if violation.get("impact") not in BLOCKING_IMPACTS:
            continue
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        lines.append(f"  {violation['helpUrl']}")
        for node in violation["nodes"][:5]:
            lines.append(f"    at {', '.join(map(str, node['target']))}: {node['html'][:200]}")
            summary = node.get("failureSummary")
            if summary:
                lines.extend(f"      {line}" for line in summary.splitlines())
        if len(violation["nodes"]) > 5:
            lines.append(f"    … and {len(violation['nodes']) - 5} more elements")
    return "\n".join(lines)


AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}


@pytest.fixture
def accessible(artifacts: Path) -> Accessible:
    """``accessible(page, name)``: axe-core's WCAG 2.1 A/AA and best-practice rules.

    The whole report goes to <name>-axe.json beside the screenshots; the test fails on any
    violation of impact serious or critical, listed with the elements concerned.
    """
    axe = Axe()

    def check(page: Page, name: str) -> None:
        report: dict[str, Any] = axe.run(page, options=AXE_OPTIONS).response
        (artifacts / f"{name}-axe.json").write_text(json.dumps(report, indent=2))
        problems = blocking_violations(report)
        assert not problems, f"axe-core: serious or critical violations on {page.url}:\n{problems}"

    return check
