"""Checks Responses API output (POST /v1/responses) with the official OpenAI SDK's own models.

Reads files named on the command line (or stdin when none, or "-"): an SSE stream of Responses
events (`event: <type>` / `data: <json>` blocks), or a JSON response object. Exits non-zero,
naming the file and the event, on the first mismatch; prints "responses valid" when all pass.

    python tests/py/responses_events.py gateway/llm/tests/golden/responses/*/*.out.*
    curl -N .../v1/responses -d '{..., "stream": true}' | python tests/py/responses_events.py

A stream is checked for:
- every event validating as `openai.types.responses.ResponseStreamEvent` (required properties,
  literal types and enums), and every embedded response as `Response`;
- the SSE event name equal to the payload's `type`; sequence numbers 0, 1, 2, ...;
- `response.created` first, one terminal event (`response.completed`, `response.incomplete` or
  `response.failed`) last, an `error` only right before `response.failed`;
- the SDK's own stream accumulator (`ResponseStreamState`, what `client.responses.stream()`
  runs) accepting the sequence, and the text and arguments it accumulated from the deltas equal
  to the final response's output.
"""

import json
import sys

from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter, ValidationError

EVENT = TypeAdapter(ResponseStreamEvent)
RESPONSE = TypeAdapter(Response)
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


class Mismatch(Exception):
    pass


def sse_events(text):
    """(event name, data) per SSE block."""
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
        yield name, "\n".join(data)


def validate(adapter, value, what):
    try:
        return adapter.validate_python(value)
    except ValidationError as err:
        raise Mismatch(f"{what}: {err}\n{json.dumps(value)[:2000]}") from None


def check_response(body, what):
    response = validate(RESPONSE, body, what)
    if response.object != "response":
        raise Mismatch(f"{what}: object is {response.object!r}")
    return response


def check_stream(text):
    events = list(sse_events(text))
    if not events:
        raise Mismatch("no events")
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    final = None
    for number, (name, data) in enumerate(events):
        raw = json.loads(data)
        what = f"event {number} ({raw.get('type')})"
        event = validate(EVENT, raw, what)
        if name != event.type:
            raise Mismatch(f"{what}: SSE event name {name!r} is not the type")
        if event.sequence_number != number:
            raise Mismatch(f"{what}: sequence_number {event.sequence_number}, expected {number}")
        if number == 0 and event.type != "response.created":
            raise Mismatch(f"{what}: the first event must be response.created")
        if event.type == "error" and (number + 2 != len(events) or events[-1][0] != "response.failed"):
            raise Mismatch(f"{what}: an error event must come right before the closing response.failed")
        if event.type in TERMINAL:
            if number + 1 != len(events):
                raise Mismatch(f"{what}: events after the terminal {event.type}")
            final = event.response
        if hasattr(event, "response"):
            check_response(raw["response"], f"{what}.response")
        try:
            state.handle_event(event)
        except (RuntimeError, AssertionError) as err:
            raise Mismatch(f"{what}: the SDK's accumulator refused it: {err!r}") from None
    if final is None:
        raise Mismatch("no terminal event (response.completed, response.incomplete or response.failed)")
    if final.status == "failed" and final.error is None:
        raise Mismatch("a failed response without its error")
    if final.status != "failed":
        accumulated = [item for item in state._ResponseStreamState__current_snapshot.output]
        if len(accumulated) != len(final.output):
            raise Mismatch(f"{len(accumulated)} items streamed, {len(final.output)} in the final response")
        for streamed, item in zip(accumulated, final.output):
            if streamed.type != item.type or streamed.id != item.id:
                raise Mismatch(f"streamed item {streamed.id} is {item.id} in the final response")
            if item.type == "message" and streamed.content[0].text != item.content[0].text:
                raise Mismatch(f"{item.id}: the deltas make {streamed.content[0].text!r}, the response has {item.content[0].text!r}")
            if item.type == "function_call" and streamed.arguments != item.arguments:
                raise Mismatch(f"{item.id}: the deltas make {streamed.arguments!r}, the response has {item.arguments!r}")
    return len(events)


def check(name, text):
    if text.lstrip().startswith("{"):
        check_response(json.loads(text), "response")
        return "1 response object"
    return f"{check_stream(text)} events"


def main():
    paths = sys.argv[1:] or ["-"]
    for path in paths:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        try:
            print(f"{path}: {check(path, text)}")
        except Mismatch as err:
            print(f"{path}: {err}", file=sys.stderr)
            sys.exit(1)
    print("responses valid")


if __name__ == "__main__":
    main()
