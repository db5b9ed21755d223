"""Drives a running gateway with the official OpenAI Python SDK.

Started by gateway/tests/sdk.rs, which runs the gateway and a mock OpenAI-compatible upstream on
loopback ports and passes their addresses. Every check is an assert; the first failure exits
non-zero with a traceback.
"""

import argparse

import openai
from openai import OpenAI


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--limited-key", required=True)
    args = parser.parse_args()

    client = OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=10)
    prompt = [{"role": "user", "content": "hello from the sdk"}]

    # Built-in mock provider and the OpenAI-compatible passthrough provider.
    for model, expected in [
        ("mock", "Mock response to: hello from the sdk"),
        ("upstream", "mock reply to: hello from the sdk"),
    ]:
        reply = client.chat.completions.create(model=model, messages=prompt)
        assert reply.object == "chat.completion"
        assert reply.choices[0].message.content == expected, reply
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage is not None and reply.usage.prompt_tokens == 4, reply.usage

        chunks = list(client.chat.completions.create(model=model, messages=prompt, stream=True))
        assert all(c.object == "chat.completion.chunk" for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected, text
        assert all(c.usage is None for c in chunks), "usage was not asked for"
        assert chunks[-1].choices[0].finish_reason == "stop"

        chunks = list(
            client.chat.completions.create(
                model=model, messages=prompt, stream=True, stream_options={"include_usage": True}
            )
        )
        assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(expected.split())

    # Embeddings: the SDK asks for base64 and decodes it.
    embeddings = client.embeddings.create(model="mock", input=["one", "two"])
    assert len(embeddings.data) == 2
    assert len(embeddings.data[0].embedding) == 16
    assert embeddings.data[0].embedding != embeddings.data[1].embedding
    embeddings = client.embeddings.create(model="upstream", input="one", dimensions=4)
    assert len(embeddings.data[0].embedding) == 4

    models = sorted(m.id for m in client.models.list())
    assert models == ["broken", "mock", "org/other", "other", "upstream"], models
    limited = OpenAI(base_url=args.base_url, api_key=args.limited_key, max_retries=0)
    assert [m.id for m in limited.models.list()] == ["mock"]
    assert client.models.retrieve("mock").id == "mock"
    # The SDK percent-encodes ids with a slash (Hugging Face style names).
    assert client.models.retrieve("org/other").id == "org/other"
    reply = client.chat.completions.create(model="org/other", messages=prompt)
    assert reply.choices[0].message.content.startswith("Mock response")

    # The right exception classes.
    expect(openai.AuthenticationError, lambda: OpenAI(base_url=args.base_url, api_key="sk-wrong", max_retries=0)
           .chat.completions.create(model="mock", messages=prompt))
    expect(openai.NotFoundError, lambda: client.chat.completions.create(model="no-such-model", messages=prompt))
    expect(openai.PermissionDeniedError, lambda: limited.chat.completions.create(model="other", messages=prompt))
    expect(openai.BadRequestError, lambda: client.chat.completions.create(model="mock", messages="not a list"))
    err = expect(openai.InternalServerError, lambda: client.chat.completions.create(model="broken", messages=prompt))
    assert err.status_code == 502, err
    print("openai sdk: all checks passed")


def expect(error_class, call):
    try:
        call()
    except error_class as err:
        assert isinstance(err.body, dict) and err.body.get("message"), err.body
        return err
    raise AssertionError(f"expected {error_class.__name__}")


if __name__ == "__main__":
    main()
