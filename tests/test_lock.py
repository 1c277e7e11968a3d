"""requirements.lock, the tested and audited versions, agrees with pyproject.toml (scripts/lock.sh re-resolves it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if m:
            pins[canonicalize_name(m.group(1))] = Version(m.group(2))
    return pins


def test_every_declared_dependency_is_locked_at_a_version_it_allows():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    pins = _locked()
    missing = [str(r) for r in declared if canonicalize_name(r.name) not in pins]
    assert not missing, f"not in requirements.lock (run scripts/lock.sh): {missing}"
    outside = [
        f"{r} (locked {pins[canonicalize_name(r.name)]})"
        for r in declared
        if not r.specifier.contains(pins[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"requirements.lock disagrees with pyproject.toml (run scripts/lock.sh): {outside}"


def test_lock_holds_the_cpu_torch_and_no_cuda_packages():
    pins = _locked()
    assert pins["torch"].base_version == "2.13.0"
    assert pins["torch"].local in (None, "cpu")
    assert not [n for n in pins if n.startswith("nvidia") or n == "triton"]
    assert "talentbot" not in pins  # the project itself is installed editable, never pinned
