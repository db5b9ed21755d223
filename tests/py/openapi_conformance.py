"""Validates what the gateway returns against OpenAI's own response schemas.

Started by gateway/tests/conformance.rs with a running gateway (built-in mock provider and a mock
OpenAI-compatible upstream behind it). Uses plain HTTP (urllib) so nothing is smoothed over by an
SDK; schemas come from schemas/openai.json (see extract_openai_schemas.py).
"""

import argparse
import base64
import json
import pathlib
import urllib.error
import urllib.request

import jsonschema

DOCUMENT = json.loads((pathlib.Path(__file__).parent / "schemas" / "openai.json").read_text())


def validator(name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(schema)


def check(name, body):
    errors = sorted(validator(name).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]) + f"\n{body}"


def call(base, method, path, key=None, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--limited-key", required=True)
    args = parser.parse_args()
    base, key = args.base_url, args.key
    messages = [{"role": "user", "content": "check my schema"}]
    checked = 0

    for model in ["mock", "upstream"]:
        status, _, body = call(base, "POST", "/chat/completions", key, {"model": model, "messages": messages})
        assert status == 200, body
        check("CreateChatCompletionResponse", json.loads(body))
        for options in [None, {"include_usage": True}]:
            request = {"model": model, "messages": messages, "stream": True}
            if options:
                request["stream_options"] = options
            status, headers, body = call(base, "POST", "/chat/completions", key, request)
            assert status == 200 and headers["content-type"].startswith("text/event-stream"), body
            events = [e[len("data: "):] for e in body.decode().split("\n\n") if e.startswith("data: ")]
            assert events[-1] == "[DONE]", events
            for event in events[:-1]:
                check("CreateChatCompletionStreamResponse", json.loads(event))
                checked += 1
        status, _, body = call(base, "POST", "/embeddings", key,
                               {"model": model, "input": ["a", "b"], "encoding_format": "float"})
        assert status == 200, body
        check("CreateEmbeddingResponse", json.loads(body))
        # The spec types `embedding` as an array only; with base64 it is the little-endian
        # float32 bytes, base64-encoded (what the official SDKs request and decode).
        status, _, body = call(base, "POST", "/embeddings", key,
                               {"model": model, "input": "a", "dimensions": 6, "encoding_format": "base64"})
        embedding = json.loads(body)["data"][0]["embedding"]
        assert len(base64.b64decode(embedding)) == 6 * 4, embedding
        checked += 3

    status, _, body = call(base, "GET", "/models", key)
    check("ListModelsResponse", json.loads(body))
    status, _, body = call(base, "GET", "/models/mock", key)
    check("Model", json.loads(body))

    errors = [
        (400, "POST", "/chat/completions", key, b"{broken"),
        (400, "POST", "/chat/completions", key, {"messages": messages}),
        (401, "POST", "/chat/completions", None, {"model": "mock", "messages": messages}),
        (401, "GET", "/models", "sk-wrong", None),
        (403, "POST", "/chat/completions", args.limited_key, {"model": "upstream", "messages": messages}),
        (404, "POST", "/chat/completions", key, {"model": "nope", "messages": messages}),
        (404, "GET", "/nothing-here", key, None),
        (413, "POST", "/chat/completions", key, {"model": "mock", "messages": [{"role": "user", "content": "x" * 5000}]}),
        (502, "POST", "/chat/completions", key, {"model": "broken", "messages": messages}),
    ]
    for expected, method, path, caller_key, body in errors:
        status, headers, response = call(base, method, path, caller_key, body)
        assert status == expected, (expected, status, response)
        assert headers["content-type"] == "application/json" and headers["x-request-id"], headers
        check("ErrorResponse", json.loads(response))
        checked += 1
    print(f"openapi conformance: {checked + 2} responses valid")


if __name__ == "__main__":
    main()
