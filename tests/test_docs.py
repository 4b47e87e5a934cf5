"""The reference pages are current, complete, and the repository refers to nothing outside it."""

import re
import subprocess
from pathlib import Path

import pytest

from service import reference
from service.core.fields import FIELDS
from service.core.rules import load_rules

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# Documents that are not in the repository, and paths out of it.
OUTSIDE = re.compile(r"\b(?:SPEC|DOMAIN|RULES)\.md\b|\bDOMAIN\b|\bSPEC\b|\.\./shared|/work/shared")
THIS = Path(__file__).relative_to(ROOT).as_posix()
CITATION = re.compile(r"^([A-Z][^(]*? \d{4})\b")  # "Hoch & McKeon 2011", "James 2013 review"


@pytest.mark.parametrize("name", sorted(reference.pages()))
def test_each_generated_page_is_current(name):
    written = (DOCS / name).read_text(encoding="utf-8")
    assert written == reference.pages()[name], (
        f"docs/{name} is out of date: run `{reference.COMMAND}` and commit the result"
    )


def test_the_field_page_lists_every_field_with_its_unit_and_words():
    rows = {
        line.split("|")[1].strip().split("`")[1]: line
        for line in reference.fields_page().splitlines()
        if line.startswith("| `")
    }
    assert list(rows) == [f.path for f in FIELDS]
    for f in FIELDS:
        assert f.about.split(".")[0] in rows[f.path], f.path
        assert f"| {f.unit or ''} |" in rows[f.path], f.path
    assert "(**required**)" in rows["footwear.current_drop_mm"]


def test_the_rule_page_gives_every_rule_its_grade_sources_and_rationale():
    page = reference.rules_page()
    sections = page.split("\n### ")[1:]
    rules = load_rules()
    assert [s.split()[0] for s in sections] == [
        r.id for stage in reference.STAGE_WORDS for r in rules if r.stage == stage
    ]
    by_id = {s.split()[0]: s for s in sections}
    for rule in rules:
        section = by_id[rule.id]
        assert f"- Grade: {rule.grade}; sources: {'; '.join(rule.sources)}" in section
        assert rule.rationale in section and rule.name in section


def test_the_evidence_page_cites_every_study_a_rule_names():
    evidence = " ".join((DOCS / "evidence.md").read_text(encoding="utf-8").split())
    cited = {m.group(1) for r in load_rules() for s in r.sources if (m := CITATION.match(s))}
    assert len(cited) >= 20
    assert sorted(c for c in cited if c not in evidence) == []


def test_the_command_writes_the_pages_and_check_finds_them_stale(tmp_path, capsys):
    assert reference.main([str(tmp_path), "--check"]) == 1
    assert reference.COMMAND in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # --check writes nothing
    assert reference.main([str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fields.md", "rules.md"]
    assert reference.main([str(tmp_path), "--check"]) == 0
    (tmp_path / "rules.md").write_text("old", encoding="utf-8")
    assert reference.main([str(tmp_path), "--check"]) == 1


def test_no_tracked_file_refers_to_documents_outside_the_repository():
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    found = []
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if name == THIS or not path.is_file():  # this test names them; a file deleted, unstaged
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # an image
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert found == []
