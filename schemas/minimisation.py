"""Data-minimisation lint for the free text of events (``summary``, ``shareable_learning``).

Events describe practice in a local area, never individual children, so free text that
holds personal data is refused before an event is accepted. The refusal names the field
and the rule, never the matched text: the error travels into logs, dead-letter records
and other inspectorates' screens, and repeating the data there would leak it further.

The lint is a safety net for honest mistakes, not a guarantee: each rule is tuned to
catch the usual ways the data is written while leaving ordinary inspection prose alone.
Digits are ASCII digits (``0``-``9``) throughout; letters match in any case.

Rules
-----
``nhs_number``
    Ten digits that pass the NHS modulus-11 check (:func:`nhs_number_is_valid`), written
    run together (``9434765919``) or as 3-3-4 groups split by one space, hyphen or
    no-break space (``943 476 5919``, ``943-476-5919``). Not flagged: ten digits failing
    the check, digits inside a longer digit run (``19434765919``), other groupings.

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
    Not flagged: an outward code alone (``SW1A``, ``the M1 area``), letters that are not
    a postcode area (``A4 2ND``), a code glued to other letters or digits.

``email``
    Something, ``@``, then a dotted domain whose last label is at least two letters:
    ``jo.bloggs+cp@example.org.uk``. Not flagged: ``user at example dot com``,
    ``@handle``, ``user@localhost``, an ``@`` with spaces around it.

``phone_number``
    ``+44`` or ``0044`` (maybe bracketed, then optionally ``(0)`` or a stray ``0``), or a
    leading ``0``
    (optionally after an opening bracket), then a national number of ten digits starting
    1, 2, 3, 5, 7, 8 or 9, or of nine digits starting 1 or 800. Between two digits may
    stand one space or hyphen, or a closing bracket with an optional space or hyphen:
    ``07700 900123``, ``+44 (0)20 7946 0018``, ``(0161) 496 0000``, ``0113-496-0000``.
    Not flagged: years and counts (``2024``, ``1,200``), ``section 47``, ``s.17``,
    numbers too short or too long, numbers starting ``04`` or ``06``, digits glued to a
    word or a longer number before them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from schemas.errors import SchemaError

__all__ = [
    "RULE_DESCRIPTIONS",
    "Rule",
    "Violation",
    "check_minimised",
    "nhs_number_is_valid",
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


RULE_DESCRIPTIONS: Final[Mapping[Rule, str]] = MappingProxyType(
    {
        Rule.NHS_NUMBER: "an NHS number",
        Rule.DATE_OF_BIRTH: "a date of birth",
        Rule.POSTCODE: "a full postcode",
        Rule.EMAIL: "an email address",
        Rule.PHONE_NUMBER: "a phone number",
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
    (?<!\d)                         # not the tail of a longer digit run
    (?:
        \d{10}                      # run together
      | \d{3} [ \u00a0-] \d{3} [ \u00a0-] \d{4}   # 3-3-4, as the NHS prints it
    )
    (?!\d)                          # not the head of a longer digit run
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
    (?<![a-z0-9])                   # not glued to a longer code or word
    (?:
        (?: {"|".join(_POSTCODE_AREAS.split())} )
        \d (?: \d | [a-hjkmnpr-y] )?    # district: 1, 12, 1A (letters as Royal Mail uses)
        [ \u00a0]?                      # the single space is often dropped
        \d [abd-hjlnp-uw-z]{{2}}        # inward code: never C, I, K, M, O or V
      | gir [ \u00a0]? 0aa              # Girobank's historic non-standard code
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
        [1-9] (?: (?: \)[ -]? | [ -] )? \d ){8,9}   # each digit is read one way only
    )
    (?!\d)
    """,
    re.VERBOSE | re.ASCII,
)

_NINE_DIGITS: Final = 9
_TEN_DIGIT_LEADS: Final = frozenset("1235789")


def _nhs_match_is_valid(match: re.Match[str]) -> bool:
    return nhs_number_is_valid(re.sub(r"\D", "", match.group(), flags=re.ASCII))


def _phone_match_is_valid(match: re.Match[str]) -> bool:
    # Ofcom's numbering: ten national digits for every range in use (01, 02, 03, 05,
    # 07, 08, 09); nine for some 01 areas and for 0800's older numbers.
    national = re.sub(r"\D", "", match.group("national"), flags=re.ASCII)
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


def scan(text: str) -> tuple[Violation, ...]:
    """Every violation in ``text``, ordered by position (then by rule, in enum order).

    Matches of one rule never overlap; matches of different rules may (``0800123468``
    can be both a phone number and an NHS number).
    """
    found = [
        Violation(rule, start, end)
        for rule, pattern, accept in _PATTERNS
        for start, end in _spans(pattern, text, accept)
    ]
    found.sort(key=lambda v: (v.start, v.end, _RULE_ORDER[v.rule]))
    return tuple(found)


def violated_rules(text: str) -> tuple[Rule, ...]:
    """The distinct rules ``text`` violates, in enum order (stable, whatever the text)."""
    hit = {violation.rule for violation in scan(text)}
    return tuple(rule for rule in Rule if rule in hit)


def _joined(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def check_minimised(text: str, field: str) -> None:
    """Raise :class:`SchemaError` if ``text`` holds personal data; return None otherwise.

    The message names ``field`` and every violated rule, and never the matched text,
    e.g. ``summary contains an NHS number (rule nhs_number) and an email address (rule
    email); events describe practice in an area, not children: remove them``.
    """
    rules = violated_rules(text)
    if not rules:
        return
    named = _joined([f"{RULE_DESCRIPTIONS[rule]} (rule {rule.value})" for rule in rules])
    pronoun = "it" if len(rules) == 1 else "them"
    raise SchemaError(
        f"{field} contains {named}; events describe practice in an area, not children: "
        f"remove {pronoun}"
    )
