"""Write the published contracts: JSON Schema per event type, and the AsyncAPI document.

python -m schemas.generate          # rewrite the files
python -m schemas.generate --check  # exit 1 if they are not current
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.asyncapi import specification
from schemas.events import EVENT_MODELS, CloudEvent, DeadLetter

HERE = Path(__file__).parent


def documents() -> dict[Path, dict[str, Any]]:
    out: dict[Path, dict[str, Any]] = {}
    for model in EVENT_MODELS:
        schema = model.model_json_schema()
        schema["$id"] = f"urn:{model.type_name()}"
        schema["description"] = (model.__doc__ or "").strip()
        out[HERE / "jsonschema" / f"{model.type_name()}.json"] = schema
    out[HERE / "jsonschema" / "cloudevent.json"] = CloudEvent.model_json_schema()
    out[HERE / "jsonschema" / "deadletter.json"] = DeadLetter.model_json_schema()
    from services.consumers import readers, subscriptions  # who reads what: the services' own wiring

    out[HERE / "asyncapi.json"] = specification(readers(subscriptions()))
    return out


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    check = "--check" in sys.argv
    stale = []
    for path, document in documents().items():
        text = render(document)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.exit("not current (run `python -m schemas.generate`): " + ", ".join(str(p) for p in stale))


if __name__ == "__main__":
    main()
