"""A file's header names matched to request fields: by path, by label, or by a mapping file.

People type headers their own way ("Current drop (mm)", "knee to wall L", "ACHILLES_PAIN"), so
case, spaces, punctuation, a byte-order mark and the field's unit (in brackets or not) do not
matter; the field table's paths and labels are the names. A column that matches no field but
looks like one (a typo, another unit, a label with a word added) is refused: left out silently,
it would change the answers while every row still says ok (docs/batch.md, "Input").
"""

import difflib
import re
import tomllib
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from service.core.errors import InvalidInput
from service.core.fields import BY_PATH, FIELDS, Field

UNIT_WORDS = {  # how a header may spell each unit of the field table, normalised
    "mm": ("mm", "millimetres", "millimeters"),
    "cm": ("cm", "centimetres", "centimeters"),
    "kg": ("kg",),
    "km": ("km",),
    "weeks": ("weeks", "wks"),
    "years": ("years", "yrs"),
    "hours": ("hours", "hrs"),
    "degrees": ("degrees", "deg"),
    "/10": ("10", "0 10"),
}
SIDES = {"l": "left", "lt": "left", "r": "right", "rt": "right"}
MINOR_WORDS = {"a", "an", "the", "in", "of", "or", "to", "on", "per", "since", "after", "with"}
CLOSE = 0.8  # difflib ratio from which an unmatched header looks like a field's name


def normal(text: str) -> str:
    """A header as compared: words in lower case, any punctuation a single space, sides spelt out.

    "Knee-to-wall, L (cm)" and "knee_to_wall_L_cm" both give "knee to wall left cm".
    """
    text = unicodedata.normalize("NFKC", text.replace("\ufeff", ""))
    words = re.findall(r"[^\W_]+", text.casefold())
    return " ".join(SIDES.get(word, word) for word in words)


def _camel(text: str) -> str:
    """A camelCase header's words apart ("currentDropMm": "current Drop Mm"), tried second, as
    capitals typed at random ("client reF") are not word breaks."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)


def _forms(f: Field) -> set[str]:
    """Every normal spelling of a field's name: path, path without its group, label, with unit."""
    forms = {normal(f.path), normal(f.path.split(".", 1)[-1]), normal(f.label)}
    for unit in UNIT_WORDS.get(f.unit or "", ()):
        forms.add(f"{normal(f.label)} {unit}")
    return forms


def _names() -> dict[str, str]:
    """Normal spelling -> field path, for spellings that belong to one field only."""
    owners: dict[str, set[str]] = {}
    for f in FIELDS:
        for form in _forms(f):
            owners.setdefault(form, set()).add(f.path)
        leaf = f.path.rsplit(".", 1)[-1]  # "achilles_pain", where no other field ends so
        owners.setdefault(normal(leaf), set()).add(f.path)
    return {form: paths.pop() for form, paths in owners.items() if len(paths) == 1}


NAMES = _names()
_KEY_WORDS = {  # a label's words that say what it is, for labels of two or more of them
    f.path: words for f in FIELDS if len(words := set(normal(f.label).split()) - MINOR_WORDS) >= 2
}


def field_of(name: str) -> str | None:
    """The field a header names by path or by a spelling of its name, if any (no mapping)."""
    path = name.strip()
    if path in BY_PATH:
        return path
    return NAMES.get(normal(name)) or NAMES.get(normal(_camel(name)))


def typed(f: Field) -> str:
    """A field's label as a header: "Current drop (mm)"."""
    return f"{f.label} ({f.unit})" if f.unit else f.label


def expected() -> str:
    """Every header a file may use, one field a line, for error messages."""
    width = max(len(f.path) for f in FIELDS)
    lines = [
        f"  {f.path:<{width}}  or  {typed(f)}{'  (required)' if f.required else ''}" for f in FIELDS
    ]
    return "the headers are (paths or labels; case, spaces and a unit in brackets do not " \
        "matter; --columns MAP.toml maps others):\n" + "\n".join(lines)  # fmt: skip


def resembles(name: str) -> str | None:
    """The field whose name a header that matched none looks like, if any."""
    text = normal(name)
    if not text:
        return None
    close = difflib.get_close_matches(text, NAMES, n=1, cutoff=CLOSE)
    if close:
        return NAMES[close[0]]
    words = set(text.split())
    for path, key_words in _KEY_WORDS.items():
        if key_words <= words:
            return path
    return None


@dataclass
class Header:
    """A file's columns matched to fields."""

    known: dict[str, int] = field(default_factory=dict)  # field path -> column position
    matched: list[tuple[str, str]] = field(default_factory=list)  # (header, path), not verbatim
    unknown: list[str] = field(default_factory=list)  # passed through untouched
    resembling: list[tuple[str, str]] = field(default_factory=list)  # (unknown header, path)
    unused: list[str] = field(default_factory=list)  # mapping entries no header matched


def read_mapping(path: Path) -> dict[str, str]:
    """A `--columns` file: `"Their header" = "field.path"` (or "" to pass it through)."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read the column map {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"the column map {path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"the column map {path} is not TOML ({exc})") from None
    problems = []
    for header, target in data.items():
        if not isinstance(target, str):
            problems.append(f'{header!r} must map to a field path in quotes, like '
                            f'"footwear.current_drop_mm" (or "" to pass it through)')  # fmt: skip
        elif target and target not in BY_PATH:
            near = difflib.get_close_matches(target, BY_PATH, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"{header!r} maps to {target!r}, which is no field{hint}")
    targets = Counter(t for t in data.values() if isinstance(t, str) and t)
    for target, count in targets.items():
        if count > 1:
            headers = ", ".join(repr(h) for h, t in data.items() if t == target)
            problems.append(f"{headers} all map to {target}")
    spellings = Counter(normal(h) for h in data)
    for header in data:
        if spellings[normal(header)] > 1:
            problems.append(f"{header!r} is mapped twice (case, spaces and punctuation aside)")
    if problems:
        raise InvalidInput(f"the column map {path}: " + "; ".join(problems))
    return data


def match(names: list[str], mapping: dict[str, str] | None = None) -> Header:
    """Each header name's field: mapped, by path verbatim, or by a normal spelling."""
    mapped = {normal(h): t for h, t in (mapping or {}).items()}
    header, by = Header(), dict[str, str]()
    seen = Counter(name.strip() for name in names)
    twice = sorted(name for name, count in seen.items() if count > 1)
    if twice:
        raise InvalidInput(f"the header names {', '.join(map(repr, twice))} more than once")
    for i, name in enumerate(names):
        text = normal(name)
        path = mapped[text] if text in mapped else field_of(name) or ""
        if not path:
            header.unknown.append(name)
            if text not in mapped and (like := resembles(name)):
                header.resembling.append((name, like))
            continue
        if path in by:
            raise InvalidInput(
                f"{path} is named more than once: by {by[path]!r} and {name!r} (rename or map "
                "one of them with --columns)"
            )
        by[path] = name
        header.known[path] = i
        if name.strip() != path:
            header.matched.append((name, path))
    texts = {normal(name) for name in names}
    header.unused = [h for h in (mapping or {}) if normal(h) not in texts]
    return header


def check(header: Header, allow_unknown: bool) -> None:
    """InvalidInput, listing the expected headers, for a missing required field or a column
    that looks like a field but would be passed through (unless `allow_unknown`)."""
    missing = [f for f in FIELDS if f.required and f.path not in header.known]
    if missing:
        names = ", ".join(f"{f.path} ({typed(f)})" for f in missing)
        raise InvalidInput(f"no column for {names} (is it a CSV of requests?); {expected()}")
    if header.resembling and not allow_unknown:
        each = "; ".join(
            f"{name!r} looks like {path} ({typed(BY_PATH[path])})"
            for name, path in header.resembling
        )
        raise InvalidInput(
            f"columns that look like fields would be passed through unread: {each}. Rename "
            "them, map them with --columns MAP.toml, or pass them through with "
            f"--allow-unknown; {expected()}"
        )
