"""The installed dependency set, audited for known vulnerabilities with pip-audit.

pip-audit asks PyPI's JSON API (``--vulnerability-service pypi``; CI reaches PyPI and nothing
else) about every package installed in this environment. The verdict:

* a known vulnerability in any installed package fails the test — stokline's runtime
  dependencies, theirs, and the test tools alike;
* except in the packaging tools of the virtualenv itself (`TOOLING`: pip, setuptools, wheel). They
  come with the Python that made the venv, stokline neither imports nor ships them, and upgrading
  them is the job of whoever provisions that Python; they are reported as a warning instead;
* a package pip-audit could not audit is asked again of PyPI's project JSON
  (``/pypi/NAME/json``), whose ``vulnerabilities`` are those of the project's latest release: when
  that is the installed version, the package is audited with them. pip-audit needs the
  per-version JSON (``/pypi/NAME/VERSION/json``); a mirror or proxy that serves only the project
  JSON still lets every package that is at its latest release be audited;
* a package neither could audit (PyPI unreachable, or an older release than PyPI's latest where
  per-version data is not served) is never taken as clean: the test is **skipped with a reason
  saying which packages were not audited** (after failing on anything found in the others), or
  fails when ``STOKLINE_AUDIT_REQUIRED=1`` (``make audit`` sets it), for a CI that must audit all.

The same verdict is also checked on synthetic reports, so its rules hold even where PyPI's
vulnerability data cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

TOOLING = frozenset({"pip", "setuptools", "wheel"})
REQUIRED = "STOKLINE_AUDIT_REQUIRED"
# A release with published advisories (CVE-2024-22195 and later): a positive control that shows
# the service answers with vulnerabilities, not only with silence.
KNOWN_VULNERABLE = "jinja2==3.1.2"
# The same for the project JSON: ecdsa's maintainers do not fix its timing side channel
# (CVE-2024-23342) in the pure-Python package, so every release of it, the latest too, lists it.
LATEST_VULNERABLE = "ecdsa"
PYPI = "https://pypi.org/pypi"


@dataclass
class Verdict:
    """What an audit found, sorted by what the suite does about it."""

    failures: list[str] = field(default_factory=list)  # fail the suite
    tooling: list[str] = field(default_factory=list)  # warn only (see TOOLING)
    unaudited: dict[str, str] = field(default_factory=dict)  # name → why it was not audited
    audited: int = 0

    def found(self, name: str, version: str, vuln_id: str, fixes: list[str]) -> None:
        line = f"{name} {version}: {vuln_id} (fixed in {', '.join(fixes) or 'no fix yet'})"
        (self.tooling if name in TOOLING else self.failures).append(line)


def verdict(report: dict[str, Any]) -> Verdict:
    """Sort a ``pip-audit --format json`` report into failures, tooling warnings and gaps."""
    result = Verdict()
    for dep in report.get("dependencies", []):
        name = normalized(str(dep.get("name", "?")))
        version = dep.get("version", "?")
        if name == "stokline":
            continue  # this project itself, installed editable: not a dependency
        if "skip_reason" in dep:
            result.unaudited[name] = str(dep["skip_reason"])
            continue
        result.audited += 1
        for vuln in dep.get("vulns", []):
            result.found(name, version, str(vuln.get("id")), vuln.get("fix_versions") or [])
    return result


def latest_release_vulns(project: dict[str, Any], version: str) -> list[dict[str, Any]] | str:
    """From PyPI's project JSON: the vulnerabilities of ``version`` when it is the latest release
    (the only one the project JSON speaks for), else why this answer cannot audit it."""
    latest = str((project.get("info") or {}).get("version") or "")
    vulns = project.get("vulnerabilities")
    if not latest or not isinstance(vulns, list):
        return "PyPI's project JSON carries no vulnerability data"
    if latest != version:
        return (
            f"installed {version}, PyPI's latest is {latest}; the vulnerabilities of an older"
            " release are only in PyPI's per-version JSON, which did not answer"
        )
    return vulns


def complete_from_project_json(result: Verdict, installed: dict[str, str]) -> None:
    """Audit what pip-audit could not from PyPI's project JSON (see the module's docstring)."""

    def ask(name: str) -> tuple[str, list[dict[str, Any]] | str]:
        version = installed.get(name)
        if version is None:
            return name, result.unaudited[name]
        try:
            answer = httpx.get(f"{PYPI}/{name}/json", timeout=30, follow_redirects=True)
            answer.raise_for_status()
            return name, latest_release_vulns(answer.json(), version)
        except (httpx.HTTPError, ValueError) as exc:
            return name, f"{result.unaudited[name]}; PyPI's project JSON: {type(exc).__name__}"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, sorted(result.unaudited)))
    for name, answer in answers:
        if isinstance(answer, str):
            result.unaudited[name] = answer
            continue
        del result.unaudited[name]
        result.audited += 1
        for vuln in answer:
            result.found(name, installed[name], str(vuln.get("id")), vuln.get("fixed_in") or [])


def normalized(name: str) -> str:
    """A distribution's name as PyPI and pip-audit spell it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_versions() -> dict[str, str]:
    """This environment's distributions, by normalized name."""
    return {normalized(d.metadata["Name"]): d.version for d in metadata.distributions()}


def run_pip_audit(*args: str, cache: Path) -> dict[str, Any]:
    """pip-audit on this interpreter's environment; its JSON report, or a skip/fail if it broke."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--cache-dir",
        str(cache),
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    try:
        return json.loads(done.stdout)
    except ValueError:
        unavailable(
            f"pip-audit gave no report (exit status {done.returncode}): {done.stderr[-500:]}"
        )
        raise AssertionError("unreachable") from None


def unavailable(why: str) -> None:
    """The audit could not be done: never a pass. Fails when auditing is required, else skips."""
    message = f"dependency audit NOT done: {why}"
    if os.environ.get(REQUIRED) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _gaps(result: Verdict) -> str:
    gaps = [f"{name} ({why})" for name, why in sorted(result.unaudited.items())]
    shown = "; ".join(gaps[:8])
    more = f" (and {len(gaps) - 8} more)" if len(gaps) > 8 else ""
    return (
        f"{len(gaps)} of {len(gaps) + result.audited} packages could not be audited against"
        f" PyPI's vulnerability data ({result.audited} were, with nothing found): {shown}{more}."
        " pip-audit says 'not found on PyPI' whenever PyPI's per-version JSON API"
        " (https://pypi.org/pypi/NAME/VERSION/json) does not answer"
    )


def test_installed_dependencies_have_no_known_vulnerabilities(tmp_path_factory) -> None:
    cache = tmp_path_factory.mktemp("pip-audit-cache")
    result = verdict(run_pip_audit("--skip-editable", cache=cache))
    complete_from_project_json(result, installed_versions())
    for line in result.tooling:
        warnings.warn(f"vulnerable venv tooling (not a runtime dependency): {line}", stacklevel=1)
    assert not result.failures, "known vulnerabilities:\n" + "\n".join(result.failures)
    if result.unaudited:
        unavailable(_gaps(result))
    assert result.audited > 20  # the whole environment, not a fraction of it


def test_the_audit_sees_a_known_vulnerability(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(KNOWN_VULNERABLE + "\n")
    report = run_pip_audit(
        "--requirement", str(requirements), "--no-deps", "--disable-pip", cache=tmp_path / "cache"
    )
    result = verdict(report)
    if result.unaudited:
        unavailable(_gaps(result))
    assert any(line.startswith("jinja2 3.1.2:") for line in result.failures), result


def test_the_project_json_audit_sees_a_known_vulnerability() -> None:
    try:
        answer = httpx.get(f"{PYPI}/{LATEST_VULNERABLE}/json", timeout=30, follow_redirects=True)
        answer.raise_for_status()
        latest = answer.json()["info"]["version"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        unavailable(f"PyPI's project JSON did not answer: {type(exc).__name__}")
    result = Verdict(unaudited={LATEST_VULNERABLE: "not asked yet"})
    complete_from_project_json(result, {LATEST_VULNERABLE: latest})
    assert result.audited == 1 and not result.unaudited
    assert any(
        "CVE-2024-23342" in line or "GHSA-wj6h-64fc-37mp" in line for line in result.failures
    )


# ---------------------------------------------------------------------------------------------
# The verdict's rules, on synthetic reports
# ---------------------------------------------------------------------------------------------


def _dep(name: str, *vulns: str, skip: str | None = None) -> dict[str, Any]:
    if skip is not None:
        return {"name": name, "skip_reason": skip}
    return {
        "name": name,
        "version": "1.0",
        "vulns": [{"id": v, "fix_versions": ["1.1"]} for v in vulns],
    }


@pytest.mark.parametrize("runtime", ["jinja2", "httpx", "PyYAML", "prefect", "starlette"])
def test_a_vulnerable_runtime_dependency_fails(runtime: str) -> None:
    result = verdict({"dependencies": [_dep(runtime, "GHSA-xxxx"), _dep("pip")]})
    assert result.failures == [f"{runtime.lower()} 1.0: GHSA-xxxx (fixed in 1.1)"]


def test_vulnerable_venv_tooling_only_warns() -> None:
    result = verdict({"dependencies": [_dep("pip", "PYSEC-1"), _dep("setuptools", "PYSEC-2")]})
    assert result.failures == [] and len(result.tooling) == 2


def test_a_package_that_could_not_be_audited_is_never_clean() -> None:
    result = verdict(
        {"dependencies": [_dep("jinja2", skip="Dependency not found on PyPI"), _dep("httpx")]}
    )
    assert result.unaudited and result.audited == 1
    assert "1 of 2 packages could not be audited" in _gaps(result)


def _project(latest: str, *vulns: str) -> dict[str, Any]:
    return {
        "info": {"version": latest},
        "vulnerabilities": [{"id": v, "fixed_in": ["9.9"]} for v in vulns],
    }


def test_the_project_json_speaks_only_for_the_latest_release() -> None:
    assert latest_release_vulns(_project("2.0", "GHSA-1"), "2.0") == [
        {"id": "GHSA-1", "fixed_in": ["9.9"]}
    ]
    older = latest_release_vulns(_project("2.0"), "1.9")
    assert isinstance(older, str) and "installed 1.9, PyPI's latest is 2.0" in older
    assert isinstance(latest_release_vulns({"info": {"version": "2.0"}}, "2.0"), str)


def test_an_unreachable_service_skips_loudly_or_fails_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRED, raising=False)
    with pytest.raises(pytest.skip.Exception, match="dependency audit NOT done"):
        unavailable("no answer")
    monkeypatch.setenv(REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match="dependency audit NOT done"):
        unavailable("no answer")
