"""JSON Schema documents of the wire events, for producers and consumers in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import ClickEvent, DeadLetter, PredictionEvent

SCHEMA_DIR = Path(__file__).parent / "json"
MODELS = {"click_event": ClickEvent, "prediction_event": PredictionEvent, "dead_letter": DeadLetter}


def render() -> dict[str, str]:
    """File name -> document text (stable ordering, so the committed files diff cleanly)."""
    out = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(mode="serialization" if model is not ClickEvent else "validation")
        schema["$id"] = f"https://clickcast.dev/schemas/{name}.v{model.model_fields['schema_version'].default}.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in render().items():
        path = directory / filename
        path.write_text(text)
        written.append(path)
    return written
