"""vLLM's error-message templates (data/vllm_templates.json.gz, written by tools/templates/): every message
vLLM's source raises or logs, per studied release, as typed records.

Here, in the catalog, so that data/ has one reader per schema (issue #19): diagnostics/templates.py builds its
word index from these records and never opens the file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

from planner.catalog.files import data_path

#: The file under data/.
TEMPLATES_FILE = "vllm_templates.json.gz"
#: The templates filed offline under their key words (tools/templates/build_index.py writes it from TEMPLATES_FILE;
#: diagnostics/templates.py reads it through ``template_index_bytes`` and checks it against ``templates_sha256``).
TEMPLATE_INDEX_FILE = "vllm_templates_index.json.gz"


@cache
def templates_sha256() -> str:
    """SHA-256 of TEMPLATES_FILE's bytes: what a stored index must have been built from."""
    return hashlib.sha256(data_path(TEMPLATES_FILE).read_bytes()).hexdigest()


def template_index_bytes() -> bytes:
    """TEMPLATE_INDEX_FILE as stored (gzip); OSError when it is missing (its reader then builds the index itself)."""
    return data_path(TEMPLATE_INDEX_FILE).read_bytes()


class ErrorTemplate(NamedTuple):
    """One message template (a NamedTuple: the file holds about 18,000, built in one pass on first use)."""

    #: The message with ``wildcard`` where a value is formatted in.
    template: str
    exception_type: str
    #: How the message leaves vLLM (``raise``, ``error``, ``warning``, ...).
    level: str
    #: The vLLM source file.
    module: str
    #: The studied releases that have it, as ranges (``0.10.2-0.34.0``), comma-separated.
    versions: str
    #: The generic class of failure it is tagged with (data/signatures.toml [template_classes]), or ``other``.
    class_name: str
    #: The tagging rule that chose the class.
    rule: str


#: The file's column of each ErrorTemplate field.
_COLUMNS = ("template", "exception_type", "level", "module", "versions", "class", "rule")


@dataclass(frozen=True)
class ErrorTemplates:
    """The whole file: the studied releases (oldest first), the wildcard and the templates in file order."""

    releases: tuple[str, ...]
    wildcard: str
    templates: tuple[ErrorTemplate, ...]


@cache
def error_templates() -> ErrorTemplates:
    with data_path(TEMPLATES_FILE).open("rb") as fh:
        data = json.loads(gzip.decompress(fh.read()))
    col = {name: i for i, name in enumerate(data["columns"])}
    index = [col[c] for c in _COLUMNS]
    return ErrorTemplates(
        releases=tuple(data["releases"]),
        wildcard=str(data["wildcard"]),
        templates=tuple(ErrorTemplate._make([row[i] for i in index]) for row in data["templates"]),
    )
