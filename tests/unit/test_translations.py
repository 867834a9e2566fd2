"""The professional's pages in French (as written) and English (a gettext catalogue, read with Babel)."""

from __future__ import annotations

import re
from pathlib import Path

from services.common import i18n
from services.notifier.domain import REFUSAL_REASONS
from services.notifier.pages import LOCALE, MESSAGES, TEMPLATES, refusal_reasons, texts


def offer_page_texts() -> list[str]:
    """Every French text of the offer pages: `_("…")` in their templates."""
    return [
        m.group(2)
        for template in sorted(TEMPLATES.glob("*.html"))
        for m in re.finditer(r'_\((["\'])(.+?)\1\)', template.read_text())
    ]


def test_every_text_of_the_pages_has_its_english_translation() -> None:
    english = i18n.translations(LOCALE, "en")
    assert len(offer_page_texts()) > 25 and "Accepter" in offer_page_texts()
    sources = [*offer_page_texts(), *REFUSAL_REASONS.values()]
    sources += [text for notice in MESSAGES.values() for text in notice.fr]
    untranslated = [text for text in sources if english.gettext(text) == text and text not in ("Patient",)]
    assert untranslated == []


def test_french_is_the_text_as_written_and_english_comes_from_the_catalogue() -> None:
    assert texts("fr")("Accepter") == "Accepter" and texts("en")("Accepter") == "Accept"
    assert texts("en")("English") == "Français" and texts("fr")("English") == "English"
    assert refusal_reasons("en")["too_far"] == "Too far"
    assert MESSAGES["expired"].text("en")[0] == "Too late"
    assert texts("de")("Accepter") == "Accepter"  # no catalogue: the source language


def own_page_texts() -> list[str]:
    """Every French text of the professional's own page: `_("…")` in its templates, the notices
    and confirmations, and the reasons a change is refused (`Refused(field, "…")`)."""
    from services.matcher.entrypoints import pages as own

    found: list[str] = []
    for template in sorted(own.TEMPLATES.glob("own_*.html")):
        found += [m.group(2) for m in re.finditer(r'_\((["\'])(.+?)\1\)', template.read_text())]
    found += list(own.DONE.values()) + [text for title, body, _ in own.NOTICES.values() for text in (title, body)]
    found += list(own.RELATIVE_DAYS)
    for source in ("domain/own_space.py", "own_space.py", "entrypoints/pages.py"):
        code = (Path(own.__file__).parents[1] / source).read_text()
        found += re.findall(r'Refused\(\s*"\w+",\s*"(.+?)"\s*\)', code) + re.findall(r'gettext\("(.+?)"\)', code)
    return found


def test_every_text_of_the_own_page_has_its_english_translation() -> None:
    from services.matcher.entrypoints.pages import LOCALE as OWN_LOCALE

    texts_ = own_page_texts()
    assert len(texts_) > 60 and "Publier ce créneau" in texts_ and "Cet horaire est déjà passé." in texts_
    english = i18n.translations(OWN_LOCALE, "en")
    assert [t for t in texts_ if english.gettext(t) == t and t != "Consultation"] == []


def ops_page_texts() -> list[str]:
    """Every French text of the operations pages: `_("…")` in the templates, and in the code the
    texts marked `N_("…")` where written and the charts' `t("…")`."""
    from services.ops import deps

    here = Path(deps.__file__).parent
    found: list[str] = []
    for template in sorted((here / "templates").glob("*.html")):
        found += [m.group(2) for m in re.finditer(r'_\((["\'])(.+?)\1\)', template.read_text())]
    for module in sorted(here.glob("*.py")):
        code = module.read_text()
        found += re.findall(r'\bN_\(\s*"(.+?)"\s*\)', code) + re.findall(r'\bt\(\s*"(.+?)"\s*\)', code)
        found += re.findall(r"\bt\(\s*'(.+?)'\s*\)", code)
    return found


def test_every_text_of_the_operations_pages_has_its_english_translation() -> None:
    from services.ops.deps import LOCALE as OPS_LOCALE

    texts_ = ops_page_texts()
    assert len(texts_) > 100 and "Annuaire" in texts_ and "Adresse ou mot de passe incorrect." in texts_
    english = i18n.translations(OPS_LOCALE, "en")
    assert [t for t in texts_ if english.gettext(t) == t and t not in ("Pause", "Action")] == []


def template_texts(*folders: Path) -> list[str]:
    return [
        m.group(2)
        for folder in folders
        for template in sorted(folder.glob("*.html"))
        for m in re.finditer(r'_\((["\'])(.+?)\1\)', template.read_text())
    ]


def test_every_text_of_the_front_door_and_the_console_has_its_english_translation() -> None:
    from services.common.pages import SHARED_TEMPLATES
    from services.intake import pages as intake

    found = template_texts(intake.TEMPLATES, SHARED_TEMPLATES)
    for code in sorted(Path(intake.__file__).parent.glob("console*.py")):
        found += re.findall(r'\bN_\(\s*"(.+?)"\s*\)', code.read_text())
    assert "Console des régulateurs" in found and "Aller au contenu" in found and "Valeur refusée." in found
    english = i18n.translations(intake.LOCALE, "en")
    assert [t for t in found if english.gettext(t) == t and t not in ("Patient", "Actions")] == []


def test_the_shared_layout_speaks_english_in_the_trial_mailbox_too() -> None:
    from services.common.pages import SHARED_TEMPLATES

    english = i18n.translations(LOCALE, "en")
    assert [t for t in template_texts(SHARED_TEMPLATES) if english.gettext(t) == t] == []
