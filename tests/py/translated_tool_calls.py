"""Streams a tool call with the official OpenAI Python SDK through each translated provider.

Started by gateway/tests/python_clients.rs, which runs the gateway in front of strict provider
mocks (tests/mock-providers) and passes the public model names to try. For each: the SDK's own
stream helper assembles the tool call, whose arguments must parse as JSON; the finish reason is
`tool_calls`; and the usage of the stream (asked with `include_usage`) equals the usage of the
same request answered whole. Every check is an assert; the first failure exits non-zero.
"""

import argparse
import json

from openai import OpenAI

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
                "required": ["city", "unit"],
            },
        },
    }
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument(
        "--models",
        required=True,
        help="comma-separated public model names, each with the fewest argument pieces its provider "
        "streams (claude:3: Anthropic streams arguments as input_json_delta fragments; gemini:1: "
        "Gemini sends each function call whole)",
    )
    args = parser.parse_args()

    client = OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=10)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    for spec in args.models.split(","):
        model, _, fewest = spec.partition(":")
        fewest = int(fewest or 1)
        whole = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
        assert whole.choices[0].finish_reason == "tool_calls", (model, whole)

        with client.chat.completions.stream(
            model=model, messages=messages, tools=TOOLS, stream_options={"include_usage": True}
        ) as stream:
            pieces = sum(1 for event in stream if event.type == "tool_calls.function.arguments.delta")
            final = stream.get_final_completion()
        choice = final.choices[0]
        assert choice.finish_reason == "tool_calls", (model, choice)
        calls = choice.message.tool_calls
        assert calls and len(calls) == 1, (model, calls)
        assert calls[0].function.name == "get_weather", calls[0]
        arguments = json.loads(calls[0].function.arguments)
        assert isinstance(arguments, dict) and "city" in arguments, arguments
        assert arguments == json.loads(whole.choices[0].message.tool_calls[0].function.arguments)
        assert pieces >= fewest, f"{model}: the arguments came in {pieces} pieces, expected {fewest} or more"
        usage = final.usage
        assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
        assert (usage.prompt_tokens, usage.completion_tokens) == (
            whole.usage.prompt_tokens,
            whole.usage.completion_tokens,
        ), (model, usage, whole.usage)
        print(f"{model}: tool call in {pieces} pieces, usage {usage.prompt_tokens}/{usage.completion_tokens}")
    print("translated tool calls ok")


if __name__ == "__main__":
    main()
