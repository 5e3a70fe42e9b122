"""The four packages cite only documents a reader of the repository can open: docs/theory.md by
its labels, docs/conventions.md by its section titles; never the specification notes, design
notes or seed papers the project started from, nor "the issue"."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dynamics", "symbolic", "empirical", "reports")
#: what `grep -rn "SPEC\|DESIGN.md\|seed 00\|the issue" dynamics symbolic empirical reports` finds
OUTSIDE = re.compile(r"SPEC|DESIGN.md|seed 00|the issue")
THEORY_LABEL = re.compile(r"docs/theory\.md[^()\n]{0,12}\(([LDO]\d+)\)")
CONVENTIONS_SECTION = re.compile(r'docs/conventions\.md,? "([^"]+)"')


def _texts():
    """(path, text) of every source and documentation file of the four packages."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                try:
                    yield path, path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue


def test_no_citation_of_a_document_outside_the_repository():
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path, text in _texts()
        for n, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_every_cited_label_and_section_exists():
    theory = (ROOT / "docs" / "theory.md").read_text(encoding="utf-8")
    conventions = (ROOT / "docs" / "conventions.md").read_text(encoding="utf-8")
    labels = set(re.findall(r"\*\*\(([LDO]\d+)\)", theory))
    sections = set(re.findall(r"^#+ (.+)$", conventions, flags=re.M))
    cited_labels, cited_sections, missing = set(), set(), []
    for path, text in _texts():
        flat = " ".join(text.split())  # a citation may be wrapped over two lines
        for label in THEORY_LABEL.findall(flat):
            cited_labels.add(label)
            if label not in labels:
                missing.append(f"{path.relative_to(ROOT)}: docs/theory.md ({label})")
        for section in CONVENTIONS_SECTION.findall(flat):
            cited_sections.add(section)
            if section not in sections:
                missing.append(f'{path.relative_to(ROOT)}: docs/conventions.md "{section}"')
    assert not missing, "\n".join(missing)
    # the check sees the citations (a pattern that matches nothing would pass vacuously)
    assert {"L10", "D5", "O2"} <= cited_labels and "Result files" in cited_sections
