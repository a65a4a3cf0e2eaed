"""Sentiment of one text, pure: a string in, a ``Scored`` out; no database.

The lexicon is VADER's (``vaderSentiment`` from PyPI, MIT): a word list with valences plus
rules for negation ("not good"), boosters ("very slow"), capitals and "!". It ships inside
the package and runs offline: nothing is downloaded, no text leaves the machine. A few
words of software support it lacks are added (``SUPPORT_LEXICON``: "slow", "outage" …).

Before scoring, a text is **cleaned** (``clean``): HTML tags stripped (``strip_tags``),
entities decoded and stripped again (``&lt;b&gt;`` must not come back as markup), control
characters and runs of whitespace collapsed, and cut to ``MAX_CHARS`` characters at a word
boundary with a note ("truncated from 12,345 characters"): a 5 MB e-mail body neither slows
the batch nor ends up on a page. The cleaned text is what is stored and quoted.

A text is **not scored** (score ``None``, with a note) when nothing is left after cleaning
("empty"), when it has no letters ("no words"), or when it does not look like English: more
than a third of its letters outside the Latin alphabet, or at least two function words of
German, French, Spanish, Italian, Portuguese or Dutch ("und", "est", "muy" …) and more of
them than English ones ("the", "is", "and" …). The lexicon only knows English; a neutral 0
for a German complaint would be a wrong number, not "no data".

The score is VADER's compound valence (−1..1) × 100, rounded: −100..100, above 0 positive.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cache

from django.utils.html import strip_tags

MAX_CHARS = 2000
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"[^\W\d_]+")
# Function words: a text with more of another language's than of English's is not English.
# Terse English notes ("Integration sync errors every night") have none of either: scored.
_ENGLISH = frozenset(
    (
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "i",
        "we",
        "you",
        "they",
        "he",
        "she",
        "it",
        "this",
        "that",
        "these",
        "those",
        "and",
        "or",
        "but",
        "not",
        "no",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "as",
        "if",
        "so",
        "do",
        "does",
        "did",
        "can",
        "cannot",
        "could",
        "would",
        "should",
        "will",
        "have",
        "has",
        "had",
        "our",
        "my",
        "your",
        "their",
        "its",
        "me",
        "us",
        "them",
        "what",
        "when",
        "why",
        "how",
        "there",
        "here",
    )  # fmt: skip
)
_FOREIGN = frozenset(
    (
        # German, French, Spanish, Italian, Portuguese, Dutch
        "der",
        "die",
        "das",
        "und",
        "ist",
        "nicht",
        "ein",
        "eine",
        "mit",
        "sehr",
        "wir",
        "ich",
        "le",
        "la",
        "les",
        "et",
        "est",
        "un",
        "une",
        "des",
        "du",
        "pas",
        "nous",
        "très",
        "avec",
        "el",
        "los",
        "las",
        "y",
        "es",
        "una",
        "por",
        "para",
        "muy",
        "con",
        "pero",
        "está",
        "il",
        "di",
        "che",
        "non",
        "è",
        "molto",
        "sono",
        "gli",
        "della",
        "os",
        "um",
        "uma",
        "não",
        "com",
        "muito",
        "são",
        "uns",
        "het",
        "een",
        "niet",
        "en",
        "zijn",
        "wij",
        "zeer",
        "maar",
    )  # fmt: skip
)


@dataclass(frozen=True)
class Cleaned:
    text: str  # no markup, single spaces, at most MAX_CHARS characters
    truncated: bool
    note: str  # "" or "truncated from N characters"


@dataclass(frozen=True)
class Scored:
    text: str
    score: int | None  # −100..100; None = not scored (see note)
    truncated: bool
    note: str


def clean(raw: str | None, *, max_chars: int = MAX_CHARS) -> Cleaned:
    """The text without markup, entities, control characters or runs of whitespace, cut at
    a word boundary to ``max_chars`` (noted)."""
    text = strip_tags(html.unescape(strip_tags(raw or "")))
    text = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(text) <= max_chars:
        return Cleaned(text, False, "")
    cut = text[:max_chars]
    space = cut.rfind(" ")
    if space > max_chars * 0.8:  # cut at a word boundary unless the last word is huge
        cut = cut[:space]
    return Cleaned(cut.rstrip() + " …", True, f"truncated from {len(text):,} characters")


def _not_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if sum(1 for c in letters if c > "\u024f") > len(letters) / 3:  # beyond Latin Extended-B
        return True
    words = [w.lower() for w in _WORD.findall(text)]
    foreign = sum(1 for w in words if w in _FOREIGN)
    return foreign >= 2 and foreign > sum(1 for w in words if w in _ENGLISH)


# Words of software support that VADER's general lexicon lacks ("slow" is neutral there), on
# its scale (−4..4). Only added where the lexicon has no entry: VADER's own values stand.
SUPPORT_LEXICON = {
    "slow": -1.5, "slowly": -1.2, "slower": -1.5, "laggy": -1.7, "buggy": -2.0, "bug": -1.2,
    "bugs": -1.2, "unusable": -2.8, "outage": -2.2, "outages": -2.2, "downtime": -1.8,
    "timeout": -1.5, "timeouts": -1.5, "crashes": -1.8, "crashed": -1.8, "crashing": -1.8,
    "overcharged": -2.2, "frozen": -1.2, "fast": 1.2, "faster": 1.3, "smooth": 1.5,
    "intuitive": 1.8, "reliable": 1.8, "seamless": 1.8,
}  # fmt: skip


@cache
def _analyzer():
    # imported lazily: the lexicon (7,500 words) is read once per process, on first use
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    for word, valence in SUPPORT_LEXICON.items():
        analyzer.lexicon.setdefault(word, valence)
    return analyzer


def score(raw: str | None) -> Scored:
    """Clean ``raw`` and score it; see the module docstring for the rules."""
    cleaned = clean(raw)
    notes = [cleaned.note] if cleaned.note else []
    text = cleaned.text
    if not text:
        return Scored(text, None, False, "not scored: empty")
    if not _WORD.search(text):
        return Scored(text, None, cleaned.truncated, "; ".join([*notes, "not scored: no words"]))
    if _not_english(text):
        return Scored(text, None, cleaned.truncated, "; ".join([*notes, "not scored: not English"]))
    compound = _analyzer().polarity_scores(text)["compound"]
    return Scored(text, round(compound * 100), cleaned.truncated, "; ".join(notes))


def account_sentiment(
    scores: list[tuple[int, int]], *, window_days: int = 90, half_life_days: float = 30
) -> float | None:
    """An account's sentiment from its scored texts ``[(age_days, score), …]``: the mean of
    the scores weighted by recency, a text's weight halving every ``half_life_days`` (today
    1, 30 days ago 0.5, 60 days ago 0.25). Texts older than ``window_days`` (or from the
    future) are left out. −100..100, one decimal; None when no text is left ("no data",
    never 0)."""
    total = weights = 0.0
    for age, value in scores:
        if 0 <= age < window_days:
            w = 0.5 ** (age / half_life_days)
            total += w * value
            weights += w
    if not weights:
        return None
    return round(total / weights, 1)
