"""The official OpenAI Python SDK's Responses API (`responses.create`, `responses.stream`,
`retrieve`, `delete`) against the gateway, on several backends, across two gateway replicas.

Started by gateway/tests/responses_clients.rs, which runs two gateway replicas sharing one real
Redis (the conversation store) in front of the built-in mock and strict provider mocks, and passes
one `--backend` per backend: `name=plain[,tool[,json]]`, the public models of a plain route, of a
route whose backend answers with a function call, and of one that can answer in a JSON schema.
For each backend:

- text (`responses.create`) on replica A, and the same request streamed on replica B: the SDK's
  accumulator gives the same text and usage; the raw stream passes tests/py/responses_events.py
  (every event validated by the SDK's own models, in the documented order, sequence numbers
  counting up);
- with a tool route: a function call on replica A, then its output sent to replica B with only
  `previous_response_id` (the backend refuses a tool result without the call before it, so an
  answer proves B loaded A's conversation), whose answer shows the output arrived;
- with a JSON route: `text.format` json_schema, answered with JSON of the schema's shape;
- retrieve on the other replica, a different key told 404, delete, then 404.

Every check is an assert; the first failure exits non-zero.
"""

import argparse
import json
import pathlib
import sys

import urllib.request

import openai

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import responses_events  # noqa: E402  (the stream checker next to this script)

TOOLS = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
WEATHER_SCHEMA = {
    "type": "json_schema",
    "name": "weather",
    "schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "degrees": {"type": "number"}},
        "required": ["city", "degrees"],
        "additionalProperties": False,
    },
    "strict": True,
}


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=10)


def text_and_stream(a: openai.OpenAI, b: openai.OpenAI, b_url: str, key: str, model: str) -> None:
    whole = a.responses.create(model=model, input="Hello there", instructions="Answer briefly.")
    assert whole.status == "completed" and whole.output_text, (model, whole)
    assert whole.id.startswith("resp_"), whole
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0, whole.usage

    with b.responses.stream(model=model, input="Hello there", instructions="Answer briefly.") as stream:
        deltas = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == final.output_text == whole.output_text, (model, deltas, final.output_text)
    assert final.usage.input_tokens == whole.usage.input_tokens, (final.usage, whole.usage)
    assert final.usage.output_tokens == whole.usage.output_tokens, (final.usage, whole.usage)

    body = json.dumps({"model": model, "input": "Hello there", "stream": True}).encode()
    request = urllib.request.Request(
        f"{b_url}/responses",
        data=body,
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream"), raw.headers
        responses_events.check(f"{model} stream", raw.read().decode())


def function_call_round_trip(a: openai.OpenAI, b: openai.OpenAI, plain: str, tool: str) -> None:
    call = a.responses.create(model=tool, input="What is the weather in Paris?", tools=TOOLS)
    calls = [item for item in call.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather", (tool, call.output)
    json.loads(calls[0].arguments)

    with a.responses.stream(model=tool, input="What is the weather in Paris?", tools=TOOLS) as stream:
        streamed = stream.get_final_response()
    streamed_calls = [item for item in streamed.output if item.type == "function_call"]
    assert [c.arguments for c in streamed_calls] == [calls[0].arguments], (streamed_calls, calls)

    answer = b.responses.create(
        model=plain,
        previous_response_id=call.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "22 degrees and sunny"}],
        tools=TOOLS,
    )
    assert answer.status == "completed", answer
    assert "22 degrees and sunny" in answer.output_text, (plain, answer.output_text)


def json_schema(a: openai.OpenAI, model: str) -> None:
    answer = a.responses.create(
        model=model, input="Weather in Paris as JSON, please.", text={"format": WEATHER_SCHEMA}
    )
    value = json.loads(answer.output_text)
    assert set(value) == {"city", "degrees"}, (model, value)


def stored_responses(a: openai.OpenAI, b: openai.OpenAI, other: openai.OpenAI, model: str) -> None:
    created = a.responses.create(model=model, input="Remember this.")
    again = b.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == created.output_text, (again, created)
    try:
        other.responses.retrieve(created.id)
        raise AssertionError("another key retrieved a stored response")
    except openai.NotFoundError:
        pass
    try:
        other.responses.create(model=model, input="Go on.", previous_response_id=created.id)
        raise AssertionError("another key continued a stored conversation")
    except openai.BadRequestError as err:
        assert err.body["param"] == "previous_response_id", err.body
    deleted = b.responses.delete(created.id)
    assert deleted is None or getattr(deleted, "deleted", True), deleted
    try:
        a.responses.retrieve(created.id)
        raise AssertionError("a deleted response was retrieved")
    except openai.NotFoundError:
        pass
    unstored = a.responses.create(model=model, input="Forget this.", store=False)
    try:
        b.responses.retrieve(unstored.id)
        raise AssertionError("store: false was stored")
    except openai.NotFoundError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url-a", required=True, help="replica A's /v1")
    parser.add_argument("--url-b", required=True, help="replica B's /v1")
    parser.add_argument("--key", required=True)
    parser.add_argument("--other-key", required=True, help="a second valid key")
    parser.add_argument("--backend", action="append", required=True, help="name=plain[,tool[,json]]")
    args = parser.parse_args()

    a, b = client(args.url_a, args.key), client(args.url_b, args.key)
    other = client(args.url_b, args.other_key)
    for spec in args.backend:
        name, _, models = spec.partition("=")
        plain, tool, json_model = (models.split(",") + ["", ""])[:3]
        try:
            text_and_stream(a, b, args.url_b, args.key, plain)
            if tool:
                function_call_round_trip(a, b, plain, tool)
            if json_model:
                json_schema(a, json_model)
        except (AssertionError, openai.OpenAIError, responses_events.Mismatch) as err:
            raise SystemExit(f"backend {name}: {err!r}") from err
    stored_responses(a, b, other, args.backend[0].partition("=")[2].split(",")[0])
    print("responses sdk ok")


if __name__ == "__main__":
    main()
