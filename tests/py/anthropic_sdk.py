"""The official Anthropic Python SDK against the gateway's `/v1/messages`, on every kind of backend.

Started by gateway/tests/anthropic_clients.rs, which runs the gateway in front of the built-in mock
and strict provider mocks, and passes one `--backend` per backend to try: `name=plain[,tool]`, the
public model of a plain route and (optional) of a route whose backend answers with a tool call.
For each backend:

- a plain answer (`messages.create`): text, `end_turn`, non-zero usage;
- the same request streamed (`messages.stream`): the SDK's own accumulator gives the same text and
  the same usage, so `message_start` and the cumulative `message_delta` carry it right;
- with a tool route: the tool call, plain and streamed (the SDK assembles `input_json_delta`
  pieces into the same input), then the tool result sent back on the plain route, whose answer
  must show the result reached the provider (every mock echoes tool results into its reply).

Then the SDK's error classes: a bad key, an unknown model, a missing `max_tokens`; and Claude
Code's request shape (tests/fixtures/claude-code-request.json) streamed through `--claude-code`.
Every check is an assert; the first failure exits non-zero.
"""

import argparse
import json
import pathlib

import anthropic

TOOLS = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city", "unit"],
        },
    }
]
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


def plain_and_streamed(client: anthropic.Anthropic, model: str) -> None:
    whole = client.messages.create(model=model, max_tokens=200, messages=QUESTION)
    assert whole.type == "message" and whole.role == "assistant", whole
    assert whole.stop_reason == "end_turn", (model, whole.stop_reason)
    text = "".join(block.text for block in whole.content if block.type == "text")
    assert text, (model, whole)
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0, (model, whole.usage)

    with client.messages.stream(model=model, max_tokens=200, messages=QUESTION) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text, (model, streamed, text)
    assert final.stop_reason == "end_turn", (model, final.stop_reason)
    assert final.usage.input_tokens == whole.usage.input_tokens, (model, final.usage, whole.usage)
    assert final.usage.output_tokens == whole.usage.output_tokens, (model, final.usage, whole.usage)


def tool_round_trip(client: anthropic.Anthropic, plain: str, tool: str) -> None:
    call = client.messages.create(model=tool, max_tokens=200, messages=QUESTION, tools=TOOLS)
    assert call.stop_reason == "tool_use", (tool, call)
    uses = [block for block in call.content if block.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather", (tool, call.content)
    assert isinstance(uses[0].input, dict), (tool, uses[0])

    with client.messages.stream(model=tool, max_tokens=200, messages=QUESTION, tools=TOOLS) as stream:
        final = stream.get_final_message()
    streamed = [block for block in final.content if block.type == "tool_use"]
    assert final.stop_reason == "tool_use", (tool, final)
    assert len(streamed) == 1 and streamed[0].input == uses[0].input, (tool, streamed, uses)

    history = QUESTION + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in call.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": uses[0].id, "content": "22 degrees and sunny"}],
        },
    ]
    answer = client.messages.create(model=plain, max_tokens=200, messages=history, tools=TOOLS)
    text = "".join(block.text for block in answer.content if block.type == "text")
    assert answer.stop_reason == "end_turn", (plain, answer)
    assert "22 degrees and sunny" in text, (plain, text)


def errors(base_url: str, key: str, model: str) -> None:
    wrong = anthropic.Anthropic(base_url=base_url, api_key="sk-wrong", max_retries=0, timeout=10)
    try:
        wrong.messages.create(model=model, max_tokens=10, messages=QUESTION)
        raise AssertionError("a wrong key was accepted")
    except anthropic.AuthenticationError as err:
        assert err.status_code == 401 and err.body["error"]["type"] == "authentication_error", err.body

    client = anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0, timeout=10)
    try:
        client.messages.create(model="no-such-model", max_tokens=10, messages=QUESTION)
        raise AssertionError("an unknown model was served")
    except anthropic.NotFoundError as err:
        assert err.body["error"]["type"] == "not_found_error" and "no-such-model" in err.message, err.body

    # The SDK requires max_tokens; its raw request method sends the body without it.
    try:
        client.post("/v1/messages", cast_to=anthropic.types.Message, body={"model": model, "messages": QUESTION})
        raise AssertionError("a request without max_tokens was served")
    except anthropic.BadRequestError as err:
        assert err.body["error"]["type"] == "invalid_request_error", err.body
        assert "max_tokens" in err.message, err.message


def count_tokens(client: anthropic.Anthropic, counts: str, cannot: str) -> None:
    counted = client.messages.count_tokens(model=counts, messages=QUESTION, tools=TOOLS)
    # The Anthropic mock counts words of text and one per tool definition.
    assert counted.input_tokens == 7, counted
    try:
        client.messages.count_tokens(model=cannot, messages=QUESTION)
        raise AssertionError("a backend without token counting answered count_tokens")
    except anthropic.BadRequestError as err:
        assert "count tokens" in err.message, err.message


def claude_code(client: anthropic.Anthropic, fixture: pathlib.Path, model: str) -> None:
    request = json.loads(fixture.read_text())
    del request["stream"], request["model"]
    max_tokens, messages = request.pop("max_tokens"), request.pop("messages")
    # The rest (system blocks, tools, metadata, thinking, temperature) as recorded, byte for byte.
    with client.messages.stream(model=model, max_tokens=max_tokens, messages=messages, extra_body=request) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop", events
    assert final.stop_reason in ("end_turn", "tool_use"), final
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0, final.usage


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True, help="the gateway's root (the SDK adds /v1/messages)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--backend", action="append", required=True, help="name=plain[,tool]")
    parser.add_argument("--claude-code", required=True, help="model=fixture: Claude Code's request shape")
    parser.add_argument("--count-tokens", required=True, help="counts,cannot: a model whose backend counts tokens, one whose cannot")
    args = parser.parse_args()

    client = anthropic.Anthropic(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=10)
    for spec in args.backend:
        name, _, models = spec.partition("=")
        plain, _, tool = models.partition(",")
        try:
            plain_and_streamed(client, plain)
            if tool:
                tool_round_trip(client, plain, tool)
        except Exception as err:
            raise SystemExit(f"backend {name}: {err!r}") from err
    first_plain = args.backend[0].partition("=")[2].partition(",")[0]
    errors(args.base_url, args.key, first_plain)
    counts, _, cannot = args.count_tokens.partition(",")
    count_tokens(client, counts, cannot)
    model, _, fixture = args.claude_code.partition("=")
    claude_code(client, pathlib.Path(fixture), model)
    print("anthropic sdk ok")


if __name__ == "__main__":
    main()
