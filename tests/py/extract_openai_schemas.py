"""Extracts the response schemas the gateway must conform to from OpenAI's OpenAPI spec.

Writes schemas/openai.json: the named components below plus everything they reference, so the
conformance test runs without the 3 MB spec. Regenerate when the spec is updated:

    python tests/py/extract_openai_schemas.py path/to/openai-openapi.yaml

Source used: openai/openai-openapi, commit f85dbe22 (2026-08-21).
"""

import json
import pathlib
import sys

import yaml

ROOTS = [
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "CreateEmbeddingResponse",
    "ListModelsResponse",
    "Model",
    "ErrorResponse",
]


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/schemas/"):
                yield value.rsplit("/", 1)[1]
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def json_schema_nulls(node):
    """The spec still marks nullable fields OpenAPI-3.0 style (`nullable: true`), which JSON Schema
    validators ignore; rewrite them as JSON Schema 2020-12 null types."""
    if isinstance(node, list):
        return [json_schema_nulls(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: json_schema_nulls(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node and None not in node["enum"]:
                node["enum"] = node["enum"] + [None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def main() -> None:
    spec = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
    components = spec["components"]["schemas"]
    wanted, queue = {}, list(ROOTS)
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted[name] = json_schema_nulls(components[name])
        queue.extend(refs(components[name]))
    out = pathlib.Path(__file__).parent / "schemas" / "openai.json"
    out.write_text(json.dumps({"roots": ROOTS, "components": {"schemas": dict(sorted(wanted.items()))}}, indent=1) + "\n")
    print(f"wrote {out} ({len(wanted)} schemas)")


if __name__ == "__main__":
    main()
