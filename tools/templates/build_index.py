"""Write data/vllm_templates_index.json.gz: the error templates filed under their key words, built offline.

    python3 tools/templates/build_index.py            # after tools/templates/extract.py changed the templates
    python3 tools/templates/build_index.py --check    # exit 1 when the shipped file is not what this would write

Why offline: filing a template under its rarest word needs every template's words counted first, 1.5-2.5 s that the
first `diagnose --log` quoting an unrecognized exception used to pay. The content is diagnostics/templates.py's
``index_file_bytes`` (the module that reads it defines it); this script only gzips it (mtime 0) and writes it
atomically. tests/test_templates.py checks that regenerating gives the same content; diagnose never trusts a stale
file (it records the templates file's SHA-256 and the filing's parameters, and the index is built in process when
they differ).
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from diagnostics.templates import INDEX_FILE, gzip_bytes, index_file_bytes  # noqa: E402  (a checkout, not an install)
from planner.atomic import write_bytes_atomic  # noqa: E402

TARGET = ROOT / "data" / INDEX_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    args = parser.parse_args(argv)
    raw = index_file_bytes()
    if args.check:
        try:
            shipped = gzip.decompress(TARGET.read_bytes())
        except (OSError, EOFError) as exc:
            print(f"build_index: error: cannot read {TARGET}: {exc}", file=sys.stderr)
            return 1
        if shipped != raw:
            print(f"build_index: {TARGET.name} is stale: run python3 tools/templates/build_index.py", file=sys.stderr)
            return 1
        print(f"{TARGET.name} is current ({len(raw):,} bytes uncompressed)")
        return 0
    data = gzip_bytes(raw)
    write_bytes_atomic(TARGET, data)
    print(f"wrote {TARGET.relative_to(ROOT)}: {len(data):,} bytes ({len(raw):,} uncompressed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
