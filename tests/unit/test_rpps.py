"""Reading the national directory's extraction (services/matcher/domain/rpps.py), row by row:
who is kept, who is skipped and why, how names and practices are read."""

from __future__ import annotations

import pytest

from services.matcher.domain.rpps import InvalidExtraction, read_extraction
from tests.integration.rpps_file import HEADER, row

TERRITORY = {"79191", "79174"}


def test_a_general_practitioner_is_kept_with_a_name_and_a_practice() -> None:
    reading = read_extraction(
        ["|".join(HEADER), row("10000000001", "10", "SM54", "S1", "79191", **{"Téléphone (coord. structure)": "0549"})],
        TERRITORY,
    )
    assert reading.rows == 1 and not reading.skipped
    listed = reading.professionals["10000000001"]
    assert (listed.name, listed.profession) == ("Dr Camille NOM0001", "general_practitioner")
    [practice] = listed.practices
    assert practice.site_id == "rpps-S1" and practice.name == "CABINET S1" and practice.commune_insee == "79191"
    assert practice.address == {"line": "12 Rue de la Gare", "postal_code": "79000", "city": "NIORT"}
    assert (practice.phone, practice.email) == ("0549", "10000000001@cabinet.example.org")


@pytest.mark.parametrize(
    ("profession", "skill", "kept_as"),
    [("21", "", "pharmacist"), ("40", "", "dentist"), ("50", "", "midwife"), ("60", "", "nurse"),
     ("70", "", "physiotherapist")],
)  # fmt: skip
def test_the_other_professions_the_service_orients_to(profession: str, skill: str, kept_as: str) -> None:
    reading = read_extraction(["|".join(HEADER), row("10000000002", profession, skill, "S2", "79174")], TERRITORY)
    assert reading.professionals["10000000002"].profession == kept_as


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (row("10000000003", "10", "SM26", "S3", "79191"), "specialist physician"),
        (row("10000000004", "31", "", "S4", "79191"), "profession the service does not orient to"),
        (row("10000000005", "10", "SM54", "S5", "86194"), "practice outside the territory"),
        (row("10000000006", "10", "SM54", "S6", ""), "no commune code for the practice"),
        (row("0123456789", "10", "SM54", "S7", "79191", kind="0"), "not an RPPS identifier (ADELI or malformed)"),
        (row("10A0000008", "10", "SM54", "S8", "79191"), "not an RPPS identifier (ADELI or malformed)"),
    ],
)
def test_each_row_left_out_says_why(line: str, reason: str) -> None:
    reading = read_extraction(["|".join(HEADER), line], TERRITORY)
    assert reading.professionals == {} and dict(reading.skipped) == {reason: 1}


def test_one_professional_on_several_rows_has_each_practice_once() -> None:
    rows = [
        row("10000000009", "10", "SM54", "S9", "79191"),
        row("10000000009", "10", "SM54", "S9", "79191"),  # the same practice, another activity
        row("10000000009", "10", "SM54", "S10", "79174"),
    ]
    reading = read_extraction(["|".join(HEADER), *rows], TERRITORY)
    assert [p.site_id for p in reading.professionals["10000000009"].practices] == ["rpps-S9", "rpps-S10"]


def test_identifiers_of_practices_keep_only_safe_characters_and_a_name_falls_back_to_the_town() -> None:
    odd = row("10000000011", "60", "", "F/79 <x>", "79191", **{"Raison sociale site": ""})
    [practice] = read_extraction(["|".join(HEADER), odd], TERRITORY).professionals["10000000011"].practices
    assert practice.site_id == "rpps-F79x" and practice.name == "Cabinet NIORT"


def test_a_file_without_the_needed_columns_is_refused_by_name() -> None:
    with pytest.raises(InvalidExtraction, match=r"missing columns .*Identifiant PP"):
        read_extraction(["Nom|Prénom", "A|B"], TERRITORY)
    columns_moved = [*reversed(HEADER)]  # columns are read by name, never by position
    line = "|".join(reversed(row("10000000012", "10", "SM54", "S12", "79191").split("|")))
    assert "10000000012" in read_extraction(["|".join(columns_moved), line], TERRITORY).professionals
