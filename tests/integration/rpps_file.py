"""A generated RPPS public extraction with the real header, and what an import of it must find."""

from __future__ import annotations

import random
from pathlib import Path

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
