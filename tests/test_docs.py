"""Every finding id is documented in docs/findings.md; every fixture has its provenance."""

import re
from pathlib import Path

from diagnostics.signatures import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_every_finding_id_is_documented():
    doc = (ROOT / "docs" / "findings.md").read_text()
    missing = sorted(s.id for s in catalog() if f"`{s.id}`" not in doc)
    assert not missing, missing


def test_no_undocumented_id_in_the_docs():
    doc = (ROOT / "docs" / "findings.md").read_text()
    known = {s.id for s in catalog()}
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", doc, re.M))
    assert listed <= known, sorted(listed - known)


def test_every_fixture_has_provenance():
    import fnmatch

    fixtures = ROOT / "tests" / "fixtures"
    for folder in ("bench", "nvml"):
        patterns = re.findall(r"`([^`]+)`", (fixtures / folder / "PROVENANCE.md").read_text())
        for f in (fixtures / folder).iterdir():
            if f.suffix in (".json", ".jsonl", ".xml", ".txt"):
                assert any(fnmatch.fnmatch(f.name, pat) for pat in patterns), f"{f} is not in PROVENANCE.md"
    for log in (fixtures / "logs").glob("*.log"):
        head = log.read_text(errors="replace").lstrip()
        assert head.startswith("# provenance:"), log
        first = head.split("\n(")[0][:600]
        assert re.search(r"[\w.-]+/[\w.-]+(?:#| PR #| @)|https://|vLLM [0-9.]+|vllm [0-9.]+", first), log


def test_the_id_tables_are_generated_from_the_catalog():
    """docs/findings.md's tables have one writer, python3 -m tools.findings_doc --write (issue 19): a catalog
    entry changed without regenerating them fails here."""
    from tools.findings_doc import BLOCK, render

    doc = (ROOT / "docs" / "findings.md").read_text()
    groups = {m.group("group") for m in BLOCK.finditer(doc)}
    assert groups == {s.group for s in catalog()}  # every group has its table
    assert render(doc) == doc
