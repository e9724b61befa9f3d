"""The installed dependency set, audited for known vulnerabilities with pip-audit.

pip-audit asks PyPI's JSON API (``--vulnerability-service pypi``; CI reaches PyPI and nothing
else) about every package installed in this environment. The verdict:

* a known vulnerability in any installed package fails the test — stokline's runtime
  dependencies, theirs, and the test tools alike;
* except in the packaging tools of the virtualenv itself (`TOOLING`: pip, setuptools, wheel). They
  come with the Python that made the venv, stokline neither imports nor ships them, and upgrading
  them is the job of whoever provisions that Python; they are reported as a warning instead;
* a package pip-audit could not audit (PyPI unreachable, or not answering per-version queries) is
  never taken as clean: the test is **skipped with a reason saying the audit did not happen**, or
  fails when ``STOKLINE_AUDIT_REQUIRED=1`` (``make audit`` sets it), for a CI that must audit.

The same verdict is also checked on synthetic reports, so its rules hold even where PyPI's
vulnerability data cannot be reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TOOLING = frozenset({"pip", "setuptools", "wheel"})
REQUIRED = "STOKLINE_AUDIT_REQUIRED"
# A release with published advisories (CVE-2024-22195 and later): a positive control that shows
# the service answers with vulnerabilities, not only with silence.
KNOWN_VULNERABLE = "jinja2==3.1.2"


@dataclass
class Verdict:
    """What an audit found, sorted by what the suite does about it."""

    failures: list[str] = field(default_factory=list)  # fail the suite
    tooling: list[str] = field(default_factory=list)  # warn only (see TOOLING)
    unaudited: list[str] = field(default_factory=list)  # the audit did not happen for these
    audited: int = 0


def verdict(report: dict[str, Any]) -> Verdict:
    """Sort a ``pip-audit --format json`` report into failures, tooling warnings and gaps."""
    result = Verdict()
    for dep in report.get("dependencies", []):
        name = str(dep.get("name", "?")).lower()
        version = dep.get("version", "?")
        if "skip_reason" in dep:
            result.unaudited.append(f"{name} ({dep['skip_reason']})")
            continue
        result.audited += 1
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fix yet"
            line = f"{name} {version}: {vuln.get('id')} (fixed in {fixes})"
            (result.tooling if name in TOOLING else result.failures).append(line)
    return result


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
    shown = "; ".join(result.unaudited[:3])
    more = f" (and {len(result.unaudited) - 3} more)" if len(result.unaudited) > 3 else ""
    return (
        f"pip-audit could not audit {len(result.unaudited)} of "
        f"{len(result.unaudited) + result.audited} packages against PyPI's vulnerability data: "
        f"{shown}{more}. pip-audit says 'not found on PyPI' whenever PyPI's per-version JSON API"
        " (https://pypi.org/pypi/NAME/VERSION/json) does not answer"
    )


def test_installed_dependencies_have_no_known_vulnerabilities(tmp_path_factory) -> None:
    cache = tmp_path_factory.mktemp("pip-audit-cache")
    result = verdict(run_pip_audit("--skip-editable", cache=cache))
    if result.unaudited:
        unavailable(_gaps(result))
    for line in result.tooling:
        warnings.warn(f"vulnerable venv tooling (not a runtime dependency): {line}", stacklevel=1)
    assert not result.failures, "known vulnerabilities:\n" + "\n".join(result.failures)
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
    assert "could not audit 1 of 2 packages" in _gaps(result)


def test_an_unreachable_service_skips_loudly_or_fails_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRED, raising=False)
    with pytest.raises(pytest.skip.Exception, match="dependency audit NOT done"):
        unavailable("no answer")
    monkeypatch.setenv(REQUIRED, "1")
    with pytest.raises(pytest.fail.Exception, match="dependency audit NOT done"):
        unavailable("no answer")
