"""Every finding id the code can emit is documented in docs/findings.md."""

import re
from pathlib import Path

from diagnostics.signatures import signatures

ROOT = Path(__file__).resolve().parent.parent


def emitted_ids():
    ids = {s.id for s in signatures()}
    for path in (ROOT / "diagnostics").glob("*.py"):
        ids |= set(re.findall(r'Finding\(\s*"([a-z0-9-]+)"', path.read_text()))
        ids |= set(re.findall(r'\(\s*"([a-z0-9-]+)",\s*"(?:error|warning)"', path.read_text()))
    return ids - {"error", "warning", "info"}


def test_every_finding_id_is_documented():
    doc = (ROOT / "docs" / "findings.md").read_text()
    missing = sorted(i for i in emitted_ids() if f"`{i}`" not in doc)
    assert not missing, missing


def test_every_fixture_has_provenance():
    import fnmatch

    fixtures = ROOT / "tests" / "fixtures"
    for folder in ("bench", "nvml"):
        patterns = re.findall(r"`([^`]+)`", (fixtures / folder / "PROVENANCE.md").read_text())
        for f in (fixtures / folder).iterdir():
            if f.suffix in (".json", ".jsonl", ".xml", ".txt"):
                assert any(fnmatch.fnmatch(f.name, pat) for pat in patterns), f"{f} is not in PROVENANCE.md"
    for log in (fixtures / "logs").glob("*.log"):
        assert log.read_text(errors="replace").lstrip().startswith("# provenance:"), log
