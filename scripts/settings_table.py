"""Print the README's settings table from the settings model (tests/test_readme.py checks they agree).

.venv/bin/python scripts/settings_table.py            # print it
.venv/bin/python scripts/settings_table.py --write    # replace the table in README.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from talentbot.config import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
_TABLE = re.compile(r"\| variable \| default \| what it does \|\n(?:\|.*\|\n)+")


def table() -> str:
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if name == "embedding_model" and not default:
            shown = "(multilingual-e5-small)"
        elif field.default_factory is not None:  # a per-user folder: shown as on Linux, under ~
            shown = str(default).replace(str(Path.home()), "~", 1)
        else:
            shown = "" if default is None else str(default)
        rows.append(f"| `TALENTBOT_{name.upper()}` | `{shown}` | {field.description} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    if "--write" in sys.argv:
        text = README.read_text(encoding="utf-8")
        README.write_text(_TABLE.sub(lambda _: table(), text, count=1), encoding="utf-8")
    else:
        sys.stdout.write(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
