"""Words and numbers as people read them: codes as labels, numbers, shares and dates in the
reader's language (French by default, English available), formatted by Babel — no hand-written
month names, decimal commas in French."""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import date as Date
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Literal

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.common.clock import PARIS

Lang = Literal["fr", "en"]
LOCALES: dict[str, str] = {"fr": "fr_FR", "en": "en_GB"}

# The codes the service shows people, by kind (the ops service shows the matcher's and the
# notifier's codes without importing their modules: reference data every service may use).
LABELS: dict[str, dict[str, dict[str, str]]] = {
    "unresolved": {
        "fr": {
            "no_candidate_in_radius": "aucun professionnel disponible dans le rayon",
            "outside_opening_hours": "hors des heures d'ouverture",
            "all_declined": "tous les professionnels sollicités ont refusé",
            "deadline_cannot_be_met": "délai impossible à tenir",
            "candidates_busy": "professionnels tous occupés",
            "cancelled": "annulée",
            "unknown": "raison inconnue",
        },
        "en": {
            "no_candidate_in_radius": "no professional available within the radius",
            "outside_opening_hours": "outside opening hours",
            "all_declined": "every professional asked declined",
            "deadline_cannot_be_met": "the deadline cannot be met",
            "candidates_busy": "every professional busy",
            "cancelled": "cancelled",
            "unknown": "unknown reason",
        },
    },
    "refusal": {
        "fr": {
            "full": "agenda complet",
            "absent": "absent",
            "outside_competence": "hors de sa compétence",
            "too_far": "trop loin",
            "other": "autre",
            "unspecified": "sans motif",
        },
        "en": {
            "full": "fully booked",
            "absent": "away",
            "outside_competence": "outside their competence",
            "too_far": "too far",
            "other": "other",
            "unspecified": "no reason given",
        },
    },
    "role": {
        "fr": {"coordinator": "coordinateur de CPTS", "sas_admin": "administrateur SAS", "regulator": "régulateur"},
        "en": {"coordinator": "CPTS coordinator", "sas_admin": "SAS administrator", "regulator": "regulator"},
    },
    "profession": {
        "fr": {
            "general_practitioner": "médecin généraliste",
            "dentist": "chirurgien-dentiste",
            "pharmacist": "pharmacien",
            "nurse": "infirmier",
            "physiotherapist": "masseur-kinésithérapeute",
            "midwife": "sage-femme",
        },
        "en": {
            "general_practitioner": "general practitioner",
            "dentist": "dentist",
            "pharmacist": "pharmacist",
            "nurse": "nurse",
            "physiotherapist": "physiotherapist",
            "midwife": "midwife",
        },
    },
    "outcome": {
        "fr": {
            "received": "reçue",
            "confirmed": "rendez-vous",
            "unresolved": "sans solution",
            "cancelled": "annulée",
            "offered": "proposée",
            "searching": "recherche en cours",
        },
        "en": {
            "received": "received",
            "confirmed": "appointment",
            "unresolved": "no solution",
            "cancelled": "cancelled",
            "offered": "offered",
            "searching": "searching",
        },
    },
    "participation": {
        "fr": {"individual": "à titre individuel", "via_cpts": "via la CPTS", "none": "ne participe pas"},
        "en": {"individual": "individually", "via_cpts": "through the CPTS", "none": "not taking part"},
    },
    "waiting": {
        "fr": {
            "candidates_busy": "en attente : professionnels occupés",
            "not_yet_open": "en attente : cabinets fermés",
            "on_pause": "en attente : professionnels en pause",
        },
        "en": {
            "candidates_busy": "waiting: professionals busy",
            "not_yet_open": "waiting: practices closed",
            "on_pause": "waiting: professionals on pause",
        },
    },
}


def N_(text: str) -> str:
    """Marks a French text for the catalogue where it is written; it is translated where shown."""
    return text


def choose(asked: str | None, accept_language: str | None, remembered: str | None = None) -> Lang:
    """The reader's language: asked for (`?lang=`), else remembered (a cookie), else the browser's
    first choice; French unless that is English."""
    for given in (asked, remembered):
        if given in ("fr", "en"):
            return "en" if given == "en" else "fr"
    first = (accept_language or "fr").split(",")[0].strip().lower()
    return "en" if first.startswith("en") else "fr"


def label(code: str | None, kind: str, lang: Lang = "fr") -> str:
    """The label of a code; the code itself when it has none (never an error on a new code)."""
    if code is None:
        return ""
    return LABELS.get(kind, {}).get(lang, {}).get(code, code)


def colon(lang: Lang = "fr") -> str:
    """French puts a space before a colon: "trop loin : 1", "too far: 1"."""
    return " : " if lang == "fr" else ": "


def number(value: float | int | None, lang: Lang = "fr", digits: int = 1) -> str:
    """`12,5` in French, `12.5` in English; a dash for no value."""
    if value is None:
        return "–"
    return str(format_decimal(value, format=f"#,##0.{'#' * digits}" if digits else "#,##0", locale=LOCALES[lang]))


def distance(km: float | None, lang: Lang = "fr") -> str:
    """`2,4 km` in French, `2.4 km` in English (a no-break space before the unit)."""
    return "–" if km is None else f"{number(km, lang)}\u00a0km"


def age_band(band: str | None, lang: Lang = "fr") -> str:
    """An age band (services/common/patient.py: `<2`, `2-17`, `18-29` … `90+`) in words."""
    if not band:
        return ""
    words = {
        "fr": {"<2": "nourrisson (< 2 ans)", "2-17": "enfant (2–17 ans)", "90+": "90 ans et plus"},
        "en": {"<2": "infant (under 2)", "2-17": "child (2–17)", "90+": "aged 90 and over"},
    }[lang]
    if band in words:
        return words[band]
    span = band.replace("-", "–")
    return f"{span} ans" if lang == "fr" else f"aged {span}"


def percent(share: float | None, lang: Lang = "fr") -> str:
    """A share (0 to 1) as `83 %` in French, `83%` in English; a dash for no value."""
    if share is None:
        return "–"
    return str(format_percent(share, locale=LOCALES[lang]))


def when(value: datetime | None, lang: Lang = "fr") -> str:
    """`mardi 24 novembre à 14:30` / `Tuesday 24 November at 14:30`, in Paris time."""
    if value is None:
        return ""
    pattern = "EEEE d MMMM 'à' HH:mm" if lang == "fr" else "EEEE d MMMM 'at' HH:mm"
    return str(format_datetime(value, pattern, tzinfo=PARIS, locale=LOCALES[lang]))


def when_short(value: datetime | None, lang: Lang = "fr") -> str:
    """`mer. 25 nov. à 09:15` / `Wed 25 Nov at 09:15`: fits a phone's time picker."""
    if value is None:
        return ""
    pattern = "EEE d MMM 'à' HH:mm" if lang == "fr" else "EEE d MMM 'at' HH:mm"
    return str(format_datetime(value, pattern, tzinfo=PARIS, locale=LOCALES[lang]))


def day(value: datetime | None, lang: Lang = "fr") -> str:
    """`24/11/2026 14:30` / `24/11/2026, 14:30`: a short date and time in Paris time."""
    if value is None:
        return ""
    return str(format_datetime(value, "short", tzinfo=PARIS, locale=LOCALES[lang]))


def date(value: Date | None, lang: Lang = "fr", short: bool = False) -> str:
    """`jeudi 3 décembre 2026` / `Thursday 3 December 2026`; short: `jeu. 3 déc.` / `Thu 3 Dec`."""
    if value is None:
        return ""
    pattern = "EEE d MMM" if short else "EEEE d MMMM y"  # Babel puts each language's words in order
    return str(format_date(value, pattern, locale=LOCALES[lang]))


@cache
def translations(locale_dir: Path, lang: str) -> gettext.NullTranslations:
    """The gettext catalogue `<locale_dir>/<lang>/LC_MESSAGES/messages.po`, compiled in memory
    (no generated .mo file to keep); none for the source language (French): texts as written."""
    po = locale_dir / lang / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as file:
        catalog = read_po(file, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(fp=compiled)


def clock_time(value: datetime | None) -> str:
    """`14:30`, Paris time (the same in both languages)."""
    return value.astimezone(PARIS).strftime("%H:%M") if value else ""


def page_templates(folder: Path, **filters: Callable[..., Any]) -> Environment:
    """The one way a service makes its pages' templates: HTML escaped, and the filters every page
    shares (`when`, `short`, `clock`, `day`, `date`, `label`, `number`, `percent`, `distance`,
    `age_band`), with the
    service's own (`filters`) beside them."""
    env = Environment(loader=FileSystemLoader(folder), autoescape=select_autoescape(["html"]))
    env.filters.update(
        when=when,
        short=when_short,
        clock=clock_time,
        day=day,
        date=date,
        label=label,
        number=number,
        percent=percent,
        distance=distance,
        age_band=age_band,
        **filters,
    )
    return env
