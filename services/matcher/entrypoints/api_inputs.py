"""What the directory API reads: the bodies a client sends, checked before anything is done
(a 422 names the field). Pure models, no I/O."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import EmailStr, Field, HttpUrl, field_validator, model_validator

from services.common import geo
from services.common.inputs import IDENT, INSEE, PHONE, InputModel, Instant
from services.matcher.directory.professionals import SiteInput
from services.matcher.domain.availability import Recurring, rule_of
from services.matcher.domain.opening_hours import InvalidOpeningHours, WeeklyHours

Profession = Literal["general_practitioner", "dentist", "pharmacist", "nurse", "physiotherapist", "midwife"]


class StartBeforeEnd(InputModel):
    """A period: a closure, a slot, a daily window of a template."""

    start: Any
    end: Any

    @model_validator(mode="after")
    def ordered(self) -> StartBeforeEnd:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class TerritoryIn(InputModel):
    name: str = Field(min_length=1, max_length=200)
    communes: list[str] = Field(min_length=1, max_length=2000)
    radius_km: float = Field(default=30.0, gt=0, le=300)
    offer_timeout_minutes: float = Field(default=15.0, ge=1, le=240, description="time to answer an offer")
    parallel_offers: int = Field(
        default=1, ge=1, le=5, description="professionals asked at once; the first to accept takes the patient"
    )
    finess: str | None = Field(
        default=None,
        pattern=r"^(?:[0-9]{2}|2A|2B)[0-9]{7}$",
        description="the CPTS's FINESS number: its identity for the national SAS platform (FHIR Organization)",
    )

    @field_validator("communes")
    @classmethod
    def known_communes(cls, communes: list[str]) -> list[str]:
        unknown = [c for c in communes if geo.commune(c) is None]
        if unknown:
            raise ValueError(f"unknown INSEE commune codes: {', '.join(unknown[:10])}")
        return sorted({geo.communes()[c].current for c in communes})


class ClosureIn(StartBeforeEnd):
    start: Instant
    end: Instant
    reason: str | None = Field(default=None, max_length=200)


class AddressIn(InputModel):
    line: str = Field(default="", max_length=200, description="number and street")
    postal_code: str = Field(default="", pattern=r"^([0-9]{5})?$")
    city: str = Field(default="", max_length=100)


class SiteIn(InputModel):
    site_id: str = Field(pattern=IDENT)
    name: str = Field(min_length=1, max_length=200)
    commune_insee: str | None = Field(default=None, pattern=INSEE)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    opening_hours: dict[str, list[list[str]]] | None = Field(default=None, max_length=7)
    address: AddressIn | None = Field(default=None, description="shown to the regulator with the appointment")
    closures: list[ClosureIn] = Field(
        default_factory=list, max_length=100, description="holidays, absences: the site is closed"
    )

    @model_validator(mode="after")
    def located(self) -> SiteIn:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        if self.commune_insee is None and self.lat is None:
            raise ValueError("give commune_insee, or lat and lon")
        if self.commune_insee is not None and geo.commune(self.commune_insee) is None:
            raise ValueError(f"unknown INSEE commune code {self.commune_insee!r}")
        if self.opening_hours is not None:
            try:
                WeeklyHours.parse(self.opening_hours)
            except InvalidOpeningHours as error:
                raise ValueError(f"opening_hours: {error}") from None
        return self


class ChannelIn(InputModel):
    """How to reach the professional; e-mail and SMS use the professional's address and phone."""

    type: Literal["email", "sms", "webhook"]
    url: HttpUrl | None = Field(default=None, description="webhook only: where the booking software listens")

    @model_validator(mode="after")
    def addressed(self) -> ChannelIn:
        if (self.type == "webhook") != (self.url is not None):
            raise ValueError("a webhook needs a url, and only a webhook has one")
        return self


class ProfessionalIn(InputModel):
    name: str = Field(min_length=1, max_length=200)
    profession: Profession
    cpts_id: str | None = Field(default=None, pattern=IDENT)
    sas_participation: Literal["individual", "via_cpts", "none"] = "none"
    accepts_overflow: bool = False
    overflow_daily_cap: int = Field(default=0, ge=0, le=50)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, pattern=PHONE)
    teleconsultation: bool = Field(default=False, description="takes overflow patients by teleconsultation too")
    channels: list[ChannelIn] | None = Field(
        default=None, max_length=10, description="in order; by default e-mail, then SMS when a phone is given"
    )
    active: bool = True
    sites: list[SiteIn] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def reachable(self) -> ProfessionalIn:
        for channel in self.channels or []:
            if channel.type == "email" and not self.email:
                raise ValueError("an email channel needs the email address")
            if channel.type == "sms" and not self.phone:
                raise ValueError("an sms channel needs the phone number")
        return self

    def channel_list(self) -> list[dict[str, str]]:
        given = self.channels
        if given is None:
            given = [ChannelIn(type="email")] if self.email else []
            given += [ChannelIn(type="sms")] if self.phone else []
        address = {"email": self.email, "sms": self.phone}
        return [{"type": c.type, "destination": str(c.url) if c.url else str(address[c.type])} for c in given]

    @field_validator("sites")
    @classmethod
    def distinct_sites(cls, sites: list[SiteIn]) -> list[SiteIn]:
        if len({s.site_id for s in sites}) != len(sites):
            raise ValueError("site_id values must be distinct")
        return sites


class SlotIn(StartBeforeEnd):
    rpps: str = Field(pattern=IDENT)
    site_id: str = Field(pattern=IDENT)
    start: Instant
    end: Instant
    mode: Literal["in_person", "teleconsultation"] = "in_person"


class RecurringIn(StartBeforeEnd):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(min_length=1, max_length=7)
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="Paris time, HH:MM")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    minutes: int = Field(default=20, ge=5, le=240, description="length of each slot")
    mode: Literal["in_person", "teleconsultation"] = "in_person"

    def rule(self) -> Recurring:
        return rule_of(self.model_dump())


class AvailabilityIn(InputModel):
    site_id: str = Field(pattern=IDENT)
    weeks: int = Field(default=4, ge=1, le=12, description="how far ahead, from today")
    rules: list[RecurringIn] = Field(min_length=1, max_length=20)


def site_input(site: SiteIn) -> SiteInput:
    if site.lat is not None and site.lon is not None:
        lat, lon = site.lat, site.lon
        department = geo.communes()[site.commune_insee].department if site.commune_insee else None
    else:
        commune = geo.communes()[site.commune_insee or ""]
        lat, lon, department = commune.lat, commune.lon, commune.department
    closures = [
        {"start": c.start.isoformat(), "end": c.end.isoformat(), "reason": c.reason or ""} for c in site.closures
    ]
    return SiteInput(
        site.site_id,
        site.name,
        site.commune_insee,
        department,
        lat,
        lon,
        site.opening_hours,
        closures or None,
        site.address.model_dump() if site.address else None,
    )
