"""The professional's pages in French (as written) and English (a gettext catalogue, read with Babel)."""

from __future__ import annotations

from services.common import i18n
from services.notifier.domain import REFUSAL_REASONS
from services.notifier.pages import LOCALE, MESSAGES, SOURCE, refusal_reasons, texts


def test_every_text_of_the_pages_has_its_english_translation() -> None:
    english = i18n.translations(LOCALE, "en")
    sources = [*SOURCE.values(), *REFUSAL_REASONS.values()]
    sources += [text for notice in MESSAGES.values() for text in notice.fr]
    untranslated = [text for text in sources if english.gettext(text) == text and text not in ("Patient",)]
    assert untranslated == []


def test_french_is_the_text_as_written_and_english_comes_from_the_catalogue() -> None:
    assert texts("fr")["accept"] == "Accepter" and texts("en")["accept"] == "Accept"
    assert texts("en")["switch"] == "Français" and texts("fr")["switch"] == "English"
    assert refusal_reasons("en")["too_far"] == "Too far"
    assert MESSAGES["expired"].text("en")[0] == "Too late"
    assert texts("de") == texts("fr")  # no catalogue: the source language
