#!/usr/bin/env python3
"""A strict, deterministic mock of AWS Bedrock Runtime (Converse, ConverseStream) and of STS
AssumeRoleWithWebIdentity, for Switchboard's conformance tests.

SigV4 signatures are checked with botocore's own implementation (``botocore.auth.SigV4Auth``),
independent of the Rust ``aws-sigv4`` crate the gateway uses. The request shapes are checked
against botocore's copy of the Bedrock Runtime service model
(``botocore/data/bedrock-runtime/2023-09-30/service-2.json``), the Smithy model the API
reference is generated from.

Documents followed (cited as [name § section] next to each rule):

- [Converse]   Amazon Bedrock API Reference, "Converse" (API_runtime_Converse): request syntax,
               response syntax, errors.
- [Stream]     Amazon Bedrock API Reference, "ConverseStream" (API_runtime_ConverseStream) and
               the event types it names (MessageStartEvent, ContentBlockStartEvent,
               ContentBlockDeltaEvent, ContentBlockStopEvent, MessageStopEvent,
               ConverseStreamMetadataEvent, ModelStreamErrorException).
- [Message]    API Reference data types "Message", "ContentBlock", "ToolUseBlock",
               "ToolResultBlock", "ImageBlock", "ToolConfiguration", "ToolChoice",
               "InferenceConfiguration", "TokenUsage".
- [ToolUse]    Amazon Bedrock User Guide, "Call a tool with the Converse API" (tool-use.html).
- [Errors]     Amazon Bedrock API Reference, "Common Errors" (CommonErrors): 403
               UnrecognizedClientException / InvalidSignatureException / IncompleteSignature /
               MissingAuthenticationToken / ExpiredTokenException, 400 ValidationException,
               429 ThrottlingException, 500 InternalServerException, 503
               ServiceUnavailableException.
- [SigV4]      AWS General Reference / IAM User Guide, "Signature Version 4 signing process"
               ("Create a canonical request", "Elements of an AWS API request signature",
               X-Amz-Date within 5 minutes, credential scope date/region/service).
- [EventStream] AWS "Event stream encoding" (the ``application/vnd.amazon.eventstream`` framing:
               prelude total/headers length, prelude CRC32, typed headers, payload, message CRC32;
               headers ``:event-type``, ``:content-type``, ``:message-type`` = event | exception,
               ``:exception-type``).
- [STS]        AWS STS API Reference, "AssumeRoleWithWebIdentity" (query API, request
               parameters, XML response, errors InvalidIdentityToken / ValidationError).
- [Model]      botocore's bedrock-runtime service-2.json (shapes, required members,
               constraints), used for structural validation with Coral-style messages
               ("1 validation error detected: Value '…' at 'a.b' failed to satisfy constraint:
               Member must …").

Behaviours by model id mirror tests/mock-providers/src/behavior.rs; see README.md.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

SIGV4_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = dt.timedelta(minutes=5)  # [SigV4 § "Elements of a signature": X-Amz-Date within 5 min]
ERROR_NS_BEDROCK = "http://internal.amazon.com/coral/com.amazon.bedrock/"
ERROR_NS_CORAL = "http://internal.amazon.com/coral/com.amazon.coral.service/"
CACHE_WRITE_TOKENS = 128  # same numbers as the Anthropic mock
CACHE_READ_TOKENS = 2048
LATENCY_MS = 42


# ---------------------------------------------------------------------------------------------
# The service model (botocore's copy of the Smithy model the API reference is generated from).


def _load_model() -> dict:
    base = os.path.join(os.path.dirname(botocore.__file__), "data", "bedrock-runtime")
    version = sorted(os.listdir(base))[-1]
    path = os.path.join(base, version, "service-2.json")
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            return json.load(f)
    with open(path) as f:
        return json.load(f)


MODEL = _load_model()
SHAPES = MODEL["shapes"]


# ---------------------------------------------------------------------------------------------
# Behaviours by model id: the vocabulary of tests/mock-providers/src/behavior.rs.

SUFFIXES = [  # longest first, so -parallel-tools and -text-tool win over -tool
    "-parallel-tools", "-text-tool", "-tool", "-max-tokens", "-stop-sequence", "-cache",
    "-thinking", "-safety", "-prompt-blocked", "-malformed", "-midstream-error", "-disconnect",
]


def behaviour(model: str) -> dict:
    """Decodes a model id: {'error': status} or the keywords read from its end."""
    m = re.match(r"^error-(\d{3})", model)
    if m and 400 <= int(m.group(1)) <= 599:
        return {"error": int(m.group(1))}
    b = {"content": "text", "stop": "natural", "cache": False, "failure": None}
    rest = model
    while True:
        hit = next((s for s in SUFFIXES if rest.endswith(s)), None)
        if hit is None:
            return b
        rest = rest[: -len(hit)]
        if hit in ("-parallel-tools", "-text-tool", "-tool"):
            b["content"] = hit[1:]
        elif hit in ("-max-tokens", "-stop-sequence"):
            b["stop"] = hit[1:]
        elif hit == "-cache":
            b["cache"] = True
        elif hit in ("-malformed", "-midstream-error", "-disconnect"):
            b["failure"] = hit[1:]
        # -thinking, -safety, -prompt-blocked: no Bedrock equivalent here (ignored, as documented)


# [Errors], and each operation's "Errors" section [Converse § Errors]: status and type per code.
ERRORS = {
    400: ("ValidationException", "The provided request is not valid. (mock error-400)"),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The specified resource ARN was not found. Check the ARN and try your request again."),
    408: ("ModelTimeoutException", "The request took too long to process. Processing time exceeded the model timeout length."),
    424: ("ModelErrorException", "The request failed due to an error while processing the model."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The system encountered an unexpected error during processing. Try your request again."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}


# ---------------------------------------------------------------------------------------------
# AWS event stream encoding [EventStream].


def _header(name: str, value: str) -> bytes:
    n = name.encode()
    v = value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v  # 7 = string


def encode_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length), prelude CRC32,
    headers, payload, message CRC32 — all big-endian [EventStream]."""
    hbytes = b"".join(_header(k, v) for k, v in headers)
    total = 4 + 4 + 4 + len(hbytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hbytes))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    msg = prelude + hbytes + payload
    return msg + struct.pack("!I", binascii.crc32(msg) & 0xFFFFFFFF)


PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def event_frame(event_type: str, body: dict, n: int) -> bytes:
    # Bedrock pads event payloads with a "p" field of varying length (real traffic carries it;
    # clients must ignore unknown members). Deterministic here: its length follows the index.
    payload = dict(body)
    payload["p"] = PAD[: 1 + (n * 7) % len(PAD)]
    return encode_frame(
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def exception_frame(exception_type: str, body: dict) -> bytes:
    # [EventStream]: errors inside a stream are messages with :message-type exception and
    # :exception-type naming the member of ConverseStreamOutput [Stream § Response elements].
    return encode_frame(
        [(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")],
        json.dumps(body, separators=(",", ":")).encode(),
    )


# ---------------------------------------------------------------------------------------------
# Validation.


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, ns: str = ERROR_NS_BEDROCK):
        super().__init__(message)
        self.status, self.code, self.message, self.ns = status, code, message, ns


def validation(message: str) -> ApiError:
    return ApiError(400, "ValidationException", message)


def _render(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def check_shape(value, shape_name: str, path: str, problems: list[str], top: bool = False) -> None:
    """Structural rules of the service model [Model]: types, unknown members, required members,
    unions with exactly one member, list/string lengths, numeric ranges, enums, patterns.
    Messages follow the Coral form the service uses."""
    shape = SHAPES[shape_name]
    if shape.get("document"):
        return  # a Document is any JSON value [Model]
    t = shape["type"]
    at = f" at '{path}'" if path else ""
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a structure")
            return
        members = {k: m for k, m in shape["members"].items() if not (top and m.get("location"))}
        for key in value:
            if key not in members:
                # Bedrock refuses extraneous keys rather than ignoring them.
                raise validation(
                    f"Malformed input request: extraneous key [{key}] is not permitted"
                    + (f" at '{path}'" if path else "") + ", please reformat your input and try again."
                )
        for req in shape.get("required", []):
            if req in members and value.get(req) is None:
                problems.append(f"Value null at '{_join(path, req)}' failed to satisfy constraint: Member must not be null")
        if shape.get("union"):
            set_members = [k for k, v in value.items() if v is not None]
            if len(set_members) != 1:
                problems.append(
                    f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must have exactly one member set "
                    f"(one of: {', '.join(members)})"
                )
        for key, v in value.items():
            if v is not None:
                check_shape(v, members[key]["shape"], _join(path, key), problems)
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a list")
            return
        _length(len(value), shape, path, value, problems)
        for i, item in enumerate(value, 1):
            check_shape(item, shape["member"]["shape"], f"{path}.{i}.member", problems)
    elif t == "map":
        if not isinstance(value, dict):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a map")
            return
        for k, v in value.items():
            check_shape(k, shape["key"]["shape"], f"{path}.key", problems)
            check_shape(v, shape["value"]["shape"], f"{path}.{k}.value", problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a string")
            return
        if "enum" in shape and value not in shape["enum"]:
            problems.append(
                f"Value '{value}'{at} failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape['enum'])}]"
            )
        _length(len(value), shape, path, value, problems)
        if "pattern" in shape and value and not re.fullmatch(shape["pattern"], value):
            problems.append(
                f"Value '{value}'{at} failed to satisfy constraint: Member must satisfy regular expression pattern: {shape['pattern']}"
            )
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be an integer")
            return
        _range(value, shape, path, problems)
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a number")
            return
        _range(value, shape, path, problems)
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"Value '{_render(value)}'{at} failed to satisfy constraint: Member must be a boolean")
    elif t == "blob":
        # JSON carries blobs as base64 [Message § ImageSource: "bytes … base64-encoded"].
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except (binascii.Error, ValueError):
            raw = None
        if raw is None:
            problems.append(f"Value{at} failed to satisfy constraint: Member must be base64-encoded bytes")
            return
        _length(len(raw), shape, path, None, problems)
    # timestamp, document: any JSON


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _length(n: int, shape: dict, path: str, value, problems: list[str]) -> None:
    shown = f"Value '{_render(value)}'" if value is not None else "Value"
    if "min" in shape and n < shape["min"]:
        problems.append(f"{shown} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {_num(shape['min'])}")
    if "max" in shape and n > shape["max"]:
        problems.append(f"{shown} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {_num(shape['max'])}")


def _range(v, shape: dict, path: str, problems: list[str]) -> None:
    if "min" in shape and v < shape["min"]:
        problems.append(f"Value '{_render(v)}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {_num(shape['min'])}")
    if "max" in shape and v > shape["max"]:
        problems.append(f"Value '{_render(v)}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {_num(shape['max'])}")


def validate_converse(body, stream: bool) -> None:
    shape = "ConverseStreamRequest" if stream else "ConverseRequest"
    problems: list[str] = []
    check_shape(body, shape, "", problems, top=True)
    if problems:
        n = len(problems)
        raise validation(f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems))
    semantic_rules(body)


def semantic_rules(body: dict) -> None:
    """What the model cannot express, as the service enforces it [Message], [ToolUse]."""
    messages = body.get("messages") or []
    for i, m in enumerate(messages):
        # The model's enum has "system" too; messages take only user and assistant [Message].
        if m["role"] not in ("user", "assistant"):
            raise validation(
                f"1 validation error detected: Value '{m['role']}' at 'messages.{i + 1}.member.role' failed to satisfy "
                "constraint: Member must satisfy enum value set: [user, assistant]"
            )
    # [Message § Message]: the conversation starts with a user message and alternates.
    if not messages or messages[0]["role"] != "user":
        raise validation("A conversation must start with a user message. Try again with a conversation that starts with a user message.")
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            raise validation(
                "A conversation must alternate between user and assistant roles. Make sure the conversation "
                "alternates between user and assistant roles and try again."
            )
    tool_config = body.get("toolConfig")
    images = sum(1 for m in messages for b in m["content"] if "image" in b)
    documents = sum(1 for m in messages for b in m["content"] if "document" in b)
    # [Message § Message.content]: up to 20 images and five documents.
    if images > 20:
        raise validation(f"Too many images: {images}. A request can include up to 20 images.")
    if documents > 5:
        raise validation(f"Too many documents: {documents}. A request can include up to 5 documents.")
    for i, m in enumerate(messages):
        # [Message § Message.content]: a document needs a text block in the same message.
        if any("document" in b for b in m["content"]) and not any("text" in b for b in m["content"]):
            raise validation(
                f"messages.{i}.content: If you include a document block, you must also include a text block in the same message."
            )
        if not m["content"]:
            raise validation(
                f"The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the "
                "content field and try again."
            )
        for j, block in enumerate(m["content"]):
            if "text" in block and not block["text"].strip():
                raise validation(
                    f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank. Add text to the "
                    "text field, and try again."
                )
            # [Message § Message.content]: images and documents only in user messages.
            if m["role"] != "user" and ("image" in block or "document" in block):
                raise validation(
                    f"messages.{i}.content.{j}: You can only include images and documents if the role is user."
                )
            if "image" in block and "bytes" not in block["image"]["source"]:
                raise validation(f"messages.{i}.content.{j}.image.source: only bytes are supported by this model.")
            # [ToolUse]: toolUse comes from the assistant, toolResult from the user, and both need
            # toolConfig.
            if ("toolUse" in block or "toolResult" in block) and tool_config is None:
                raise validation("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
            if "toolUse" in block and m["role"] != "assistant":
                raise validation(f"messages.{i}.content.{j}: toolUse blocks are only allowed in assistant messages.")
            if "toolResult" in block and m["role"] != "user":
                raise validation(f"messages.{i}.content.{j}: toolResult blocks are only allowed in user messages.")
        # [ToolUse]: the user turn after toolUse blocks answers every one of them, and no more.
        if m["role"] == "user":
            results = [b["toolResult"]["toolUseId"] for b in m["content"] if "toolResult" in b]
            prev = messages[i - 1]["content"] if i else []
            uses = [b["toolUse"]["toolUseId"] for b in prev if "toolUse" in b]
            if len(results) > len(uses):
                raise validation(
                    f"The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse blocks of previous turn."
                )
            missing = [u for u in uses if u not in results]
            if missing:
                raise validation(
                    f"Expected toolResult blocks at messages.{i}.content for the following Ids: {', '.join(missing)}"
                )
            unknown = [r for r in results if r not in uses]
            if unknown:
                raise validation(
                    f"messages.{i}.content: toolResult blocks reference unknown toolUseId(s): {', '.join(unknown)}"
                )
    if tool_config is not None:
        names = []
        for i, tool in enumerate(tool_config["tools"]):
            spec = tool.get("toolSpec")
            if spec is None:
                continue  # cachePoint / systemTool entries
            schema = spec["inputSchema"].get("json")
            if not isinstance(schema, dict):
                raise validation(f"toolConfig.tools.{i}.toolSpec.inputSchema: the json member must be a JSON object schema.")
            if spec["name"] in names:
                raise validation(f"toolConfig.tools: the tool name {spec['name']} is used more than once.")
            names.append(spec["name"])
        choice = tool_config.get("toolChoice") or {}
        if "tool" in choice and choice["tool"]["name"] not in names:
            raise validation(
                f"toolConfig.toolChoice.tool.name: the tool {choice['tool']['name']} is not defined in toolConfig.tools."
            )


# ---------------------------------------------------------------------------------------------
# Deterministic replies.


def word_pieces(s: str) -> list[str]:
    """Each word with the whitespace after it (leading whitespace goes with the first word)."""
    return re.findall(r"\s*\S+\s*", s) or ([s] if s else [])


def json_pieces(s: str) -> list[str]:
    """Pieces of 3, 4, 5, 3, 4, 5, … characters, as providers stream tool input."""
    out, i, want = [], 0, 3
    while i < len(s):
        out.append(s[i : i + want])
        i += want
        want = 3 if want == 5 else want + 1
    return out


def example_from_schema(schema, name: str, depth: int = 0):
    """Same rules as the Rust mocks (tests/mock-providers/src/json.rs)."""
    if depth > 8 or not isinstance(schema, dict):
        return None
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return example_from_schema(schema[key][0], name, depth + 1)
    ty = schema.get("type")
    if isinstance(ty, list):
        ty = next((t for t in ty if t != "null"), "null")
    if ty is None:
        ty = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if ty == "object":
        return {k: example_from_schema(v, k, depth + 1) for k, v in (schema.get("properties") or {}).items()}
    if ty == "array":
        return [example_from_schema(schema.get("items"), name, depth + 1)] if "items" in schema else [None]
    if ty == "integer":
        return schema.get("minimum", 42)
    if ty == "number":
        return schema.get("minimum", 3.5)
    if ty == "boolean":
        return True
    if ty == "null":
        return None
    return f"{name} sample"


def heard(messages: list) -> str:
    """The last user turn, summarised."""
    user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    parts = []
    for b in user["content"] if user else []:
        if "text" in b:
            parts.append(b["text"])
        elif "image" in b:
            parts.append(f"[image {b['image']['format']}]")
        elif "document" in b:
            parts.append("[document]")
        elif "cachePoint" in b:
            continue
        elif "toolResult" in b:
            r = b["toolResult"]
            kind = "toolError" if r.get("status") == "error" else "toolResult"
            text = " ".join(
                c["text"] if "text" in c else json.dumps(c["json"], separators=(",", ":")) if "json" in c else "[" + next(iter(c)) + "]"
                for c in r["content"]
            )
            parts.append(f"[{kind} {r['toolUseId']}: {text}]")
        else:
            parts.append(f"[{next(iter(b), 'block')}]")
    return " ".join(parts)


def count_input_tokens(body: dict) -> int:
    words = lambda s: len(s.split())  # noqa: E731
    # cachePoint blocks are markers, not content: they count nothing.
    n = sum(words(s["text"]) if "text" in s else 0 if "cachePoint" in s else 1 for s in body.get("system") or [])
    for m in body["messages"]:
        for b in m["content"]:
            if "cachePoint" in b:
                continue
            if "text" in b:
                n += words(b["text"])
            elif "toolResult" in b:
                n += sum(words(c["text"]) if "text" in c else 1 for c in b["toolResult"]["content"])
            else:
                n += 1
    n += sum(1 for t in ((body.get("toolConfig") or {}).get("tools")) or [] if "toolSpec" in t)
    return max(n, 1)


def plan_reply(body: dict, b: dict) -> dict:
    """Blocks, stop reason and usage of the answer; the streamed form has the same content."""
    messages = body["messages"]
    tc = body.get("toolConfig") or {}
    tools = [t["toolSpec"] for t in tc.get("tools", []) if "toolSpec" in t]
    choice = tc.get("toolChoice") or {"auto": {}}
    cfg = body.get("inferenceConfig") or {}
    # [ToolUse]: any / tool force a tool call whatever the model id.
    wants_tools = bool(tools) and ("any" in choice or "tool" in choice or b["content"] != "text")
    blocks: list[dict] = []
    stop = "end_turn"
    extra = None
    if wants_tools:
        first = next((i for i, t in enumerate(tools) if "tool" in choice and t["name"] == choice["tool"]["name"]), 0)
        picks = [first]
        if b["content"] == "parallel-tools":
            picks.append((first + 1) % len(tools) if len(tools) > 1 and "tool" not in choice else first)
        if b["content"] == "text-tool":
            blocks.append({"text": f"Let me call {tools[first]['name']}."})
        for n, t in enumerate(picks, 1):
            spec = tools[t]
            blocks.append({"toolUse": {
                "toolUseId": f"tooluse_mock_{len(messages)}_{n}",
                "name": spec["name"],
                "input": example_from_schema(spec["inputSchema"]["json"], spec["name"]),
            }})
        stop = "tool_use"
    else:
        said = heard(messages)
        text = f"You said: {said}" if said else "You said nothing."
        pieces = word_pieces(text)
        keep = min(len(pieces), cfg.get("maxTokens", len(pieces)))
        if b["stop"] == "max-tokens":
            keep = min(keep, 3)
        if keep < len(pieces) or b["stop"] == "max-tokens":
            stop = "max_tokens"
        elif b["stop"] == "stop-sequence" and cfg.get("stopSequences"):
            stop = "stop_sequence"
            # Anthropic models on Bedrock report the matched sequence here [Converse § Response].
            extra = {"stop_sequence": cfg["stopSequences"][0]}
        if keep:
            blocks.append({"text": "".join(pieces[:keep])})
    if b["stop"] == "max-tokens":
        stop = "max_tokens"
    deltas = sum(
        len(word_pieces(x["text"])) if "text" in x else len(json_pieces(json.dumps(x["toolUse"]["input"], separators=(",", ":"))))
        for x in blocks
    )
    inp = count_input_tokens(body)
    out = max(deltas, 1)
    usage = {"inputTokens": inp, "outputTokens": out}
    cache_r, cache_w = (CACHE_READ_TOKENS, CACHE_WRITE_TOKENS) if b["cache"] else (0, 0)
    # [Message § TokenUsage]: totalTokens = input + output (+ cache reads and writes).
    usage["totalTokens"] = inp + out + cache_r + cache_w
    if b["cache"]:
        usage["cacheReadInputTokens"] = cache_r
        usage["cacheWriteInputTokens"] = cache_w
    return {"blocks": blocks, "stop": stop, "extra": extra, "usage": usage}


def converse_body(plan: dict) -> dict:
    # [Converse § Response Syntax]
    out = {
        "output": {"message": {"role": "assistant", "content": plan["blocks"]}},
        "stopReason": plan["stop"],
        "usage": plan["usage"],
        "metrics": {"latencyMs": LATENCY_MS},
    }
    if plan["extra"] is not None:
        out["additionalModelResponseFields"] = plan["extra"]
    return out


def stream_events(plan: dict) -> list[tuple[str, dict]]:
    """[Stream]: messageStart; per block: contentBlockStart (toolUse only; text blocks have none),
    contentBlockDelta…, contentBlockStop; messageStop; metadata."""
    ev: list[tuple[str, dict]] = [("messageStart", {"role": "assistant"})]
    for i, blk in enumerate(plan["blocks"]):
        if "text" in blk:
            for piece in word_pieces(blk["text"]):
                ev.append(("contentBlockDelta", {"contentBlockIndex": i, "delta": {"text": piece}}))
        else:
            tu = blk["toolUse"]
            ev.append(("contentBlockStart", {"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": tu["toolUseId"], "name": tu["name"]}}}))
            for piece in json_pieces(json.dumps(tu["input"], separators=(",", ":"))):
                ev.append(("contentBlockDelta", {"contentBlockIndex": i, "delta": {"toolUse": {"input": piece}}}))
        ev.append(("contentBlockStop", {"contentBlockIndex": i}))
    stop = {"stopReason": plan["stop"]}
    if plan["extra"] is not None:
        stop["additionalModelResponseFields"] = plan["extra"]
    ev.append(("messageStop", stop))
    ev.append(("metadata", {"usage": plan["usage"], "metrics": {"latencyMs": LATENCY_MS}}))
    return ev


# Frames sent before a -midstream-error exception or a -disconnect cut.
FRAMES_BEFORE_FAILURE = 3


# ---------------------------------------------------------------------------------------------
# Credentials and SigV4 [SigV4].


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.count = 0
        self.last = None
        self.issued: dict[str, dict] = {}  # access key id → {secret, token, expires}
        self.sts_count = 0
        self.log: list[dict] = []  # method and path of every request, in order


class _Verifier(SigV4Auth):
    """botocore's SigV4 with the header set fixed to what the client listed in SignedHeaders
    (botocore would otherwise choose the headers itself)."""

    def __init__(self, credentials, service, region, signed: HTTPHeaders):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request):
        return self._signed


AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]+)\s*$"
)


def check_sigv4(state: State, method: str, raw_path: str, headers, body: bytes) -> str:
    """Verifies the request's SigV4 signature with botocore; returns the access key id."""
    auth = headers.get("Authorization")
    if not auth:
        raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token", ERROR_NS_CORAL)
    m = AUTH_RE.match(auth.strip())
    if not m:
        raise ApiError(
            403, "IncompleteSignatureException",
            f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters. Authorization={auth}",
            ERROR_NS_CORAL,
        )
    credential, signed_names, signature = m.groups()
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise ApiError(403, "IncompleteSignatureException", f"Credential should be scoped to a valid terminator: 'aws4_request', not '{parts[-1]}'. ", ERROR_NS_CORAL)
    key_id, scope_date, scope_region, scope_service, _ = parts
    amz_date = headers.get("X-Amz-Date")
    if not amz_date:
        raise ApiError(
            403, "IncompleteSignatureException",
            f"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={auth}",
            ERROR_NS_CORAL,
        )
    try:
        when = dt.datetime.strptime(amz_date, SIGV4_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise ApiError(403, "IncompleteSignatureException", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.", ERROR_NS_CORAL)
    now = dt.datetime.now(dt.timezone.utc)
    fmt = lambda t: t.strftime(SIGV4_FORMAT)  # noqa: E731
    if when < now - MAX_SKEW:
        raise ApiError(
            403, "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {fmt(now - MAX_SKEW)} ({fmt(now)} - 5 min.)",
            ERROR_NS_CORAL,
        )
    if when > now + MAX_SKEW:
        raise ApiError(
            403, "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than {fmt(now + MAX_SKEW)} ({fmt(now)} + 5 min.)",
            ERROR_NS_CORAL,
        )
    if scope_date != amz_date[:8]:
        raise ApiError(
            403, "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
            ERROR_NS_CORAL,
        )
    if scope_region != state.args.region:
        raise ApiError(403, "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{scope_region}'. ", ERROR_NS_CORAL)
    if scope_service != "bedrock":
        raise ApiError(403, "InvalidSignatureException", f"Credential should be scoped to correct service: 'bedrock'. ", ERROR_NS_CORAL)

    # Which secret: the configured key, or one STS issued.
    token = headers.get("X-Amz-Security-Token")
    if key_id == state.args.access_key:
        secret = state.args.secret_key
        if (state.args.session_token or None) != (token or None):
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.", ERROR_NS_CORAL)
    else:
        with state.lock:
            issued = state.issued.get(key_id)
        if issued is None:
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.", ERROR_NS_CORAL)
        if token != issued["token"]:
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.", ERROR_NS_CORAL)
        if now >= issued["expires"]:
            raise ApiError(403, "ExpiredTokenException", "The security token included in the request is expired", ERROR_NS_CORAL)
        secret = issued["secret"]

    names = signed_names.split(";")
    if "host" not in names:
        raise ApiError(403, "InvalidSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", ERROR_NS_CORAL)
    signed = HTTPHeaders()
    for name in names:
        values = headers.get_all(name)
        if values is None:
            raise ApiError(403, "InvalidSignatureException", f"The request signature lists header '{name}' which the request does not carry.", ERROR_NS_CORAL)
        for v in values:
            signed[name] = v
    body_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get("X-Amz-Content-SHA256")
    if declared is not None and declared != body_hash:
        raise ApiError(
            403, "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.", ERROR_NS_CORAL,
        )
    req = AWSRequest(method=method, url=f"http://{headers.get('Host', 'localhost')}{raw_path}", data=body,
                     headers={"X-Amz-Content-SHA256": body_hash})
    req.context["timestamp"] = amz_date
    verifier = _Verifier(Credentials(key_id, secret, token), "bedrock", state.args.region, signed)
    canonical = verifier.canonical_request(req)
    expected = verifier.signature(verifier.string_to_sign(req, canonical), req)
    if not hmacs_equal(expected, signature):
        string_to_sign = verifier.string_to_sign(req, canonical)
        raise ApiError(
            403, "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.\n\n"
            f"The Canonical String for this request should have been\n'{canonical}'\n\n"
            f"The String-to-Sign should have been\n'{string_to_sign}'\n",
            ERROR_NS_CORAL,
        )
    return key_id


def hmacs_equal(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


# ---------------------------------------------------------------------------------------------
# STS AssumeRoleWithWebIdentity [STS].

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_error(status: int, code: str, message: str, request_id: str) -> tuple[int, bytes]:
    kind = "Sender" if status < 500 else "Receiver"
    xml = (
        f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n'
        f"    <Message>{_xml(message)}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    )
    return status, xml.encode()


def _xml(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def assume_role_with_web_identity(state: State, params: dict, request_id: str) -> tuple[int, bytes]:
    p = {k: v[-1] for k, v in params.items()}
    action = p.get("Action")
    if action != "AssumeRoleWithWebIdentity":
        return sts_error(400, "InvalidAction", f"Could not find operation {action} for version {p.get('Version', 'NO_VERSION_SPECIFIED')}", request_id)
    if p.get("Version") != "2011-06-15":
        return sts_error(400, "InvalidAction", f"Could not find operation {action} for version {p.get('Version', 'NO_VERSION_SPECIFIED')}", request_id)
    problems = []
    # [STS § Request Parameters]: RoleArn 20–2048, RoleSessionName 2–64 [\w+=,.@-]*,
    # WebIdentityToken 4–20000, DurationSeconds 900–43200.
    for name, field, lo, hi in (("RoleArn", "roleArn", 20, 2048), ("RoleSessionName", "roleSessionName", 2, 64), ("WebIdentityToken", "webIdentityToken", 4, 20000)):
        v = p.get(name)
        if v is None:
            problems.append(f"Value null at '{field}' failed to satisfy constraint: Member must not be null")
        elif not lo <= len(v) <= hi:
            problems.append(f"Value at '{field}' failed to satisfy constraint: Member must have length between {lo} and {hi}")
    if p.get("RoleSessionName") and not re.fullmatch(r"[\w+=,.@-]*", p["RoleSessionName"]):
        problems.append(f"Value '{p['RoleSessionName']}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
    duration = 3600
    if "DurationSeconds" in p:
        try:
            duration = int(p["DurationSeconds"])
        except ValueError:
            duration = -1
        if not 900 <= duration <= 43200:
            problems.append(f"Value '{p['DurationSeconds']}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")
    if problems:
        n = len(problems)
        return sts_error(400, "ValidationError", f"{n} validation error{'s' if n > 1 else ''} detected: " + "; ".join(problems), request_id)
    if state.args.web_identity_token is None or p["WebIdentityToken"] != state.args.web_identity_token:
        return sts_error(
            400, "InvalidIdentityToken",
            "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.",
            request_id,
        )
    with state.lock:
        state.sts_count += 1
        n = state.sts_count
    seed = hashlib.sha256(f"{n}:{p['RoleArn']}:{p['RoleSessionName']}".encode()).hexdigest()
    key_id = "ASIA" + base64.b32encode(bytes.fromhex(seed[:20])).decode()[:16]
    secret = base64.b64encode(bytes.fromhex(seed[20:50])).decode()
    token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(hashlib.sha512(seed.encode()).digest()).decode()
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=duration)).replace(microsecond=0)
    with state.lock:
        state.issued[key_id] = {"secret": secret, "token": token, "expires": expires}
    role_name = p["RoleArn"].rsplit("/", 1)[-1]
    account = (p["RoleArn"].split(":") + [""] * 5)[4] or "123456789012"
    session = p["RoleSessionName"]
    xml = f"""<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:mock:switchboard</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::{_xml(account)}:assumed-role/{_xml(role_name)}/{_xml(session)}</Arn>
      <AssumedRoleId>AROAMOCKROLEID00000000:{_xml(session)}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{token}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{expires.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
      <AccessKeyId>{key_id}</AccessKeyId>
    </Credentials>
    <Provider>oidc.mock.switchboard</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"""
    return 200, xml.encode()


# ---------------------------------------------------------------------------------------------
# HTTP.

PATH_RE = re.compile(r"^/model/([^/]+)/(converse|converse-stream)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-bedrock"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: stdout carries only the listening line
        if os.environ.get("MOCK_BEDROCK_LOG"):
            sys.stderr.write("mock-bedrock: " + (fmt % args) + "\n")

    @property
    def state(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _request_id(self) -> str:
        with self.state.lock:
            n = self.state.count
        return f"00000000-0000-4000-8000-{n:012d}"

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", self._request_id())
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_error(self, e: ApiError) -> None:
        # [Errors]: REST-JSON errors carry the type in x-amzn-ErrorType and {"message": …}.
        body = json.dumps({"message": e.message}).encode()
        self._send(e.status, body, "application/json", {"x-amzn-ErrorType": f"{e.code}:{e.ns}"})

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/_mock/last-request":
            with self.state.lock:
                last = self.state.last
            return self._send(200, json.dumps(last).encode(), "application/json")
        if path == "/_mock/requests":
            with self.state.lock:
                out = {"count": self.state.count, "sts": self.state.sts_count, "requests": list(self.state.log)}
            return self._send(200, json.dumps(out).encode(), "application/json")
        self._dispatch(b"")

    def do_POST(self):
        self._dispatch(self._read_body())

    def do_PUT(self):
        self._dispatch(self._read_body())

    def do_DELETE(self):
        self._dispatch(self._read_body())

    def _record(self, body: bytes) -> None:
        raw_path, _, query = self.path.partition("?")
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        headers: dict[str, str] = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]},{v}" if k in headers else v
        with self.state.lock:
            self.state.count += 1
            self.state.log.append({"method": self.command, "path": raw_path})
            self.state.last = {
                "method": self.command,
                "path": raw_path,
                "query": query,
                "headers": headers,
                "body": parsed,
                "body_text": body.decode("utf-8", "replace") if parsed is None else None,
            }

    def _dispatch(self, body: bytes) -> None:
        self._record(body)
        raw_path, _, query = self.path.partition("?")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        # STS is a query API at "/" [STS]: form-encoded POST (or GET with the query string).
        if raw_path == "/" and (self.command == "GET" or ctype == "application/x-www-form-urlencoded"):
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            if self.command == "POST":
                params.update(urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
            status, xml = assume_role_with_web_identity(self.state, params, self._request_id())
            return self._send(status, xml, "text/xml")
        m = PATH_RE.match(raw_path)
        try:
            if not m or self.command != "POST":
                raise ApiError(404, "UnknownOperationException", "Unknown operation", ERROR_NS_CORAL)
            check_sigv4(self.state, self.command, self.path, self.headers, body)
            model = urllib.parse.unquote(m.group(1))
            stream = m.group(2) == "converse-stream"
            try:
                req = json.loads(body) if body else {}
            except ValueError:
                raise validation("Malformed input request, please reformat your input and try again.")
            validate_converse(req, stream)
            b = behaviour(model)
            if "error" in b:
                code, message = ERRORS.get(
                    b["error"],
                    ("InternalServerException" if b["error"] >= 500 else "ValidationException", f"mock error-{b['error']}"),
                )
                raise ApiError(b["error"], code, message)
        except ApiError as e:
            return self._send_error(e)
        plan = plan_reply(req, b)
        if stream:
            self._stream(plan, b)
        else:
            self._converse(plan, b)

    def _converse(self, plan: dict, b: dict) -> None:
        body = json.dumps(converse_body(plan), separators=(",", ":")).encode()
        if b["failure"] == "malformed":
            return self._send(200, body[: len(body) // 2] + b"<html>not json", "application/json")
        if b["failure"] == "disconnect":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", self._request_id())
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            return self._cut()
        self._send(200, body, "application/json")

    def _cut(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, plan: dict, b: dict) -> None:
        # [Stream § Response Syntax]: 200, application/vnd.amazon.eventstream, then frames.
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", self._request_id())
        self.end_headers()
        self.wfile.flush()
        pace = self.state.args.pace_ms / 1000.0
        events = stream_events(plan)
        try:
            for n, (etype, body) in enumerate(events):
                if b["failure"] and n == FRAMES_BEFORE_FAILURE or (b["failure"] == "malformed" and n == 1):
                    break
                if pace and n:
                    time.sleep(pace)
                self._chunk(event_frame(etype, body, n))
            if b["failure"] == "midstream-error":
                self._chunk(exception_frame("modelStreamErrorException", {
                    "message": "The model encountered an error while streaming: Overloaded (mock midstream-error)",
                    "originalStatusCode": 529,
                    "originalMessage": "Overloaded",
                }))
            elif b["failure"] == "malformed":
                # A valid frame whose JSON payload is cut.
                frame = encode_frame(
                    [(":event-type", "contentBlockDelta"), (":content-type", "application/json"), (":message-type", "event")],
                    b'{"contentBlockIndex":0,"delta":{"text":"You sa',
                )
                self._chunk(frame)
            elif b["failure"] == "disconnect":
                return self._cut()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--access-key", default="AKIAMOCKBEDROCK00001", help="the accepted access key id")
    ap.add_argument("--secret-key", default="mock/bedrock/secret/key/0000000000000000", help="its secret")
    ap.add_argument("--session-token", default=None, help="require this X-Amz-Security-Token with --access-key")
    ap.add_argument("--region", default="us-east-1", help="the region credential scopes must name")
    ap.add_argument("--web-identity-token", default=None, help="the one token STS AssumeRoleWithWebIdentity accepts")
    ap.add_argument("--pace-ms", type=int, default=0, help="pause between stream frames")
    ap.add_argument("--port", type=int, default=0, help="loopback port (0: chosen by the OS)")
    ap.add_argument("--exit-with-stdin", action="store_true",
                    help="exit when stdin closes (a test harness that dies takes the mock with it)")
    args = ap.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args)  # type: ignore[attr-defined]
    host, port = server.server_address[:2]
    print(f"listening bedrock={host}:{port}", flush=True)
    if args.exit_with_stdin:
        def watch():
            sys.stdin.buffer.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
