"""voice.sentiment: pure, no database."""

from __future__ import annotations

import pytest

from voice import sentiment


@pytest.mark.parametrize(
    "text",
    [
        "We love the new dashboards, the team is thrilled and everything works great!",
        "Excellent onboarding, thank you so much for the quick help",
        "Really happy with how fast support solved it",
    ],
)
def test_clearly_positive_texts_score_above_zero(text):
    assert sentiment.score(text).score > 20


@pytest.mark.parametrize(
    "text",
    [
        "The export is terribly slow and keeps failing, we are very frustrated",
        "Billing is a mess, we were charged twice and nobody answers. Awful.",
        "This is the worst outage yet, we are angry and considering cancelling",
    ],
)
def test_clearly_negative_texts_score_below_zero(text):
    assert sentiment.score(text).score < -20


def test_negation_flips_the_sign():
    assert sentiment.score("The new release is good").score > 0
    assert sentiment.score("The new release is not good").score < 0


def test_markup_is_stripped_before_scoring_and_storing():
    s = sentiment.score("<p>Export is <b>slow</b> &amp; <script>x()</script>keeps failing</p>")
    assert "<" not in s.text and ">" not in s.text
    assert s.text.startswith("Export is slow & ")
    assert s.score < 0


def test_escaped_markup_does_not_come_back_as_markup():
    s = sentiment.score("&lt;img src=x onerror=alert(1)&gt; great product")
    assert "<" not in s.text and "onerror" not in s.text
    assert s.text == "great product"


def test_very_long_text_is_truncated_with_a_note():
    raw = "The export is slow. " * 1000  # 20,000 characters
    s = sentiment.score(raw)
    assert s.truncated and len(s.text) <= sentiment.MAX_CHARS + 2
    assert s.text.endswith(" …")
    assert s.note == "truncated from 19,999 characters"  # trailing space stripped
    assert s.score < 0


@pytest.mark.parametrize("raw", [None, "", "   \n\t ", "<p></p>", "<br/>&nbsp;"])
def test_empty_texts_are_not_scored(raw):
    s = sentiment.score(raw)
    assert s.score is None and s.note == "not scored: empty"


def test_texts_without_words_are_not_scored():
    assert sentiment.score("12345 !!! :-)").note == "not scored: no words"


@pytest.mark.parametrize(
    "text",
    [
        "Das Produkt ist nicht gut und der Export ist sehr langsam",
        "Le produit est lent et les exports ne marchent pas",
        "这个产品很好用，但是导出太慢了",
        "Экспорт работает очень медленно",
    ],
)
def test_non_english_texts_are_not_scored_not_zero(text):
    s = sentiment.score(text)
    assert s.score is None and s.note == "not scored: not English"
    assert s.text == text  # kept for themes and quotes


def test_terse_english_is_still_english():
    assert sentiment.score("CRM integration sync keeps failing").score < 0


def test_control_characters_and_whitespace_are_collapsed():
    assert sentiment.clean("a\x00b\n\n  c\x1fd").text == "a b c d"


def test_account_sentiment_is_recency_weighted_by_hand():
    # today +60 (weight 1), 30 days ago −60 (weight 0.5): (60 − 30) / 1.5 = 20
    assert sentiment.account_sentiment([(0, 60), (30, -60)]) == 20.0
    # 60 days ago weighs 0.25: (1 × 10 + 0.25 × 90) / 1.25 = 26
    assert sentiment.account_sentiment([(0, 10), (60, 90)]) == 26.0


def test_account_sentiment_has_no_data_without_recent_texts():
    assert sentiment.account_sentiment([]) is None
    assert sentiment.account_sentiment([(90, -80), (200, 50)]) is None  # all outside 90 days
    assert sentiment.account_sentiment([(-1, 50)]) is None  # from the future


def test_account_sentiment_of_neutral_texts_is_zero_not_none():
    assert sentiment.account_sentiment([(3, 0), (10, 0)]) == 0.0


@pytest.mark.parametrize(
    ("score", "words"),
    [(-51.2, "negative sentiment −51"), (0.4, "neutral sentiment 0"), (35, "positive sentiment +35"),
     (None, "no sentiment")],
)  # fmt: skip
def test_a_sentiment_on_its_own_says_what_the_number_is(score, words):
    from voice.templatetags.voice import sentiment_text

    assert sentiment_text(score) == words
