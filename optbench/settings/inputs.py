"""Reading the files a user hands to optbench (sweep, suite and matrix TOML, baseline JSON), bounded.

Every such file is read here, by :func:`read_toml` or :func:`read_json`, so every one gets the same
limits and the same one-line messages. A file is refused before it is parsed when it is larger than
:data:`MAX_BYTES` or nests arrays and tables (``[`` / ``{``) deeper than :data:`MAX_DEPTH`: Python's
``tomllib`` and ``json`` parse nested values recursively, so a file nested a few thousand levels deep
would otherwise end in a ``RecursionError`` instead of a message. Nesting made without brackets (TOML's
dotted keys ``a.b.c = 1``) is measured on the parsed value, against the same limit.

What a file says is checked by its reader (:mod:`optbench.settings.config`, :mod:`optbench.studies.bench`,
:mod:`optbench.quality.matrix`, :mod:`optbench.quality.regression`). Torch-free.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from optbench.errors import InvalidValueError

MAX_BYTES = 1024 * 1024  # far above any real sweep, suite, matrix or baseline (a few kB)
MAX_DEPTH = 32  # levels of [ and {; real files use two or three

# What changes the nesting depth, or hides brackets from it (strings; TOML comments).
_TOML_TOKENS = re.compile(r"\"\"\"|'''|[\"'#\[\]{}]")
_JSON_TOKENS = re.compile(r"[\"\[\]{}]")
# Where each kind of string ends (a backslash escapes the next character in basic strings only).
_STRING_END = {
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*"""("{0,2})', re.DOTALL),  # content may end in one or two quotes
    "'''": re.compile(r"(?:[^']|'(?!''))*'''('{0,2})", re.DOTALL),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
    "#": re.compile(r"[^\n]*"),
}


def read_toml(path: str | Path, label: str = "--config") -> dict[str, Any]:
    """A TOML file as a dict, or one line (naming ``label`` and the file) saying why it cannot be read."""
    path, raw = _read(path, label)
    try:
        text = raw.decode("utf-8")
        _check_depth(text, _TOML_TOKENS, path, label)
        data = tomllib.loads(text)
    except RecursionError:  # nesting the scan could not see (it stops at a string it cannot end)
        raise _too_deep(path, label) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"{label} {str(path)!r} is not valid TOML: {exc}") from None
    _check_parsed_depth(data, path, label)
    return data


def read_json(path: str | Path, label: str) -> Any:
    """A JSON file's value, bounded as :func:`read_toml`. Malformed JSON raises :class:`json.JSONDecodeError`
    or :class:`UnicodeDecodeError`: its reader knows what the file was meant to be and says so."""
    path, raw = _read(path, label)
    text = raw.decode("utf-8")
    _check_depth(text, _JSON_TOKENS, path, label)
    try:
        return json.loads(text)
    except RecursionError:  # nesting the scan could not see (it stops at a string it cannot end)
        raise _too_deep(path, label) from None


def _read(path: str | Path, label: str) -> tuple[Path, bytes]:
    path = Path(path)
    if not path.is_file():
        raise InvalidValueError(f"{label} {str(path)!r} does not exist")
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)  # never more, whatever the file claims to be
    except OSError as exc:
        raise InvalidValueError(f"{label} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise InvalidValueError(
            f"{label} {str(path)!r} is larger than the limit of {MAX_BYTES:,} bytes for an input file"
        )
    return path, data


def _too_deep(path: Path, label: str) -> InvalidValueError:
    return InvalidValueError(f"{label} {str(path)!r} nests deeper than the limit of {MAX_DEPTH} levels")


def _check_depth(text: str, tokens: re.Pattern[str], path: Path, label: str) -> None:
    """Count the open brackets outside strings and comments, before the recursive parser sees them.

    An unterminated string ends the scan: the parser then says what is wrong with it."""
    depth, at = 0, 0
    while match := tokens.search(text, at):
        token, at = match.group(), match.end()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(path, label)
        elif token in "]}":
            depth = max(depth - 1, 0)
        else:
            end = _STRING_END[token].match(text, at)
            if end is None:
                return
            at = end.end()


def _check_parsed_depth(data: Any, path: Path, label: str) -> None:
    """The depth of the parsed value (dotted keys nest tables without brackets), walked without recursion."""
    stack = [(data, 0)]  # the file's own table is level 0, as for the bracket count
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(path, label)
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
