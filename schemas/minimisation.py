"""Data-minimisation lint for the free text of events and for evidence references.

Events describe practice in a local area, never individual children, so free text that
holds personal data is refused before an event is accepted. The refusal names the field
and the rule, never the matched text: the error travels into logs, dead-letter records
and other inspectorates' screens, and repeating the data there would leak it further.
The message is a function of the field name and the set of rules alone.

The lint is a safety net for honest mistakes, not a guarantee: each rule is tuned to
catch the usual ways the data is written while leaving ordinary inspection prose alone.
docs/minimisation.md gives the measured false-positive rate on a corpus of clean
summaries (tests/data/clean_summaries.txt).

Normalisation (:func:`normalise`)
---------------------------------
Every rule reads the text after it is normalised, so look-alike spellings cannot slip
past a pattern written for the plain one. In order, for each character together with the
combining marks after it:

1. remove invisible characters: format characters (Unicode category Cf: zero-width
   space and joiners, soft hyphen, byte order mark, bidirectional controls, word
   joiner, tags), control characters other than whitespace, and the other default
   ignorables (combining grapheme joiner, variation selectors, Hangul fillers);
2. NFKC: fullwidth and mathematical digits and letters become ASCII (a fullwidth nine
   becomes ``9``, a fullwidth at sign ``@``), ligatures are split, no-break and thin
   spaces become spaces;
3. fold what NFKC leaves alone: Cyrillic, Greek, Armenian and Latin letters that look
   like ASCII letters (``born`` spelt with a Cyrillic o is ``born``), decimal digits of
   any script -> ``0``-``9``, dashes and minus signs -> ``-``, middle dots and the
   ideographic full stop -> ``.``, fraction and division slashes -> ``/``, curly
   apostrophes -> ``'``, every other whitespace character -> space;
4. NFKC again (a folded letter may compose with its accent), then every run of spaces
   becomes one space.

ASCII text with single spaces is left as it is without further work. ``normalise`` is
idempotent. :func:`scan` reports offsets into the text as given, not the normalised one:
a violation spans every original character that produced the matched text (a zero-width
space inside an NHS number is inside the span).

Rules
-----
Digits are ASCII digits (``0``-``9``, after normalisation); letters match in any case
except in ``child_name``, which reads capitals.

``nhs_number``
    Ten digits that pass the NHS modulus-11 check (:func:`nhs_number_is_valid`), written
    run together (``9434765919``) or as 3-3-4 groups split by one space, hyphen or dot
    (``943 476 5919``, ``943-476-5919``, ``943.476.5919``). Not flagged: ten digits
    failing the check, digits inside a longer digit run (``19434765919``), after a digit
    and a hyphen or dot (``1-9434765919``, a CQC location id; ``0.9434765919``) or before
    a hyphen or dot and a digit, other groupings. Inside a web address the digits must
    not touch a letter or digit either (``5a7f9434765919c2`` is an asset id).

``date_of_birth``
    A full date (day, month and year) straight after a birth cue.

    Cues: ``born``, ``birthday``, ``birth date``/``birthdate``, ``date of birth``,
    ``DOB``/``D.O.B.`` (dots optional), then up to four characters of whitespace,
    ``:``, ``,``, ``(``, a hyphen or a dash, then optionally one of ``on``, ``is``,
    ``was``, ``in``, ``of``; or ``b.`` and at most two spaces.

    Dates: ``12/03/2011``, ``12-03-11``, ``1.3.2011`` (day and month of one or two
    digits, one separator used twice, year of two or four digits); ``2011-03-12`` (also
    with ``/`` or ``.``); ``12 March 2011``, ``12th Mar 2011``, ``the 12th of March
    2011``, ``12-Mar-2011``; ``March 12, 2011``, ``Mar 12th 2011``. Month names full or
    abbreviated (``Sept`` too); years of four digits in dates with a month name.

    Also an age with a birth year: ``aged 7 (born 2016)``, ``age 7, b. 2016``,
    ``aged 7 years (DOB March 2016)``.

    Not flagged: a date without a cue (``the inspection on 12 March 2024``), a cue
    without a full date (``born in 2016``, ``date of birth was missing``), a cue after
    the date, a cue separated from the date by other words (``born in Leeds on 12 March
    2011``). A violation spans the cue and the date.

``postcode``
    A full UK postcode: outward code (a real postcode area such as ``SW``, ``M`` or
    ``DN``, then the district: one or two digits, or a digit and a letter) and inward
    code (a digit and two letters, never C, I, K, M, O or V), with or without one space
    between them, in any case: ``SW1A 1AA``, ``m11ae``, ``DN55 1PT``; also ``GIR 0AA``.
    (A tab or two spaces between them are one space after normalisation.) Not flagged:
    an outward code alone (``SW1A``, ``the M1 area``), letters that are not a postcode
    area (``A4 2ND``), a code glued to other letters or digits.

``email``
    Something, ``@``, then a dotted domain whose last label is at least two letters:
    ``jo.bloggs+cp@example.org.uk``. Not flagged: ``user at example dot com``,
    ``@handle``, ``user@localhost``, an ``@`` with spaces around it, a web address
    without a user name (``https://www.gov.uk/...``).

``phone_number``
    ``+44`` or ``0044`` (maybe bracketed, then optionally ``(0)`` or a stray ``0``), or a
    leading ``0`` (optionally after an opening bracket), then a national number of ten
    digits starting 1, 2, 3, 5, 7, 8 or 9, or of nine digits starting 1 or 800. Between
    two digits may stand one space, hyphen or dot, or a closing bracket with an optional
    space or hyphen: ``07700 900123``, ``+44 (0)20 7946 0018``, ``(0161) 496 0000``,
    ``0113-496-0000``, ``020.7946.0018``. Not flagged: years and counts (``2024``,
    ``1,200``), ``section 47``, ``s.17``, numbers too short or too long, numbers
    starting ``04`` or ``06``, digits glued to a word or a longer number before them,
    a number that starts with a date (``01.02.2024 09.30``), digits inside a web
    address (``https://.../provider/0123456789``; a ``tel:`` address is a number).

``child_name``
    A given name from the ONS list of the 100 most popular names for baby boys and the
    100 for baby girls in England and Wales (:func:`given_names`, from
    ``schemas/data/ons-baby-names-2024-top100.csv``), capitalised, with evidence that it
    names a person:

    - an age: straight after the name or after the name and surname (``Amelia, aged
      9``, ``Amelia Jones (aged 9)``, ``Oliver Smith, 7``, ``Ava (9)``, ``Leo, who is 9
      years old``, ``Noah, a 7-year-old``; ages 0 to 25, in digits or words up to
      twenty), or just before it (``9-year-old Amelia``); or
    - a capitalised surname straight after it (``Amelia Jones``, ``Oliver O'Neill``,
      ``Noah McDonald``, ``Arthur Labinjo-Hughes``), unless the capitalised words after
      the name include a word that names a place, building or body (``George Street``,
      ``Evelyn Grace Academy``, ``Oliver McGowan Mandatory Training``), the pair is a
      well-known namesake (``Joseph Rowntree``, ``Florence Nightingale``), or the name
      follows ``St``, ``Saint``, ``Sir``, ``Queen``, ``Prince``, ``Royal``, ``Port`` and
      the like (``St Thomas``, ``Queen Elizabeth``).

    Names that are also ordinary words, places or brands in inspection prose (``Grace``,
    ``Ivy``, ``Rose``, ``Florence``, ``Isla``, ``Jack``, ``Max``, ``Roman`` as in
    ``Roman Catholic``, ...: :data:`NAMES_NEEDING_AN_AGE`) count only with an age.
"""

from __future__ import annotations

import bisect
import csv
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib.resources import files
from types import MappingProxyType
from typing import Final
from urllib.parse import unquote

from schemas.errors import SchemaError

__all__ = [
    "NAMES_NEEDING_AN_AGE",
    "RULE_DESCRIPTIONS",
    "Rule",
    "Violation",
    "check_minimised",
    "check_reference",
    "given_names",
    "nhs_number_is_valid",
    "normalise",
    "scan",
    "violated_rules",
]


class Rule(StrEnum):
    """A kind of personal data that must not appear in an event's free text."""

    NHS_NUMBER = "nhs_number"
    DATE_OF_BIRTH = "date_of_birth"
    POSTCODE = "postcode"
    EMAIL = "email"
    PHONE_NUMBER = "phone_number"
    CHILD_NAME = "child_name"


RULE_DESCRIPTIONS: Final[Mapping[Rule, str]] = MappingProxyType(
    {
        Rule.NHS_NUMBER: "an NHS number",
        Rule.DATE_OF_BIRTH: "a date of birth",
        Rule.POSTCODE: "a full postcode",
        Rule.EMAIL: "an email address",
        Rule.PHONE_NUMBER: "a phone number",
        Rule.CHILD_NAME: "a child's name",
    }
)
"""Each rule in plain English, as it reads in an error message."""


@dataclass(frozen=True, slots=True)
class Violation:
    """Where a rule matched: ``text[start:end]``.

    Only offsets are kept, so a violation can be logged, shown or compared without
    carrying the personal data it points at.
    """

    rule: Rule
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"a violation spans start < end, got {self.start}..{self.end}")


# --- Normalisation --------------------------------------------------------------------

# Default ignorables that are not Cf: combining grapheme joiner, Hangul fillers, Khmer
# inherent vowels, Mongolian free variation selectors, variation selectors.
_IGNORABLE: Final = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164),
        0xFFA0,
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    ]
)

# Letters NFKC leaves alone that look like ASCII letters (from Unicode's confusables,
# restricted to letters with no decomposition, so folding commutes with NFKC).
_CONFUSABLES: Final = {
    # Cyrillic capitals and small letters
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M",
    "\u041d": "H", "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T",
    "\u0423": "Y", "\u0425": "X", "\u0405": "S", "\u0406": "I", "\u0408": "J",
    "\u04ae": "Y", "\u04c0": "I", "\u050c": "G", "\u051a": "Q", "\u051c": "W",
    "\u04ba": "H",
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c",
    "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0458": "j",
    "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u04bb": "h", "\u04cf": "l",
    "\u04af": "y", "\u050d": "g",
    # Greek capitals and small letters
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H",
    "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O",
    "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X", "\u037f": "J",
    "\u03b1": "a", "\u03bf": "o", "\u03c1": "p", "\u03bd": "v", "\u03b9": "i",
    "\u03c5": "u", "\u03b3": "y", "\u03f3": "j", "\u03ba": "k",
    # Armenian
    "\u0585": "o", "\u057d": "u", "\u0578": "n", "\u0570": "h", "\u0566": "q",
    "\u0581": "g",
    # Latin letters outside ASCII that read as ASCII ones
    "\u0131": "i", "\u0237": "j", "\u0251": "a", "\u0261": "g", "\u01c0": "l",
}  # fmt: skip

_PUNCTUATION: Final = {
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58", "-"),
    **dict.fromkeys("\u00b7\u2027\u2e31\u30fb\u3002", "."),
    **dict.fromkeys("\u2044\u2215\u29f8", "/"),
    **dict.fromkeys("\u2018\u2019\u201b\u02bc\u2032", "'"),
    "\u2800": " ",  # braille blank reads as a space
}

_FOLD: Final[Mapping[str, str]] = MappingProxyType({**_CONFUSABLES, **_PUNCTUATION})

# Characters that need more than copying: anything outside printable ASCII, and runs of
# two or more of those or of spaces. Text without them is already normal.
_UNUSUAL: Final = re.compile(r"[^\x21-\x7e]{2,}|[^\x20-\x7e]")
_SPACES: Final = re.compile(r" {2,}")
_ASCII_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _invisible(char: str) -> bool:
    if ord(char) in _IGNORABLE:
        return True
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Cc" and not char.isspace())


def _fold_char(char: str) -> str:
    if (folded := _FOLD.get(char)) is not None:
        return folded
    if char.isspace():
        return " "
    if _invisible(char):
        return ""
    if not char.isascii() and unicodedata.category(char) == "Nd":
        return str(unicodedata.decimal(char))
    return char


def _normal_segment(segment: str) -> str:
    """One character with its combining marks and invisible characters, normalised."""
    kept = "".join(char for char in segment if not _invisible(char))
    text = unicodedata.normalize("NFKC", kept)
    if not (text.isascii() and text.isprintable()):
        folded = "".join(_fold_char(char) for char in text)
        text = unicodedata.normalize("NFKC", folded)
    return _SPACES.sub(" ", text)


# A piece of normalised text: from normalised offset ``norm`` on, it came from original
# ``[start, end)``; a copied piece maps character for character, any other as a whole.
# Plain tuples: one is built for every unusual character, so they must be cheap.
_Piece = tuple[int, int, int, bool]


class _Normal:
    """Normalised text and the map from its offsets back to the original's."""

    __slots__ = ("_norms", "_pieces", "text")

    def __init__(self, text: str, pieces: list[_Piece]) -> None:
        self.text = text
        self._pieces = pieces
        self._norms = [piece[0] for piece in pieces]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original characters that produced normalised ``text[start:end]``."""
        if not self._pieces:
            return start, end
        first_norm, first_start, _, first_copied = self._pieces[
            bisect.bisect_right(self._norms, start) - 1
        ]
        last_norm, last_start, last_end, last_copied = self._pieces[
            bisect.bisect_right(self._norms, end - 1) - 1
        ]
        begin = first_start + (start - first_norm) if first_copied else first_start
        finish = last_start + (end - last_norm) if last_copied else last_end
        return begin, finish


def _normal(text: str) -> _Normal:
    if text.isascii() and "  " not in text and _ASCII_CONTROL.search(text) is None:
        return _Normal(text, [])  # the usual case, at the cost of three C loops
    out: list[str] = []
    pieces: list[_Piece] = []
    length = 0  # of the normalised text so far

    def emit(chunk: str, start: int, end: int, *, copied: bool) -> None:
        nonlocal length
        if chunk.startswith(" ") and out and out[-1].endswith(" "):
            chunk, copied = chunk[1:], False
        if not chunk:
            return
        if copied and pieces and pieces[-1][3] and pieces[-1][2] == start:
            pieces[-1] = (pieces[-1][0], pieces[-1][1], end, True)  # one longer copy
        else:
            pieces.append((length, start, end, copied))
        out.append(chunk)
        length += len(chunk)

    position = 0
    for run in _UNUSUAL.finditer(text):
        start, end = run.span()
        first = text[start]
        if (
            start > position
            and not first.isspace()
            and (unicodedata.combining(first) or _starts_with_mark(run.group()))
        ):
            start -= 1  # a mark after an ASCII letter belongs with that letter
        if start > position:
            emit(text[position:start], position, start, copied=True)
        whole, chunks = _normal_run(text[start:end])
        if len(whole) == end - start == len(chunks):
            # Character for character ("é ", a curly quote): map it like a copy.
            emit(whole, start, end, copied=True)
        else:
            for chunk, seg_start, seg_end in chunks:
                emit(chunk, start + seg_start, start + seg_end, copied=False)
        position = end
    if position < len(text):
        emit(text[position:], position, len(text), copied=True)
    return _Normal("".join(out), pieces)


def _starts_with_mark(run: str) -> bool:
    visible = next((char for char in run if not _invisible(char)), "")
    return visible != "" and unicodedata.combining(visible) != 0


_CACHED_RUN: Final = 16


_Run = tuple[str, tuple[tuple[str, int, int], ...]]


def _normal_run(run: str) -> _Run:
    """``run`` normalised, and each of its segments normalised with its offsets."""
    if len(run) <= _CACHED_RUN:
        return _normal_short_run(run)
    return _normal_run_uncached(run)


def _normal_run_uncached(run: str) -> _Run:
    chunks = tuple((_normal_segment(run[a:b]), a, b) for a, b in _segments(run))
    return _SPACES.sub(" ", "".join(chunk for chunk, _, _ in chunks)), chunks


@functools.lru_cache(maxsize=4096)
def _normal_short_run(run: str) -> _Run:
    # Prose repeats the same few short runs (a curly quote, "é ", a spaced en dash).
    return _normal_run_uncached(run)


def _segments(run: str) -> Iterator[tuple[int, int]]:
    """Split ``run`` before each visible character that is not a mark.

    Invisible characters stay with the segment before them (the first segment also
    takes any before it), so every offset belongs to one segment.
    """
    begin = 0
    seen_base = False
    for i, char in enumerate(run):
        if _invisible(char) or unicodedata.combining(char):
            continue
        if seen_base:
            yield begin, i
            begin = i
        seen_base = True
    yield begin, len(run)


def normalise(text: str) -> str:
    """``text`` as the rules read it: see "Normalisation" in the module docstring."""
    return _normal(text).text


# --- NHS numbers --------------------------------------------------------------------

_NHS_WEIGHTS: Final = range(10, 1, -1)
_NHS_LENGTH: Final = 10
_MOD: Final = 11


def nhs_number_is_valid(digits: str) -> bool:
    """Whether ``digits`` is ten ASCII digits passing the NHS modulus-11 check.

    The first nine digits are weighted 10 down to 2; the check digit is
    ``11 - (sum % 11)``, where 11 means 0 and 10 means the number is invalid. Anything
    but exactly ten ASCII digits (spaces included) is not valid.
    """
    if len(digits) != _NHS_LENGTH or not (digits.isascii() and digits.isdecimal()):
        return False
    total = sum(
        weight * int(digit) for weight, digit in zip(_NHS_WEIGHTS, digits[:-1], strict=True)
    )
    # "% _MOD" turns a check of 11 into 0; a check of 10 equals no digit, so such
    # numbers (never issued) fail without a case of their own.
    check = (_MOD - total % _MOD) % _MOD
    return check == int(digits[-1])


# Linear time matters: free text is up to 4,000 characters and comes from outside. Every
# repeat below is either bounded or followed by a character it cannot itself consume
# (separators and digits are disjoint, one digit per repeat in phone numbers), so a
# failing match backs off in one way only; tests feed long adversarial runs to hold that.

_NHS_NUMBER: Final = re.compile(
    r"""
    (?=\d)                          # cheap test before the lookbehinds
    (?<!\d)                         # not the tail of a longer digit run
    (?<!\d[.-])                     # nor of "1-..." (CQC ids) or a decimal "0.…"
    (?:
        \d{10}                      # run together
      | \d{3} [ .-] \d{3} [ .-] \d{4}   # 3-3-4, as the NHS prints it
    )
    (?![.-]?\d)                     # not the head of a longer number
    """,
    re.VERBOSE | re.ASCII,
)

_MONTH: Final = r"""
    (?: jan(?:uary)? | feb(?:ruary)? | mar(?:ch)? | apr(?:il)? | may | june? | july?
      | aug(?:ust)? | sep(?:t(?:ember)?)? | oct(?:ober)? | nov(?:ember)? | dec(?:ember)? )
    \b \.?
"""

_FULL_DATE: Final = rf"""
    (?:
        (?<!\d) \d{{1,2}} (?P<sep>[/.-]) \d{{1,2}} (?P=sep) (?:\d{{4}}|\d{{2}}) (?!\d)
                                    # 12/03/2011, 12-03-11, 1.3.2011
      | (?<!\d) \d{{4}} (?P<iso>[/.-]) \d{{1,2}} (?P=iso) \d{{1,2}} (?!\d)
                                    # 2011-03-12
      | (?:the \s{{1,3}})? (?<!\d) \d{{1,2}} (?:st|nd|rd|th)? [\s-]{{1,2}}
        (?:of \s{{1,3}})? {_MONTH} ,? [\s-]{{1,2}} \d{{4}} (?!\d)
                                    # 12 March 2011, 12th Mar 2011, the 12th of March 2011
      | {_MONTH} \s{{1,2}} \d{{1,2}} (?:st|nd|rd|th)? ,? \s{{1,2}} \d{{4}} (?!\d)
                                    # March 12, 2011
    )
"""

_BIRTH_CUE: Final = r"""
    \b (?: born | birthday | birth \s? date | date \s+ of \s+ birth | d\.?o\.?b \b \.? )
"""

_DATE_OF_BIRTH: Final = re.compile(
    rf"""
    (?:
        (?:
            {_BIRTH_CUE}
            [\s:,(\-\u2013\u2014]{{0,4}}       # "DOB: ", "born - ", "(date of birth "
            (?: (?:on|is|was|in|of) \s{{1,3}} )?   # "born on", "birthday is"
          | \b b\. \s{{0,2}}        # "b." is too short a cue to allow more between
        )
        {_FULL_DATE}
      | \b aged? \s{{1,3}} \d{{1,2}} (?!\d)      # aged 7 (born 2016)
        (?: \s{{1,3}} (?:years?|yrs?) (?: \s{{1,3}} old )? )?
        [\s,;:(\-\u2013\u2014]{{0,4}}
        (?: born | b\. | d\.?o\.?b \b \.? ) [\s:]{{0,3}} (?: in \s{{1,3}} )?
        (?: {_MONTH} \s{{1,3}} )?
        (?<!\d) \d{{4}} (?!\d)
    )
    """,
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)

# Every geographic postcode area of the UK, plus BF (British Forces) and BX
# (non-geographic). Listing them keeps "A4 2ND" and the like out; two-letter areas
# come first only for readability: backtracking tries the rest.
_POSTCODE_AREAS: Final = """
    AB AL BA BB BD BF BH BL BN BR BS BT BX CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH
    DL DN DT DY EC EH EN EX FK FY GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT
    KW KY LA LD LE LL LN LS LU ME MK ML NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH
    RM SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB WA WC WD WF
    WN WR WS WV YO ZE B E G L M N S W
"""

_POSTCODE: Final = re.compile(
    rf"""
    (?=[a-z]{{1,2}}\d|gir)          # cheap test before trying 120 areas
    (?<![a-z0-9])                   # not glued to a longer code or word
    (?:
        (?: {"|".join(_POSTCODE_AREAS.split())} )
        \d (?: \d | [a-hjkmnpr-y] )?    # district: 1, 12, 1A (letters as Royal Mail uses)
        \ ?                             # the single space is often dropped
        \d [abd-hjlnp-uw-z]{{2}}        # inward code: never C, I, K, M, O or V
      | gir \ ? 0aa                     # Girobank's historic non-standard code
    )
    (?![a-z0-9])
    """,
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)

_EMAIL: Final = re.compile(
    r"""
    (?<![\w.%+'-])                  # start at the head of the local part, so a long run
                                    # without '@' is tried once, not from every character
    [\w.%+'-]+                      # local part (Unicode letters allowed)
    @
    [\w-]+ (?: \. [\w-]+ )*         # domain labels
    \. [^\W\d_]{2,63}               # top-level domain: letters only
    (?![\w-])
    """,
    re.VERBOSE,
)

_PHONE_NUMBER: Final = re.compile(
    r"""
    (?<![\w+])                      # not glued to a word or a longer number
    (?:
        \(? (?:\+|00) 44 \)? [ -]?    # +44, 0044, (+44)
        (?: \(0\) [ -]? | 0 )?         # "+44 (0)20", or the stray 0 of "+44 07700"
      | \(? 0                         # national trunk 0, maybe opening "(0161)"
    )
    (?P<national>                   # one separator at most between two digits, so
        [1-9] (?: (?: \)[ -]? | [ .-] )? \d ){8,9}   # each digit is read one way only
    )
    (?!\d)
    """,
    re.VERBOSE | re.ASCII,
)

_NINE_DIGITS: Final = 9
_TEN_DIGIT_LEADS: Final = frozenset("1235789")
_DATE_FIRST: Final = re.compile(r"\(?\d{1,2}([./-])\d{1,2}\1\d{2,4}(?!\d)", re.ASCII)

# A whitespace-delimited word that is a web address: its digits are ids, not numbers.
_WEB_ADDRESS: Final = re.compile(
    r"""(?<!\S) [(\[<"']* (?: (?:https?|ftp):// | www\. | (?:[a-z0-9-]+\.)+[a-z]{2,63}/ ) \S*""",
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)


@functools.lru_cache(maxsize=16)
def _web_addresses(text: str) -> tuple[list[int], list[int]]:
    """Starts and ends of the web addresses in ``text``, found once per text."""
    spans = [match.span() for match in _WEB_ADDRESS.finditer(text)]
    return [start for start, _ in spans], [end for _, end in spans]


def _in_web_address(match: re.Match[str]) -> bool:
    starts, ends = _web_addresses(match.string)
    i = bisect.bisect_right(starts, match.start()) - 1
    return i >= 0 and match.end() <= ends[i]


def _stands_alone(match: re.Match[str]) -> bool:
    text, start, end = match.string, match.start(), match.end()
    return not (start and text[start - 1].isalnum()) and not (
        end < len(text) and text[end].isalnum()
    )


def _nhs_match_is_valid(match: re.Match[str]) -> bool:
    if not nhs_number_is_valid(re.sub(r"\D", "", match.group(), flags=re.ASCII)):
        return False
    return _stands_alone(match) or not _in_web_address(match)


def _nhs_in_address_is_valid(match: re.Match[str]) -> bool:
    return _stands_alone(match) and _nhs_match_is_valid(match)


def _phone_match_is_valid(match: re.Match[str]) -> bool:
    # Ofcom's numbering: ten national digits for every range in use (01, 02, 03, 05,
    # 07, 08, 09); nine for some 01 areas and for 0800's older numbers.
    national = re.sub(r"\D", "", match.group("national"), flags=re.ASCII)
    if _DATE_FIRST.match(match.group()) or _in_web_address(match):
        return False
    if len(national) == _NINE_DIGITS:
        return national.startswith(("1", "800"))
    return national[0] in _TEN_DIGIT_LEADS


def _always(_match: re.Match[str]) -> bool:
    return True


_PATTERNS: Final[tuple[tuple[Rule, re.Pattern[str], Callable[[re.Match[str]], bool]], ...]] = (
    (Rule.NHS_NUMBER, _NHS_NUMBER, _nhs_match_is_valid),
    (Rule.DATE_OF_BIRTH, _DATE_OF_BIRTH, _always),
    (Rule.POSTCODE, _POSTCODE, _always),
    (Rule.EMAIL, _EMAIL, _always),
    (Rule.PHONE_NUMBER, _PHONE_NUMBER, _phone_match_is_valid),
)
# In the parts of a web address every part is an id of its own: phone-shaped ids are not
# read, and an NHS number must stand alone.
_ADDRESS_PATTERNS: Final = (
    (Rule.NHS_NUMBER, _NHS_NUMBER, _nhs_in_address_is_valid),
    *(entry for entry in _PATTERNS if entry[0] in {Rule.DATE_OF_BIRTH, Rule.POSTCODE, Rule.EMAIL}),
)
_RULE_ORDER: Final[Mapping[Rule, int]] = MappingProxyType({rule: i for i, rule in enumerate(Rule)})


def _spans(
    pattern: re.Pattern[str], text: str, accept: Callable[[re.Match[str]], bool]
) -> Iterator[tuple[int, int]]:
    position = 0
    while (match := pattern.search(text, position)) is not None:
        if accept(match):
            yield match.span()
            position = match.end()
        else:
            # A candidate that fails its check may overlap one that passes; looking
            # again one character on (lookbehinds still see the text before) finds it.
            position = match.start() + 1


# --- Children's names ----------------------------------------------------------------

_NAMES_FILE: Final = "ons-baby-names-2024-top100.csv"


@functools.cache
def given_names() -> frozenset[str]:
    """The given names the ``child_name`` rule knows: ONS's top 100 for boys and girls.

    Read once from ``schemas/data/ons-baby-names-2024-top100.csv`` (see ATTRIBUTION.md).
    """
    text = files("schemas").joinpath("data", _NAMES_FILE).read_text(encoding="utf-8")
    return frozenset(row["name"] for row in csv.DictReader(io.StringIO(text)))


NAMES_NEEDING_AN_AGE: Final = frozenset(
    {
        # Words of ordinary English (flowers, trees, colours, virtues, seasons...)
        "Aurora", "Bobby", "Bonnie", "Daisy", "Grace", "Hazel", "Hunter", "Iris",
        "Ivy", "Jack", "Jasmine", "Luna", "Mason", "Max", "Nova", "Olive", "Poppy",
        "Rose", "Rowan", "Ruby", "Sonny", "Teddy", "Violet", "Willow",
        # Places, buildings and bodies in English inspection prose
        "Eden", "Florence", "Harper", "Hudson", "Isla", "Jude", "Oakley", "Roman",
        # Brands and products
        "Austin", "Hugo", "Milo", "Otis",
    }
)  # fmt: skip
"""Given names that are also common words, places or brands: they count only with an age."""

# Capitalised words after a given name that make it part of a place, building, body,
# programme or document, not a person's name ("George Street", "Grace Academy").
_NOT_SURNAMES: Final = frozenset(
    {
        "Academies", "Academy", "Act", "Agency", "Airport", "Alliance", "Appeal",
        "Approach", "Arena", "Association", "Avenue", "Award", "Awards", "Bridge",
        "Building", "Campus", "Care", "Carvery", "Cathedral", "Center", "Centre", "Chapel",
        "Charity", "Children", "Church", "City", "Clinic", "Close", "College", "Commission",
        "Committee", "Community", "Company", "Council", "County", "Court", "Crescent",
        "Dock", "Docks", "Drive", "Estate", "Family", "Farm", "Federation", "Fellowship",
        "Forum", "Foundation", "Framework", "Fund", "Gallery", "Gardens", "Gate", "Group",
        "Guidance", "Health", "Home", "Homes", "Hospice", "Hospital", "Hostel", "Hotel",
        "House", "Hub", "Infirmary", "Inquiry", "Institute", "Island", "Lane", "Lecture",
        "Library", "Line", "Lodge", "Ltd", "Manor", "Medical", "Memorial", "Mews",
        "Mission", "Model", "Mosque", "Museum", "Network", "Nursery", "Nursing",
        "Partnership", "Pathway", "Place", "Plc", "Practice", "Primary", "Prison", "Prize",
        "Programme", "Project", "Protocol", "Quay", "Report", "Review", "Road", "Row",
        "Scheme", "School", "Schools", "Service", "Services", "Society", "Square",
        "Stadium", "Standard", "Standards", "Station", "Street", "Support", "Surgery",
        "Team", "Temple", "Terrace", "Theatre", "Training", "Tree", "Trust", "Unit",
        "University", "Vale", "Village", "Walk", "Way", "Wharf", "Wing", "Youth",
    }
)  # fmt: skip

# Namesakes of places, bodies and programmes that inspection prose names on their own.
_NAMESAKES: Final = frozenset(
    {
        ("Ada", "Lovelace"),
        ("Albert", "Edward"),
        ("Albert", "Kennedy"),
        ("Alexander", "Fleming"),
        ("Charlie", "Waller"),
        ("Edward", "Jenner"),
        ("Elizabeth", "Fry"),
        ("Elizabeth", "Garrett"),
        ("Florence", "Nightingale"),
        ("George", "Eliot"),
        ("Isaac", "Newton"),
        ("Jack", "Petchey"),
        ("Joseph", "Rowntree"),
        ("Oliver", "McGowan"),
        ("Sophie", "Lancaster"),
        ("Thomas", "Coram"),
        ("Thomas", "Telford"),
        ("William", "Harvey"),
    }
)

_GIVEN_CANDIDATE: Final = re.compile(r"(?<![\w'-])[A-Z][^\W\d_]+(?![\w'-])")
_TITLE_BEFORE: Final = re.compile(
    r"\b(?:St|Saint|Sir|Dame|Lord|Lady|King|Queen|Prince|Princess|Royal|Prophet|Pope"
    r"|Port|Fort|Mount|Mt|Lake|Cape)\.?\ $",
    re.VERBOSE | re.ASCII,
)
_LOWER: Final = "a-z\u00df-\u00f6\u00f8-\u00ff"
_SURNAME: Final = rf"(?:Mc|Mac|O'|D')?[A-Z][{_LOWER}]+(?:-[A-Z][{_LOWER}]+)?"
# Up to three capitalised words; a possessive "'s" may follow the last.
_CAPITALISED_AFTER: Final = re.compile(rf"(?:\ {_SURNAME}){{1,3}}(?![\w-]|'(?!s\b))", re.VERBOSE)

_AGE_WORDS: Final = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty",
)  # fmt: skip
_NUMBER: Final = rf"(?P<n>\d{{1,2}}(?![\d%]|[.,]\d)|(?:{'|'.join(_AGE_WORDS)})\b)"
_UNIT: Final = r"(?:\ ?-?\ ?(?:years?|yrs?|y/?o|months?|mths?|weeks?|wks?)(?:[\ -]old)?\b)"
_YEAR_OLD: Final = r"[\ -]?(?:year|yr|month|week)s?[\ -]old\b"
_AGE_FLAGS: Final = re.VERBOSE | re.ASCII | re.IGNORECASE
_AGES_AFTER: Final = tuple(
    re.compile(pattern, _AGE_FLAGS)
    for pattern in (
        # In brackets: aged 9, 9, age: 9, 9 years, a 9-year-old
        rf"\ ?\(\ ?(?:(?:aged?|age:)\ ?|an?\ )?{_NUMBER}(?:{_UNIT}|{_YEAR_OLD})?\ ?\)",
        # Comma or space, then aged 9, who is aged 9, age 9
        rf",?\ (?:(?:who|and)\ (?:is|was)\ |is\ |was\ )?(?:aged?|age:)\ ?{_NUMBER}",
        # Comma and a bare number (7, 7 years) only where a clause could end
        rf",\ ?{_NUMBER}(?:{_UNIT}|(?=\ ?[,.;:!?)]|\ ?$|\ (?:and|was|is|has|had|who)\b))",
        # Then is 9 years old, who was 7 months
        rf",?\ (?:who\ )?(?:is|was)\ (?:now\ )?{_NUMBER}{_UNIT}",
        # Then a 9-year-old, is an 8-year-old
        rf",?\ (?:(?:who\ )?(?:is|was)\ )?an?\ {_NUMBER}{_YEAR_OLD}",
    )
)
_AGE_BEFORE: Final = re.compile(rf"(?<![\w-]){_NUMBER}{_YEAR_OLD}\ $", _AGE_FLAGS)
_MAX_AGE: Final = 25
_LOOK_BACK: Final = 40


def _plain_name(word: str) -> str:
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _is_age(match: re.Match[str]) -> bool:
    number = match.group("n")
    return not number.isdigit() or int(number) <= _MAX_AGE


def _age_after(text: str, position: int) -> int | None:
    """Where an age straight after ``position`` ends, if there is one."""
    for pattern in _AGES_AFTER:
        match = pattern.match(text, position)
        if match is not None and _is_age(match):
            return match.end()
    return None


def _child_names(text: str) -> Iterator[tuple[int, int]]:
    names = given_names()
    position = 0
    while (match := _GIVEN_CANDIDATE.search(text, position)) is not None:
        position = match.end()
        word = match.group()
        given = _plain_name(word)
        if given not in names or not word[1:].islower():
            continue
        start, end = match.span()
        if _TITLE_BEFORE.search(text, max(0, start - _LOOK_BACK), start):
            continue
        ends = [end]
        surname = False
        after = _CAPITALISED_AFTER.match(text, end)
        if after is not None:
            words = after.group().split()
            if not _NOT_SURNAMES.intersection(words):
                # An age may follow the first capitalised word or the last.
                ends += [end + 1 + len(words[0]), after.end()]
                surname = (given, words[0]) not in _NAMESAKES
        ages = [age_end for e in ends if (age_end := _age_after(text, e)) is not None]
        before = _AGE_BEFORE.search(text, max(0, start - _LOOK_BACK), start)
        if before is not None and not _is_age(before):
            before = None
        if ages or before is not None:
            position = max(ages or [ends[-1]])
            yield (before.start() if before else start), position
        elif surname and given not in NAMES_NEEDING_AN_AGE:
            position = ends[1]
            yield start, position


# --- Scanning -------------------------------------------------------------------------


def _scan_normal(text: str) -> list[tuple[Rule, int, int]]:
    found = [
        (rule, start, end)
        for rule, pattern, accept in _PATTERNS
        for start, end in _spans(pattern, text, accept)
    ]
    found += [(Rule.CHILD_NAME, start, end) for start, end in _child_names(text)]
    return found


def _rules_in_address(text: str) -> set[Rule]:
    return {
        rule
        for rule, pattern, accept in _ADDRESS_PATTERNS
        if next(_spans(pattern, text, accept), None) is not None
    }


def scan(text: str) -> tuple[Violation, ...]:
    """Every violation in ``text``, ordered by position (then by rule, in enum order).

    ``text`` is normalised first; offsets are into ``text`` as given. Matches of one
    rule never overlap; matches of different rules may (``0800123468`` can be both a
    phone number and an NHS number).
    """
    normal = _normal(text)
    found = [
        Violation(rule, *normal.original_span(start, end))
        for rule, start, end in _scan_normal(normal.text)
    ]
    found.sort(key=lambda v: (v.start, v.end, _RULE_ORDER[v.rule]))
    return tuple(found)


def _ordered(hit: set[Rule]) -> tuple[Rule, ...]:
    return tuple(rule for rule in Rule if rule in hit)


def violated_rules(text: str) -> tuple[Rule, ...]:
    """The distinct rules ``text`` violates, in enum order (stable, whatever the text)."""
    return _ordered({rule for rule, _, _ in _scan_normal(_normal(text).text)})


def _joined(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _refusal(field: str, rules: tuple[Rule, ...]) -> SchemaError:
    # Built from the field name and the rules alone: never from the text.
    named = _joined([f"{RULE_DESCRIPTIONS[rule]} (rule {rule.value})" for rule in rules])
    pronoun = "it" if len(rules) == 1 else "them"
    return SchemaError(
        f"{field} contains {named}; events describe practice in an area, not children: "
        f"remove {pronoun}"
    )


def check_minimised(text: str, field: str) -> None:
    """Raise :class:`SchemaError` if ``text`` holds personal data; return None otherwise.

    The message names ``field`` and every violated rule, and never the matched text,
    e.g. ``summary contains an NHS number (rule nhs_number) and an email address (rule
    email); events describe practice in an area, not children: remove them``.
    """
    rules = violated_rules(text)
    if rules:
        raise _refusal(field, rules)


# --- Evidence references ----------------------------------------------------------------

_ADDRESS: Final = re.compile(
    r"""
    (?<![\w@.+-])                   # not the tail of an email address or a longer word
    (?:
        (?P<web> (?:https?|ftp)://[^\s<>"]* | www\.[^\s<>"]*
               | (?:[a-z0-9-]+\.)+[a-z]{2,63}/[^\s<>"]* )
      | (?P<mail> mailto:[^\s<>"]* )
      | (?P<tel> (?:tel|sms|callto):[^\s<>"]* )
    )
    """,
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)
_TRAILING: Final = ".,;:!?'\""
_SLUG_JOIN: Final = re.compile(r"_|(?<=[^\W\d_])-|-(?=[^\W\d_])")
_MAX_DECODES: Final = 3


def _trimmed(address: str) -> str:
    # Prose punctuation after an address is not part of it; a ")" is, if it closes one.
    unclosed = address.count(")") - address.count("(")
    end = len(address)
    while end and (address[end - 1] in _TRAILING or (address[end - 1] == ")" and unclosed > 0)):
        unclosed -= address[end - 1] == ")"
        end -= 1
    return address[:end]


def _decoded(piece: str) -> str:
    for _ in range(_MAX_DECODES):  # "%2540" is "%40" is "@"
        decoded = unquote(piece, errors="replace")
        if decoded == piece:
            break
        piece = decoded
    return piece


def _web_address_text(address: str) -> tuple[str, bool]:
    """The words of a web address as prose, and whether it carries a user name.

    Path segments are joined with spaces (``/dob/...``), query and fragment parameters
    become ``key value`` pairs kept apart from each other, each part percent-decoded,
    and ``_`` and hyphens next to letters read as spaces (``date-of-birth``).
    """
    rest = address.split("://", 1)[1] if "://" in address else address
    cut = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, rest = rest[:cut], rest[cut:]
    path, _, params = rest.partition("?")
    if "#" in path:
        path, _, fragment = path.partition("#")
        params = f"{params}&{fragment}" if params else fragment
    parts = [" ".join(_decoded(segment) for segment in path.split("/") if segment)]
    parts += (
        " ".join(_decoded(side) for side in pair.split("=", 1))
        for pair in re.split(r"[&;#]", params.replace("+", " "))
    )
    text = " ; ".join(_SLUG_JOIN.sub(" ", part) for part in parts if part.strip())
    return text, "@" in authority


def _address_rules(match: re.Match[str]) -> set[Rule]:
    address = _trimmed(match.group())
    if match.group("tel"):
        return {Rule.PHONE_NUMBER} if any(c.isdigit() for c in address) else set()
    if match.group("mail"):
        text = _decoded(address.partition(":")[2]).replace("?", " ; ")
        return _rules_in_address(normalise(text)) | ({Rule.EMAIL} if "@" in text else set())
    text, has_user = _web_address_text(address)
    return _rules_in_address(normalise(text)) | ({Rule.EMAIL} if has_user else set())


def _reference_rules(text: str) -> tuple[Rule, ...]:
    """The distinct rules an evidence reference violates, in enum order."""
    normal = normalise(text)
    hit: set[Rule] = set()
    prose: list[str] = []
    position = 0
    for match in _ADDRESS.finditer(normal):
        end = match.start() + len(_trimmed(match.group()))
        prose.append(normal[position : match.start()])
        hit |= _address_rules(match)
        position = end
    prose.append(normal[position:])
    # " ; " keeps words either side of an address from joining into one match.
    hit |= {rule for rule, _, _ in _scan_normal(" ; ".join(prose))}
    return _ordered(hit)


def check_reference(text: str, path: str) -> None:
    """Raise :class:`SchemaError` if an evidence reference holds personal data.

    A reference is a web address (``https://www.gov.uk/...``) or a pointer into a
    report (``ILACS report, section 3``), or prose with addresses in it. Prose is read
    as :func:`check_minimised` reads free text. In a web address the path segments,
    query parameters and fragment are percent-decoded and read for an NHS number, a
    date of birth, a postcode and an email address; ids in it (``/provider/44/80512``,
    ``/location/1-123456789``) are not phone or NHS numbers, and a user name before the
    host (``https://jo@host/``) counts as an email address. ``mailto:`` is an email
    address and ``tel:`` a phone number. The message names ``path`` and the rules only.
    """
    rules = _reference_rules(text)
    if rules:
        raise _refusal(path, rules)
