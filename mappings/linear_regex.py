"""The one place a mapping's regular expressions are compiled: no mapping regex runs in more than linear
time.

A mapping's patterns (the ``regex`` transform, the ``matches`` condition) run on text that comes from
outside: a Sienge ``adress``, a CRM field, a webhook. Python's ``re`` backtracks, so a pattern such as
``([^,]+?)\\s*-\\s*[A-Za-z]{2}\\s*$`` took seconds on a 2,009-character address (cubic in its length)
and stalled the flow. :func:`compile_pattern` compiles every such pattern with RE2 (``google-re2``),
an automaton engine whose running time is linear in the length of the text, whatever the pattern and
whatever the text. Features only a backtracking engine can run (backreferences, lookahead and
lookbehind, atomic groups, possessive repeats, conditionals), and ``\\b`` (ASCII-only in RE2), are
refused at load with :class:`RegexRefused`, which says what to write instead; the compiler reports it
as a configuration error naming the mapping file, line and field.

Patterns keep Python ``re`` semantics where RE2's syntax differs:

- ``\\d \\w \\s`` (and ``\\D \\W \\S``) are Unicode classes in Python and ASCII ones in RE2; they are
  rewritten into the exact sets Python's ``re`` uses (derived from ``re`` itself, once per process), so
  ``\\s`` still matches a non-breaking space and ``\\d`` an Arabic-Indic digit.
- ``\\Z`` becomes RE2's ``\\z``; ``{,n}`` becomes ``{0,n}``; ``\\uXXXX``, ``\\UXXXXXXXX``, ``\\N{name}``
  and three-digit octal escapes become ``\\x{...}``; ``[`` inside a class is a literal, as in Python;
  ``(?#...)`` comments are dropped; the ``u`` flag is dropped (it is the default).
- ``$`` at the end of a pattern (not in multi-line mode) also matches before a final line break, as in
  Python; any other ``$`` (inside a group, or in a pattern with a top-level ``|``) matches only at the
  very end of the text (RE2's meaning). A group repeated by ``*`` that can match empty text
  (``(a*)*``) reports its last non-empty repetition, where Python reports the empty one.

The fixed patterns of :mod:`mappings.transforms` (``\\s+``, ``[^0-9]``, the Brazilian amount and the
``DD/MM/AAAA`` prefix) stay on ``re``: each is a single class, or anchored with no nested quantifier
that can match the same text two ways, so they are linear as written (``tests/mappings/
test_regex_linear.py`` runs them on 10,000-character inputs too).
"""

from __future__ import annotations

import array
import functools
import re
import sys
import unicodedata
from typing import Any

import re2

__all__ = ["LinearMatch", "LinearPattern", "RegexRefused", "compile_pattern"]

#: the group that marks where a pattern's text ends when a final ``$`` may be followed by a line break
_END = "ponte_end_of_pattern"
#: Python ``re`` character classes rewritten into explicit sets
_CLASS_ESCAPES = "dDsSwW"
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")
_SURROGATES = re.compile("[\ud800-\udfff]")
#: a Python repeat count: ``{m}``, ``{m,}``, ``{,n}``, ``{m,n}`` (anything else after ``{`` is literal)
_REPEAT = re.compile(r"\{(\d*)(,?)(\d*)\}")
#: inline flags after ``(?``: ``(?i)``, ``(?im:...)``, ``(?-i:...)``
_FLAGS = re.compile(r"([a-zA-Z]*(?:-[a-zA-Z]*)?)([:)])")


class RegexRefused(ValueError):
    """A pattern the linear engine will not run: ``problem`` says why, ``hint`` what to write instead."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


# ---- Python's classes, as explicit sets ----------------------------------------------------------


@functools.cache
def _every_character() -> tuple[str, str]:
    """Every code point as text, below and above the surrogates (which UTF-8, hence RE2, cannot hold)."""
    codec = "utf-32-le" if sys.byteorder == "little" else "utf-32-be"
    low = array.array("I", range(0xD800)).tobytes().decode(codec)
    high = array.array("I", range(0xE000, 0x110000)).tobytes().decode(codec)
    return low, high


@functools.cache
def _ranges(letter: str) -> tuple[tuple[int, int], ...]:
    """The code point ranges Python's ``re`` matches with ``\\d``, ``\\s`` or ``\\w`` on a str."""
    low, high = _every_character()
    found: list[tuple[int, int]] = []
    for base, text in ((0, low), (0xE000, high)):
        found.extend((base + m.start(), base + m.end() - 1) for m in re.finditer(rf"\{letter}+", text))
    return tuple(found)


@functools.cache
def _complement(letter: str) -> tuple[tuple[int, int], ...]:
    """Every non-surrogate code point outside ``_ranges(letter)``."""
    out: list[tuple[int, int]] = []
    start = 0
    for low, high in (*_ranges(letter), (0xD800, 0xDFFF), (0x110000, 0x110000)):
        if low > start:
            out.append((start, low - 1))
        start = max(start, high + 1)
    return tuple(out)


def _set_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(rf"\x{{{a:X}}}" if a == b else rf"\x{{{a:X}}}-\x{{{b:X}}}" for a, b in ranges)


@functools.cache
def _class(letter: str, in_set: bool) -> str:
    """RE2 text for Python's ``\\<letter>``: bare ranges inside ``[...]``, a whole class outside."""
    ranges = _ranges(letter.lower()) if letter.islower() else _complement(letter.lower())
    if in_set:
        return _set_text(ranges)
    # case-insensitive mode must not widen the set (Python's classes ignore it)
    return f"(?-i:[{_set_text(ranges)}])"


# ---- refusals ------------------------------------------------------------------------------------

_LINEAR = "mapping patterns run on a linear-time engine (RE2)"
_BACKREFERENCE = (
    "write the repeated text out instead of referring back to a group (for a quote on both sides: "
    "\"[^\"]*\"|'[^']*'), or compare the two values with a when condition"
)
_LOOKAHEAD = (
    "match the text instead of looking at it, and take the part you want with a group (the regex "
    "transform's group:); to test that something does not follow, use a condition with not: {matches: ...}"
)
_LOOKBEHIND = (
    "match the preceding text too and capture what follows in a group: (?<=R\\$ )(\\d+) becomes R\\$ (\\d+)"
)


def _refuse(feature: str, hint: str, *, backtracking: bool = True) -> RegexRefused:
    why = "needs a backtracking engine" if backtracking else "is not supported"
    return RegexRefused(f"the pattern uses {feature}, which {why}: {_LINEAR}", hint)


# ---- translation ---------------------------------------------------------------------------------


def _code_point(value: int) -> str:
    if not 0 <= value <= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise RegexRefused(f"not a valid regular expression: character {value:#x} cannot be matched",
                           "fix the escape in the pattern")
    return rf"\x{{{value:X}}}"


def _flags(letters: str, scoped: bool) -> tuple[str, bool]:
    """Python inline flags -> RE2 flags (and whether multi-line mode is turned on)."""
    kept = []
    turning_off = False
    multiline = False
    for letter in letters:
        if letter == "-":
            turning_off = True
            kept.append(letter)
        elif letter == "u":
            continue
        elif letter == "a":
            raise _refuse("the ASCII flag (?a)", "write [0-9] for ASCII digits, [A-Za-z0-9_] for ASCII word "
                          "characters and [ \\t\\n\\r\\f\\v] for ASCII spaces", backtracking=False)
        elif letter == "x":
            raise _refuse("verbose mode (?x)", "write the pattern without the spaces and # comments of (?x)",
                          backtracking=False)
        elif letter == "L":
            raise _refuse("the locale flag (?L)", "remove the flag", backtracking=False)
        else:
            if letter == "m" and not turning_off and not scoped:
                multiline = True
            kept.append(letter)
    text = "".join(kept)
    return (text if text.strip("-") else ""), multiline


def _escape(pattern: str, i: int, in_set: bool) -> tuple[str, int]:
    """The RE2 text for the escape starting at ``pattern[i]`` (a backslash), with Python's meaning, and
    the index after it (``in_set``: inside ``[...]``, where Python reads some escapes differently)."""
    n = len(pattern)
    if i + 1 >= n:
        raise RegexRefused("not a valid regular expression: the pattern ends with a lone backslash",
                           "escape it: \\\\")
    e = pattern[i + 1]
    i += 2
    if e in _CLASS_ESCAPES:
        return _class(e, in_set), i
    if e == "Q":  # RE2's quoted text: copied as it is, up to \E
        end = pattern.find("\\E", i)
        end = n if end < 0 else end
        return "\\Q" + pattern[i:end] + "\\E", end + 2
    if e in "uU":
        width = 4 if e == "u" else 8
        digits = pattern[i : i + width]
        if len(digits) != width or not set(digits) <= _HEX:
            raise RegexRefused(f"not a valid regular expression: incomplete escape \\{e}{digits}",
                               f"write \\{e} with {width} hexadecimal digits")
        return _code_point(int(digits, 16)), i + width
    if e == "N":
        end = pattern.find("}", i)
        if not pattern.startswith("{", i) or end < 0:
            raise RegexRefused("not a valid regular expression: \\N needs a name in braces",
                               "write \\N{LATIN SMALL LETTER E WITH ACUTE}")
        name = pattern[i + 1 : end]
        try:
            return _code_point(ord(unicodedata.lookup(name))), end + 1
        except KeyError:
            raise RegexRefused(f"not a valid regular expression: no character named {name!r}",
                               "fix the name in \\N{...}") from None
    if e in "123456789" and not in_set:
        # Python: three octal digits are a character, anything else a group reference
        octal = pattern[i - 1 : i + 2]
        if len(octal) == 3 and set(octal) <= _OCTAL:
            return _code_point(int(octal, 8)), i + 2
        raise _refuse("a backreference (\\" + e + ")", _BACKREFERENCE)
    if e in _OCTAL and in_set:  # Python reads \1 .. \377 inside a set as octal
        digits = e
        while len(digits) < 3 and i < n and pattern[i] in _OCTAL:
            digits += pattern[i]
            i += 1
        return _code_point(int(digits, 8)), i
    if e in "89" and in_set:
        raise RegexRefused(f"not a valid regular expression: bad escape \\{e} in a set",
                           f"write {e} without the backslash")
    if e == "Z":
        return "\\z", i
    if e == "b" and in_set:
        return r"\x{8}", i  # backspace, as in Python
    if e in "bB":
        raise _refuse(
            f"a word boundary (\\{e})",
            "RE2's \\b counts only ASCII letters as word characters (it would split 'João'): match "
            "the neighbouring text instead, e.g. (?:^|[^\\w])word(?:[^\\w]|$), and take the word "
            "with a group",
            backtracking=False,
        )
    if e == "C":
        raise _refuse("\\C (a single byte)", "write . for any character", backtracking=False)
    if not e.isascii():  # Python: an escaped non-ASCII character is itself (RE2 refuses it)
        return e, i
    return "\\" + e, i


def _extension(pattern: str, i: int) -> tuple[str, int, bool, bool] | None:
    """What the ``(?`` construct at ``pattern[i]`` becomes, refusing the ones RE2 cannot run.

    Returns the RE2 text, the index after the construct, whether it opens a group (``(?i:``) and
    whether it turns multi-line mode on for the whole pattern (``(?m)``); None for a construct RE2
    reads as Python does (``(?:``, ``(?P<name>``), copied as a plain group.
    """
    rest = pattern[i + 2 :]
    if rest.startswith(("=", "!")):
        raise _refuse(f"a lookahead {pattern[i : i + 3]}...)", _LOOKAHEAD)
    if rest.startswith(("<=", "<!")):
        raise _refuse(f"a lookbehind {pattern[i : i + 4]}...)", _LOOKBEHIND)
    if rest.startswith("P="):
        raise _refuse("a backreference (?P=...)", _BACKREFERENCE)
    if rest.startswith(">"):
        raise _refuse("an atomic group (?>...)",
                      "write a plain group (?:...): the linear engine never backtracks anyway")
    if rest.startswith("("):
        raise _refuse("a conditional group (?(...)...)", "write the alternatives out with |")
    if rest.startswith("#"):  # a comment: dropped
        end = pattern.find(")", i)
        return "", len(pattern) if end < 0 else end + 1, False, False
    flag = _FLAGS.match(pattern, i + 2)
    if not flag or not flag.group(1):
        return None
    letters, closer = flag.groups()
    text, turns_on = _flags(letters, scoped=closer == ":")
    if closer == ")":  # flags for the whole pattern
        return (f"(?{text})" if text else ""), flag.end(), False, turns_on
    return (f"(?{text}:" if text else "(?:"), flag.end(), True, False


def _translate(pattern: str) -> tuple[str, bool]:
    """Rewrite a Python ``re`` pattern for RE2 with the same meaning, refusing what RE2 cannot run.

    Returns the RE2 pattern and whether it ends in a ``$`` that must also match before a final line
    break (RE2 reads ``$`` as the very end of the text). Escapes are :func:`_escape`'s and ``(?``
    constructs :func:`_extension`'s; this scan keeps the sets, the groups and the final ``$``.
    """
    out: list[str] = []
    n = len(pattern)
    i = 0
    in_set = False  # inside [...]
    set_start = 0  # index of the first character of the set's body (after [ and ^)
    depth = 0  # open groups
    top_alternation = False
    multiline = False
    last_top_dollar = -1  # index in out of a top-level $ that is (so far) the last token
    while i < n:
        c = pattern[i]
        if c == "\\":
            text, i = _escape(pattern, i, in_set)
            out.append(text)
            last_top_dollar = -1
            continue
        if in_set:  # until the ] that closes it; a [ inside is a literal in Python (RE2: a [:class:])
            in_set = not (c == "]" and i > set_start)
            out.append("\\[" if c == "[" else c)
            i += 1
            continue
        if c == "[":
            in_set = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            set_start = i
            last_top_dollar = -1
            continue
        if c == "(":
            extension = _extension(pattern, i) if pattern.startswith("(?", i) else None
            if extension is None:  # a plain group
                extension = (c, i + 1, True, False)
            text, i, opens, turns_on = extension
            multiline = multiline or turns_on
            if text:
                out.append(text)
            if opens:
                depth += 1
                last_top_dollar = -1
            continue
        if c == ")":
            depth = max(depth - 1, 0)
        elif c == "|" and depth == 0:
            top_alternation = True
        elif c == "{":
            quantifier = _REPEAT.match(pattern, i)
            if quantifier and (quantifier.group(1) or quantifier.group(2)):
                low, comma, high = quantifier.groups()
                out.append("{" + (low or "0") + comma + high + "}")
                i = quantifier.end()
                if i < n and pattern[i] == "+":
                    raise _refuse("a possessive repeat ({...}+)",
                                  "drop the + after the repeat: the linear engine never backtracks anyway")
                last_top_dollar = -1
                continue
        elif c in "*+?" and i + 1 < n and pattern[i + 1] == "+":
            raise _refuse(f"a possessive repeat ({c}+)",
                          f"write {c} alone: the linear engine never backtracks anyway")
        out.append(c)
        i += 1
        last_top_dollar = len(out) - 1 if c == "$" and depth == 0 else -1
    emulate_end = last_top_dollar >= 0 and not top_alternation and not multiline
    if emulate_end:
        out[last_top_dollar] = f"(?P<{_END}>)\\n?\\z"
    return "".join(out), emulate_end


# ---- compiled patterns ---------------------------------------------------------------------------


class LinearMatch:
    """The groups of one match (``group(0)`` the whole match, ``group(n)`` / ``group("name")``)."""

    __slots__ = ("_end", "_match", "_text")

    def __init__(self, text: str, match: Any, end: int | None) -> None:
        self._text = text
        self._match = match
        self._end = end

    def span(self, group: int | str = 0) -> tuple[int, int]:
        if isinstance(group, str):
            group = self._match.re.groupindex[group]
        start, stop = self._match.span(group)
        if group == 0 and self._end is not None:
            stop = self._end
        return start, stop

    def group(self, group: int | str = 0) -> str | None:
        start, stop = self.span(group)
        return None if start < 0 else self._text[start:stop]

    def __repr__(self) -> str:
        return f"<LinearMatch span={self.span()} match={self.group()!r}>"


class LinearPattern:
    """A compiled mapping pattern: ``search`` runs in time linear in the length of the text."""

    __slots__ = ("_end_group", "_regexp", "groupindex", "groups", "pattern", "translated")

    def __init__(self, pattern: str, translated: str, regexp: Any, ends_with_dollar: bool) -> None:
        self.pattern = pattern
        self.translated = translated
        self._regexp = regexp
        self._end_group = regexp.groupindex[_END] if ends_with_dollar else None
        self.groupindex = {name: index for name, index in regexp.groupindex.items() if name != _END}
        self.groups = regexp.groups - (1 if ends_with_dollar else 0)

    def search(self, text: str) -> LinearMatch | None:
        """The first match anywhere in ``text`` (leftmost, with Python's preferences), or None."""
        try:
            found = self._regexp.search(text)
        except UnicodeEncodeError:  # lone surrogates (from JSON "\ud800"): UTF-8 cannot carry them
            found = self._regexp.search(_SURROGATES.sub("\ufffd", text))
        if found is None:
            return None
        end = None if self._end_group is None else found.start(self._end_group)
        return LinearMatch(text, found, end)

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r})"


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors come back as RegexRefused, not as lines on stderr
    return options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> LinearPattern:
    """Compile a mapping's regular expression for the linear-time engine; :class:`RegexRefused` (a
    ``ValueError``) when it is not valid or needs a backtracking engine.

    Every regular expression the mapping language runs goes through here: no mapping regex runs in
    more than linear time in the length of its input.
    """
    translated, ends_with_dollar = _translate(pattern)
    try:
        regexp = re2.compile(translated, _options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "repetition size" in detail:
            raise RegexRefused(
                f"not a valid regular expression for the linear engine: {detail} (repeat counts go up "
                "to 1000)", "use + or * instead of a large {n,m}") from None
        if "too large" in detail or "pattern too large" in detail:
            raise RegexRefused(
                f"the pattern is too large for the linear engine: {detail}",
                "lower the repeat counts ({n,m}) or split the pattern over two fields") from None
        raise RegexRefused(f"not a valid regular expression: {detail}",
                           "fix the pattern (Python re syntax, see docs/mappings.md)") from None
    return LinearPattern(pattern, translated, regexp, ends_with_dollar)
