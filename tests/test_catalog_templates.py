"""planner/catalog/templates.py: vLLM's error templates read once, as typed records (issue 19)."""

from __future__ import annotations

from planner.catalog.templates import error_templates


def test_the_templates_are_typed_records_in_file_order():
    data = error_templates()
    assert data is error_templates()  # cached: read once per process
    # oldest first; "0.6.6.post1" sorts by its release numbers
    assert data.releases == tuple(sorted(data.releases, key=lambda r: tuple(int(x) for x in r.split(".")[:3])))
    assert len(data.templates) > 10000 and data.wildcard
    first = data.templates[0]
    assert first.template == "module {*} has no attribute {*}" and first.exception_type == "AttributeError"
    assert (first.level, first.module, first.class_name) == ("raise", "vllm/__init__.py", "other")
    assert all(t.versions for t in data.templates[:100])
