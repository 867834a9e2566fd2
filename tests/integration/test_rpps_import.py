"""The national directory's extraction imported for a territory, on a generated file with the real header."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from schemas.topics import Topics
from services.matcher.directory import Directory
from services.matcher.rpps_import import import_extraction
from tests.integration.helpers import migrated

# The extraction's header, with columns the import does not read, in the file's order
HEADER = [
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP", "Code civilité d'exercice",
    "Libellé civilité d'exercice", "Code civilité", "Libellé civilité", "Nom d'exercice", "Prénom d'exercice",
    "Code profession", "Libellé profession", "Code catégorie professionnelle", "Libellé catégorie professionnelle",
    "Code type savoir-faire", "Libellé type savoir-faire", "Code savoir-faire", "Libellé savoir-faire",
    "Code mode exercice", "Libellé mode exercice", "Numéro SIRET site", "Numéro SIREN site", "Numéro FINESS site",
    "Numéro FINESS établissement juridique", "Identifiant technique de la structure", "Raison sociale site",
    "Enseigne commerciale site", "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)", "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)", "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)", "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)", "Bureau cedex (coord. structure)", "Code postal (coord. structure)",
    "Code commune (coord. structure)", "Libellé commune (coord. structure)", "Code pays (coord. structure)",
    "Libellé pays (coord. structure)", "Téléphone (coord. structure)", "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)", "Adresse e-mail (coord. structure)", "Code Département (structure)",
    "Libellé Département (structure)", "Ancien identifiant de la structure", "Autorité d'enregistrement",
    "Code secteur d'activité", "Libellé secteur d'activité", "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens", "Code rôle", "Libellé rôle", "Code genre activité", "Libellé genre activité",
]  # fmt: skip
TERRITORY = ["79191", "79174", "79049", "79081", "79003"]  # Niort, Melle, Celles-sur-Belle, Chef-Boutonne, Aiffres
OUTSIDE = ["86194", "17300"]  # Poitiers, La Rochelle
IN_SCOPE = [("10", "SM54", "general_practitioner"), ("21", "", "pharmacist"), ("40", "", "dentist"),
            ("50", "", "midwife"), ("60", "", "nurse"), ("70", "", "physiotherapist")]  # fmt: skip


def row(rpps: str, profession: str, skill: str, structure: str, commune: str, kind: str = "8", **more: str) -> str:
    values = dict.fromkeys(HEADER, "")
    values |= {
        "Type d'identifiant PP": kind,
        "Identifiant PP": rpps,
        "Identification nationale PP": f"{kind}{rpps}",
        "Libellé civilité d'exercice": "Docteur" if profession == "10" else "",
        "Nom d'exercice": f"NOM{rpps[-4:]}",
        "Prénom d'exercice": "Camille",
        "Code profession": profession,
        "Code savoir-faire": skill,
        "Code mode exercice": "L",
        "Identifiant technique de la structure": structure,
        "Raison sociale site": f"CABINET {structure}",
        "Numéro Voie (coord. structure)": "12",
        "Libellé type de voie (coord. structure)": "Rue",
        "Libellé Voie (coord. structure)": "de la Gare",
        "Code postal (coord. structure)": "79000",
        "Code commune (coord. structure)": commune,
        "Libellé commune (coord. structure)": "NIORT",
        "Code pays (coord. structure)": "99000",
        "Adresse e-mail (coord. structure)": f"{rpps}@cabinet.example.org",
        **more,
    }
    return "|".join(values[name] for name in HEADER)


def generate(path: Path, seed: int = 7) -> dict[str, object]:
    """A few thousand rows, and what an import of them must find."""
    rnd = random.Random(seed)
    lines, expected = ["|".join(HEADER)], {"professionals": set(), "skipped": {}}
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    for n in range(3000):
        rpps = f"10{n:09d}"
        draw = rnd.random()
        if draw < 0.55:
            profession, skill, _ = rnd.choice(IN_SCOPE)
            lines.append(row(rpps, profession, skill, f"R{n:06d}", rnd.choice(TERRITORY)))
            expected["professionals"].add(rpps)  # type: ignore[union-attr]
            if n % 50 == 0:  # a second practice in the territory, and one outside it
                lines.append(row(rpps, profession, skill, f"S{n:06d}", rnd.choice(TERRITORY)))
                lines.append(row(rpps, profession, skill, f"T{n:06d}", OUTSIDE[0]))
                skip("practice outside the territory")
        elif draw < 0.70:
            lines.append(row(rpps, "10", "SM53", f"R{n:06d}", rnd.choice(TERRITORY)))
            skip("specialist physician")
        elif draw < 0.80:
            lines.append(row(rpps, rnd.choice(["31", "80", "91"]), "", f"R{n:06d}", rnd.choice(TERRITORY)))
            skip("profession the service does not orient to")
        elif draw < 0.87:
            lines.append(row(rpps, "60", "", f"R{n:06d}", ""))
            skip("no commune code for the practice")
        elif draw < 0.93:
            lines.append(row(rpps, "60", "", f"R{n:06d}", TERRITORY[0], kind="0"))
            skip("not an RPPS identifier (ADELI or malformed)")
        else:
            lines.append(row(rpps, "10", "SM54", f"R{n:06d}", rnd.choice(OUTSIDE)))
            skip("practice outside the territory")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected["skipped"] = skipped
    expected["rows"] = len(lines) - 1
    return expected


async def test_an_extraction_is_imported_for_the_territory_and_again_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    db = await migrated(database_url, "matcher")

    async def nothing(_: list[str]) -> None:
        return None

    directory = Directory(db, lambda: datetime(2026, 12, 1, 8, tzinfo=UTC), Topics(prefix="rpps."), nothing)
    try:
        await directory.put_territory("cpts-79", "CPTS Sud Deux-Sèvres", TERRITORY, 30.0)
        path = tmp_path / "PS_LibreAcces_Personne_activite_202611250000.txt"
        expected = generate(path)

        with path.open(encoding="utf-8", newline="") as file:
            first = await import_extraction(directory, file, "cpts-79")
        assert first.rows == expected["rows"] and first.rows >= 3000
        assert first.outcomes == {"created": len(expected["professionals"])}  # type: ignore[arg-type]
        assert dict(first.skipped) == expected["skipped"]

        pro, sites = await directory.get_professional("10000000000")  # n = 0: two practices in the territory
        assert pro.name == pro.name.strip() and pro.sas_participation == "none" and pro.cpts_id == "cpts-79"
        assert sorted(s.site_id for s in sites) == ["rpps-R000000", "rpps-S000000"]
        assert sites[0].address == {"line": "12 Rue de la Gare", "postal_code": "79000", "city": "NIORT"}

        # the coordinator's own settings, then the same file again
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE professional SET sas_participation = 'via_cpts', accepts_overflow = true, "
                    "overflow_daily_cap = 3 WHERE rpps = '10000000000'"
                )
            )
        with path.open(encoding="utf-8", newline="") as file:
            again = await import_extraction(directory, file, "cpts-79")
        assert again.outcomes == {"unchanged": len(expected["professionals"])}  # type: ignore[arg-type]
        pro, _ = await directory.get_professional("10000000000")
        assert (pro.sas_participation, pro.accepts_overflow, pro.overflow_daily_cap) == ("via_cpts", True, 3)

        # a practice the directory no longer lists is closed
        kept = [line for line in path.read_text(encoding="utf-8").splitlines() if "|S000000|" not in line]
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        with path.open(encoding="utf-8", newline="") as file:
            third = await import_extraction(directory, file, "cpts-79")
        assert third.outcomes["updated"] == 1
        async with db.engine.connect() as conn:
            active = await conn.execute(
                text("SELECT site_id, active FROM site WHERE rpps = '10000000000' ORDER BY site_id")
            )
            assert [tuple(r) for r in active] == [("rpps-R000000", True), ("rpps-S000000", False)]
    finally:
        await db.dispose()
