"""Vulnerability audit of the locked dependencies (`requirements.lock`), with every finding explained.

    .venv/bin/python benchmarks/reliability/audit.py          # about a minute; rewrites its RELIABILITY.md section

1. `pip-audit -r requirements.lock --no-deps --disable-pip` with PyPI's and with OSV's vulnerability service.
2. What pip-audit could not audit (from this machine PyPI's per-version JSON API answers 404 and OSV is
   unreachable) is looked up in PyPI's per-project JSON (`https://pypi.org/pypi/NAME/json`), which does
   answer: its `vulnerabilities` are those of the latest release, the same data pip-audit's PyPI service
   reads, so they audit every locked package that is at its latest release. Packages behind their latest
   release are listed as not audited, with both versions.
3. Each finding is matched with EXPLAINED (why talentbot is or is not exposed, and what to do); a finding
   without an explanation fails the check.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import PY, ROOT, machine, md_table, write_section
from packaging.utils import canonicalize_name

LOCK = ROOT / "requirements.lock"

_CHROMA_SERVER = (
    "talentbot's default store is embedded (no server). In server mode it creates its collections "
    "with `embedding_function=None`, sends its own vectors and never sends an embedding-function "
    "configuration; the attack needs a client that can reach the Chroma server's HTTP API. Keep "
    "`chroma run` on loopback or a private network that only the app hosts reach (README, "
    "RELIABILITY.md: server mode). No fixed release exists yet: upgrade chromadb when one does."
)
_CHROMA_TENANT = (
    "Needs Chroma's authentication/RBAC with several tenants. talentbot uses one tenant and no "
    "Chroma auth; the server must not be shared with other tenants or exposed (see above). No fixed "
    "release exists yet."
)

# Advisory id or alias -> how talentbot is exposed and what to do. A finding matched by none fails the check.
EXPLAINED: dict[str, str] = {
    "CVE-2026-45829": _CHROMA_SERVER,  # pre-auth code injection through a collection's embedding-function config
    "CVE-2026-45833": _CHROMA_SERVER,  # the same through an update, with UPDATE_COLLECTION permission
    "CVE-2026-45830": _CHROMA_TENANT,  # cross-tenant access by any authenticated user
    "CVE-2026-45831": _CHROMA_TENANT,  # SimpleRBACAuthorizationProvider ignores the permission's scope
}

# Why a locked package is behind its latest release (from `pip install --dry-run` with the latest; 2026-11-27).
HELD_BACK: dict[str, str] = {
    "torch": "pinned: the CPU wheel 2.13.0 is what installs here without CUDA; the model loads from safetensors",
    "numpy": "no release for Python 3.11 in the index",
    "scipy": "no release for Python 3.11 in the index",
    "networkx": "no release for Python 3.11 in the index",
    "pillow": "gradio 6.31.0 caps it",
    "tomlkit": "gradio 6.31.0 caps it",
    "safehttpx": "gradio 6.31.0 caps it",
    "huggingface-hub": "langchain-huggingface 1.2.3 caps it",
    "langchain-core": "1.8.4 needs langchain-protocol>=0.0.22, not in the index",
    "mpmath": "sympy (a torch dependency) caps it",
    "uuid-utils": "another locked package caps it",
}

# Checked by hand where no service answers (see also the gradio advisories in the security section).
BY_HAND = """Advisories checked by hand against the locked versions:

| package (locked) | advisory | status here |
|---|---|---|
| gradio 6.31.0 | CVE-2024-47871, CVE-2024-47166 and the rest of the 2024 Trail of Bits set (CORS, SSRF, upload XSS) | fixed in 5.0.0 |
| gradio 6.31.0 | CVE-2026-27167 (mocked OAuth leaks the server's HF token), CVE-2026-28415 (OAuth open redirect), CVE-2026-28416 (SSRF via `gr.load`) | fixed in 6.6.0; talentbot uses neither OAuth nor `gr.load` |
| gradio 6.31.0 | CVE-2026-28414 (absolute path traversal, Windows + Python 3.13), GHSA-j36p-7w88-g82j (FileExplorer traversal) | fixed in 6.7.0 / 6.16.0; the traversal probes of the security section get 403 |
| gradio 6.31.0 | gradio-app/gradio#13594 (CORS Origin echoed for a forged Host) | **not fixed upstream**; mitigated by talentbot's TrustedHostMiddleware (security section: 400, no echo) |
| gradio_client 2.7.2 | GHSA-26jh-r8g2-6fpr (low confidence, fixed in 2.6.0) | past the fix |
"""


def locked() -> dict[str, str]:
    """name (normalised) -> version, from requirements.lock."""
    out = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def run_pip_audit(service: str) -> tuple[dict[str, list[dict]], set[str], str, bool]:
    """(findings by package, packages pip-audit skipped, one-line note, whether it ran)."""
    exe = Path(PY).with_name("pip-audit")
    if not exe.exists():
        return (
            {},
            set(),
            f"`-s {service}`: pip-audit is not installed (`pip install -e '.[test]'` brings it)",
            False,
        )
    try:
        done = subprocess.run(
            [
                str(exe),
                "-r",
                str(LOCK),
                "--no-deps",
                "--disable-pip",
                "-s",
                service,
                "--format",
                "json",
                "--progress-spinner",
                "off",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        return {}, set(), f"`-s {service}`: no answer in 900 s", False
    if not done.stdout.strip().startswith("{"):
        err = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        return (
            {},
            set(),
            f"`-s {service}`: failed (exit {done.returncode}): {err[-1][:160] if err else ''}",
            False,
        )
    deps = json.loads(done.stdout)["dependencies"]
    skipped = {canonicalize_name(d["name"]) for d in deps if d.get("skip_reason")}
    found = {canonicalize_name(d["name"]): d["vulns"] for d in deps if d.get("vulns")}
    reason = next((d["skip_reason"] for d in deps if d.get("skip_reason")), "")
    return (
        found,
        skipped,
        (
            f"`-s {service}`: {len(deps)} packages, {len(deps) - len(skipped)} audited, "
            f"{len(skipped)} skipped" + (f" ({reason[:90]})" if reason else "")
        ),
        True,
    )


def pypi_project(name: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as r:
            return json.load(r)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None


def audit() -> tuple[list[list], list[list], str, bool]:
    pins = locked()
    notes, by_pkg, audited = [], {}, set()
    for service in ("pypi", "osv"):
        found, skipped, note, ran = run_pip_audit(service)
        notes.append(note)
        for name, vulns in found.items():
            by_pkg.setdefault(name, []).extend(
                {
                    "id": v["id"],
                    "aliases": v.get("aliases", []),
                    "fixed": v.get("fix_versions", []),
                    "summary": v.get("description", ""),
                }
                for v in vulns
            )
        if ran:
            audited |= set(pins) - skipped
    todo = sorted(set(pins) - audited)
    with ThreadPoolExecutor(8) as pool:
        projects = dict(zip(todo, pool.map(pypi_project, todo), strict=True))
    behind, latest_ok, unreachable = [], 0, []
    for name in todo:
        data = projects[name]
        base = pins[name].split("+")[0]
        if data is None:
            unreachable.append(name)
            continue
        latest = data["info"]["version"]
        if latest != base:
            behind.append([name, pins[name], latest, HELD_BACK.get(name, "not checked")])
            continue
        latest_ok += 1
        for v in data.get("vulnerabilities") or []:
            if not v.get("withdrawn"):
                by_pkg.setdefault(name, []).append(
                    {
                        "id": v["id"],
                        "aliases": v.get("aliases") or [],
                        "fixed": v.get("fixed_in") or [],
                        "summary": v.get("summary") or v.get("details") or "",
                    }
                )
    notes.append(
        f"PyPI per-project JSON: {latest_ok} packages at their latest release audited, "
        f"{len(behind)} behind it (not audited), {len(unreachable)} unreachable"
    )
    findings, all_explained = [], True
    for name, vulns in sorted(by_pkg.items()):
        groups: dict[frozenset, dict] = {}
        for v in vulns:  # one row per advisory: GHSA, PYSEC and CVE ids of the same issue merged
            ids = frozenset([v["id"], *v["aliases"]])
            key = next((k for k in groups if k & ids), None)
            if key is None:
                groups[ids] = dict(v, ids=set(ids))
            else:
                groups[key]["ids"] |= ids
        for g in groups.values():
            why = next((EXPLAINED[i] for i in sorted(g["ids"]) if i in EXPLAINED), None)
            all_explained &= why is not None
            findings.append(
                [
                    name,
                    pins[name],
                    ", ".join(sorted(g["ids"])),
                    ", ".join(g["fixed"]) or "none yet",
                    g["summary"][:220],
                    why or "**NOT explained**",
                ]
            )
    return findings, behind, "; ".join(notes), all_explained


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-write", action="store_true", help="print only; leave RELIABILITY.md alone")
    args = ap.parse_args()
    findings, behind, note, ok = audit()
    verdict = (
        ("every finding explained" if ok else "**some findings are NOT explained**")
        if findings
        else "no known vulnerability in the packages audited"
    )
    body = "\n\n".join(
        [
            "## Dependency audit (`benchmarks/reliability/audit.py`)",
            "```bash\nbash scripts/lock.sh                                   # re-resolve requirements.lock (both set-up "
            "scripts install with it as constraints)\n.venv/bin/python benchmarks/reliability/audit.py      # about a "
            "minute\n```",
            f"Last run: {machine()}. `requirements.lock`: {len(locked())} packages. {note}.",
            f"Result: {len(findings)} advisories; {verdict}.",
            md_table(
                [
                    "package",
                    "locked",
                    "advisory",
                    "fixed in",
                    "summary",
                    "talentbot's exposure and what to do",
                ],
                findings,
            )
            if findings
            else "",
            (
                "Not audited here (behind their latest release, so PyPI's per-project data does not cover them; pip-audit "
                "covers them where `https://pypi.org/pypi/NAME/VERSION/json` or OSV answers):\n\n"
                + md_table(["package", "locked", "latest", "why not the latest"], behind)
            )
            if behind
            else "",
            BY_HAND,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("audit", body)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
