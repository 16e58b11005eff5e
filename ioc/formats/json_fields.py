"""Typed reading of decoded JSON documents for the JSON format parsers (ECS, OCSF, Wazuh,
Uptime Kuma, Alertmanager webhooks): every value comes with its JSON pointer, so a problem is
reported at the exact field.

Shared rules: identifiers (``Code`` fields) longer than 64 characters or empty when required
are refused, never cut; empty optional identifiers count as absent; free text is cut with an
ellipsis; JSON ``null`` counts as absent; a NUL character or a lone surrogate in a field read,
or anywhere in a document kept as ``raw``, is refused at its pointer (PostgreSQL text and
jsonb cannot store either); other control characters are kept verbatim.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Mapping
from typing import Final, Literal, overload

import msgspec

from ioc.events import SecurityCategory
from ioc.formats.common import FormatError, pointer, stable_event_id

EVENT_ID: Final = re.compile(r"[A-Za-z0-9._:@/-]{1,128}")
CODE_MAX: Final = 64
TEXT_MAX: Final = 1024
# Most specific first: a DDoS on a web server is a DDoS, not an intrusion.
CATEGORY_PRIORITY: Final[tuple[SecurityCategory, ...]] = (
    "ddos",
    "web_defacement",
    "data_leak",
    "phishing",
    "malware",
    "brute_force",
    "vulnerability",
    "intrusion",
    "policy",
)
# Free-text category names (normalised) that say one of ours outright.
CATEGORY_NAMES: Final[Mapping[str, SecurityCategory]] = {
    **{c: c for c in CATEGORY_PRIORITY},
    **dict.fromkeys(("dos", "denial_of_service", "flood"), "ddos"),
    **dict.fromkeys(("defacement", "website_defacement"), "web_defacement"),
    **dict.fromkeys(("data_loss", "exfiltration", "dlp", "data_exfiltration"), "data_leak"),
    **dict.fromkeys(("bruteforce", "password_guessing", "credential_stuffing"), "brute_force"),
    **dict.fromkeys(("ransomware", "virus", "trojan", "rootkit", "spyware"), "malware"),
    **dict.fromkeys(("spam", "spear_phishing"), "phishing"),
    **dict.fromkeys(("exploit", "attack", "intrusion_detection", "web_attack"), "intrusion"),
    **dict.fromkeys(("vulnerabilities", "cve"), "vulnerability"),
    **dict.fromkeys(("compliance", "policy_violation", "misconfiguration"), "policy"),
}
_NUL_ESCAPE: Final = b"\\u0000"
_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)
Key = str | int  # a step of a JSON pointer: object member or array index


def as_object(value: object, at: str) -> dict[str, object]:
    """The JSON object at ``at``, or a :class:`FormatError` naming what came instead."""
    if not isinstance(value, dict):
        raise FormatError(at, f"expected an object, got {kind_of(value)}")
    return value


def as_array(value: object, at: str) -> list[object]:
    """The JSON array at ``at``, or a :class:`FormatError` naming what came instead."""
    if not isinstance(value, list):
        raise FormatError(at, f"expected an array, got {kind_of(value)}")
    return value


def lookup(obj: Mapping[str, object], *path: Key) -> tuple[object, str]:
    """The value at ``path`` (None when absent or null) and its pointer; a string key reads
    an object, an integer an array. A wrong type on the way is an error, not an absence: it
    means the producer's shape is wrong."""
    cur: object = obj
    for i, key in enumerate(path):
        if cur is None:
            break
        if isinstance(key, int):
            items = as_array(cur, pointer(*path[:i]))
            cur = items[key] if key < len(items) else None
        else:
            cur = as_object(cur, pointer(*path[:i])).get(key)
    return cur, pointer(*path)


def array_length(obj: Mapping[str, object], *path: Key) -> int:
    """How many items the array at ``path`` has (0 when absent), to index it with lookup."""
    value, at = lookup(obj, *path)
    return 0 if value is None else len(as_array(value, at))


@overload
def text(obj: Mapping[str, object], *path: Key, required: Literal[True]) -> str: ...
@overload
def text(obj: Mapping[str, object], *path: Key, required: bool = False) -> str | None: ...
def text(obj: Mapping[str, object], *path: Key, required: bool = False) -> str | None:
    """A string field; NUL refused at its pointer, other characters kept verbatim."""
    value, at = lookup(obj, *path)
    if value is None:
        if required:
            raise FormatError(at, "missing required field")
        return None
    if not isinstance(value, str):
        raise FormatError(at, f"expected a string, got {kind_of(value)}")
    if (problem := _text_problem(value)) is not None:
        raise FormatError(at, problem)
    return value


@overload
def code(obj: Mapping[str, object], *path: Key, required: Literal[True]) -> str: ...
@overload
def code(obj: Mapping[str, object], *path: Key, required: bool = False) -> str | None: ...
def code(obj: Mapping[str, object], *path: Key, required: bool = False) -> str | None:
    """An identifier: refused when longer than 64 characters (cutting would merge two)."""
    value = text(obj, *path, required=required)
    if not value:
        if required:
            raise FormatError(pointer(*path), "must not be empty")
        return None
    if len(value) > CODE_MAX:
        raise FormatError(pointer(*path), f"longer than {CODE_MAX} characters")
    return value


def address(obj: Mapping[str, object], *path: Key) -> str | None:
    """An IPv4 or IPv6 address as PostgreSQL ``inet`` takes it, or None when absent."""
    value = text(obj, *path)
    if value is None:
        return None
    for family in _FAMILIES:
        try:
            socket.inet_pton(family, value)
        except (OSError, ValueError):
            continue
        return value
    raise FormatError(pointer(*path), f"not an IP address: {value[:64]!r}")


def strings(obj: Mapping[str, object], *path: Key) -> list[str]:
    """A string or an array of strings (ECS allows either for keyword fields)."""
    value, at = lookup(obj, *path)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise FormatError(at, f"expected a string or an array, got {kind_of(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise FormatError(pointer(*path, i), f"expected a string, got {kind_of(item)}")
        out.append(item)
    return out


def first(values: Iterable[str | None]) -> str | None:
    """The first value present; lazily, so a bad fallback field is only read when needed."""
    return next((v for v in values if v is not None), None)


def short(value: str | None) -> str | None:
    """Free text cut to the native 1,024 characters, with an ellipsis where it was cut."""
    if value is None or len(value) <= TEXT_MAX:
        return value
    return value[: TEXT_MAX - 1] + "…"


def normalise(name: str) -> str:
    """``"Brute Force"``, ``"brute-force"`` → ``brute_force``: one spelling for table keys."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def pick_category(names: Iterable[str], table: Mapping[str, SecurityCategory]) -> SecurityCategory:
    """The most specific category any of ``names`` maps to, or ``other``."""
    found = {table[n] for n in map(normalise, names) if n in table}
    return next((c for c in CATEGORY_PRIORITY if c in found), "other")


def canonical_json(obj: Mapping[str, object]) -> bytes:
    """Sorted-key JSON of a document kept as ``raw``: the input of stable ids, and the proof
    that it can be stored (no NUL, no lone surrogate, nothing JSON cannot carry)."""
    try:
        encoded: bytes | None = msgspec.json.encode(obj, order="sorted")
    except UnicodeEncodeError:
        encoded = None
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise FormatError("", f"not a JSON document: {exc}") from None
    if encoded is None or _NUL_ESCAPE in encoded:
        found = _find_bad_text(obj, ())
        if found is not None:
            raise FormatError(*found)
    if encoded is None:
        raise FormatError("", "not valid Unicode")
    return encoded


def event_id(prefix: str, native: str | None, canonical: bytes) -> str:
    """``prefix:native`` when it is a valid native id, else a hash of the document."""
    if native is not None:
        candidate = f"{prefix}:{native}"
        if EVENT_ID.fullmatch(candidate):
            return candidate
    return stable_event_id(prefix, canonical)


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "NUL characters cannot be stored"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "not valid Unicode (a lone surrogate)"
    return None


def _find_bad_text(value: object, path: tuple[Key, ...]) -> tuple[str, str] | None:
    """Where the first unstorable string (or object key) is, and why."""
    if isinstance(value, str):
        problem = _text_problem(value)
        return None if problem is None else (pointer(*path), problem)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and (problem := _text_problem(key)) is not None:
                return pointer(*path, key), problem
            if (found := _find_bad_text(item, (*path, str(key)))) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _find_bad_text(item, (*path, i))) is not None:
                return found
    return None


def kind_of(value: object) -> str:
    """The JSON name of a value's type, for error reasons."""
    if isinstance(value, bool):
        return "a boolean"
    names = {
        str: "a string",
        list: "an array",
        dict: "an object",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)
