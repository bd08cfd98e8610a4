"""planner/catalog/signatures.py: the failure catalog read once into typed entries (issue 19)."""

from __future__ import annotations

import diagnostics.signatures as diag
from planner.catalog import signatures as cat


def test_the_catalog_is_read_once_and_shared_with_diagnostics():
    assert cat.catalog() is cat.catalog() is diag.catalog()
    assert diag.Signature is cat.Signature and diag.failure_spec() is cat.failure_spec()
    ids = [s.id for s in cat.catalog()]
    assert len(ids) == len(set(ids)) and all(isinstance(s, cat.Signature) for s in cat.catalog())


def test_entries_are_typed():
    sig = diag.signature(next(s.id for s in cat.catalog() if s.workaround is not None and s.workaround.when))
    assert sig.workaround is not None and dict(sig.workaround.env) and dict(sig.workaround.when)["since"]
    assert all(p.pattern for s in cat.catalog() for p in s.patterns)
    assert cat.template_classes() and set(cat.failure_classes().values()) <= set(cat.template_classes())
    assert all(hasattr(p, "search") for p in cat.generic_exceptions())


def test_workarounds_are_the_catalog_entries_workarounds_without_compiling_it() -> None:
    from planner.catalog.signatures import catalog, workarounds

    assert workarounds() == tuple((s.id, s.workaround) for s in catalog() if s.workaround is not None)
    assert workarounds()  # the catalog holds some (planner size's docker env reads them)
