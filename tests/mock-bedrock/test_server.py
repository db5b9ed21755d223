#!/usr/bin/env python3
"""Tests of the Bedrock Runtime mock (server.py), driven by boto3's own clients.

The server runs as a subprocess on a port the OS chooses (its `listening bedrock=…` line is read,
no sleeps). boto3's `bedrock-runtime` client signs with botocore's SigV4 and parses responses and
event streams with botocore's parsers, so a passing test proves the mock speaks the real wire
format; raw requests (signed with botocore, sent with http.client) cover what the SDK will not
send (unknown fields, a wrong service in the scope, no signature).

Run: python tests/mock-bedrock/test_server.py  (needs boto3, pinned in tests/py/requirements.txt)
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Never read the developer's AWS configuration, and never ask an instance metadata service.
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import botocore.session  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.eventstream import EventStreamBuffer  # noqa: E402
from botocore.exceptions import ClientError, EventStreamError  # noqa: E402

import server  # noqa: E402  (the mock's pure helpers: encoder, behaviours)

KEY = "AKIAMOCKBEDROCK00001"
SECRET = "mock/bedrock/secret/key/0000000000000000"
REGION = "us-east-1"
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.mock-service-account-token.signature"
NO_RETRY = Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=5)

WEATHER = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "minimum": 1}}, "required": ["city"]}},
    }
}
TIME = {"toolSpec": {"name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {"zone": {"type": "string"}}}}}}


def user(text):
    return {"role": "user", "content": [{"text": text}]}


class MockServer:
    def __init__(self, *extra):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "server.py"), "--access-key", KEY, "--secret-key", SECRET,
             "--region", REGION, "--web-identity-token", WEB_TOKEN, "--exit-with-stdin", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening bedrock=127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError(f"mock did not start: {line!r} {self.proc.stderr.read()}")
        self.addr = line.split("=", 1)[1]
        self.url = f"http://{self.addr}"

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()

    def client(self, key=KEY, secret=SECRET, token=None, region=REGION):
        return boto3.client(
            "bedrock-runtime", endpoint_url=self.url, region_name=region, aws_access_key_id=key,
            aws_secret_access_key=secret, aws_session_token=token, config=NO_RETRY,
        )

    def get(self, path):
        conn = http.client.HTTPConnection(self.addr, timeout=10)
        conn.request("GET", path)
        r = conn.getresponse()
        body = json.loads(r.read())
        conn.close()
        return body

    def raw(self, path, body, *, sign=True, service="bedrock", region=REGION, key=KEY, secret=SECRET, token=None, headers=None):
        """A request signed with botocore's SigV4 (or not), sent with http.client: status,
        headers, body bytes."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = AWSRequest(method="POST", url=self.url + path, data=data, headers={"Content-Type": "application/json", **(headers or {})})
        if sign:
            SigV4Auth(Credentials(key, secret, token), service, region).add_auth(req)
        conn = http.client.HTTPConnection(self.addr, timeout=10)
        try:
            conn.request("POST", path, body=data, headers=dict(req.headers.items()))
            r = conn.getresponse()
            return (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()


def code_of(err: ClientError):
    return err.response["Error"]["Code"], err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Message"]


class BedrockMockTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = MockServer()
        cls.c = cls.mock.client()

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def refused(self, call, code, status, contains=""):
        with self.assertRaises(ClientError) as ctx:
            call()
        got = code_of(ctx.exception)
        self.assertEqual(got[:2], (code, status), got)
        self.assertIn(contains, got[2])
        return got[2]

    # --- Converse -------------------------------------------------------------------------

    def test_signed_converse_answers_from_the_request(self):
        before = self.mock.get("/_mock/requests")["count"]
        r = self.c.converse(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0",
            system=[{"text": "Be brief."}],
            messages=[user("hello there"), {"role": "assistant", "content": [{"text": "Hi."}]}, user("what is up")],
            inferenceConfig={"maxTokens": 100, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
        )
        self.assertEqual(r["output"]["message"], {"role": "assistant", "content": [{"text": "You said: what is up"}]})
        self.assertEqual(r["stopReason"], "end_turn")
        # words: 2 (system) + 2 + 1 + 3
        self.assertEqual(r["usage"], {"inputTokens": 8, "outputTokens": 5, "totalTokens": 13})
        self.assertEqual(r["metrics"], {"latencyMs": 42})
        self.assertEqual(self.mock.get("/_mock/requests")["count"], before + 1)
        last = self.mock.get("/_mock/last-request")
        self.assertEqual(last["path"], "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse")
        self.assertTrue(last["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/"))
        self.assertEqual(last["body"]["inferenceConfig"]["stopSequences"], ["END"])

    def test_image_and_tool_result_are_heard(self):
        png = b"\x89PNG\r\n\x1a\nmock"
        r = self.c.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "look"}, {"image": {"format": "png", "source": {"bytes": png}}}]}])
        self.assertEqual(r["output"]["message"]["content"][0]["text"], "You said: look [image png]")
        self.assertEqual(self.mock.get("/_mock/last-request")["body"]["messages"][0]["content"][1]["image"]["source"]["bytes"], "iVBORw0KGgptb2Nr")
        msgs = [
            user("weather?"),
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}], "status": "success"}}]},
        ]
        r = self.c.converse(modelId="m", messages=msgs, toolConfig={"tools": [WEATHER]})
        self.assertEqual(r["output"]["message"]["content"], [{"text": "You said: [toolResult tooluse_1: sunny]"}])

    def test_tool_calls(self):
        r = self.c.converse(modelId="m-tool", messages=[user("weather in Paris")], toolConfig={"tools": [WEATHER, TIME]})
        self.assertEqual(r["stopReason"], "tool_use")
        self.assertEqual(r["output"]["message"]["content"], [{"toolUse": {"toolUseId": "tooluse_mock_1_1", "name": "get_weather", "input": {"city": "city sample", "unit": "celsius", "days": 1}}}])
        r = self.c.converse(modelId="m-parallel-tools", messages=[user("both")], toolConfig={"tools": [WEATHER, TIME]})
        self.assertEqual([b["toolUse"]["name"] for b in r["output"]["message"]["content"]], ["get_weather", "get_time"])
        # toolChoice tool forces that tool whatever the model id; any forces one.
        r = self.c.converse(modelId="plain", messages=[user("x")], toolConfig={"tools": [WEATHER, TIME], "toolChoice": {"tool": {"name": "get_time"}}})
        self.assertEqual(r["output"]["message"]["content"][0]["toolUse"]["name"], "get_time")
        r = self.c.converse(modelId="plain", messages=[user("x")], toolConfig={"tools": [WEATHER], "toolChoice": {"any": {}}})
        self.assertEqual(r["stopReason"], "tool_use")
        r = self.c.converse(modelId="plain", messages=[user("x")], toolConfig={"tools": [WEATHER], "toolChoice": {"auto": {}}})
        self.assertEqual(r["stopReason"], "end_turn")

    def test_stop_reasons_and_cache_usage(self):
        r = self.c.converse(modelId="m-max-tokens", messages=[user("one two three four five")])
        self.assertEqual((r["stopReason"], r["output"]["message"]["content"][0]["text"]), ("max_tokens", "You said: one "))
        r = self.c.converse(modelId="m", messages=[user("one two three four five")], inferenceConfig={"maxTokens": 2})
        self.assertEqual((r["stopReason"], r["usage"]["outputTokens"]), ("max_tokens", 2))
        r = self.c.converse(modelId="m-stop-sequence", messages=[user("hi")], inferenceConfig={"stopSequences": ["STOP", "END"]})
        self.assertEqual(r["stopReason"], "stop_sequence")
        self.assertEqual(r["additionalModelResponseFields"], {"stop_sequence": "STOP"})
        r = self.c.converse(modelId="m-cache", messages=[user("hi")])
        self.assertEqual(r["usage"], {"inputTokens": 1, "outputTokens": 3, "totalTokens": 1 + 3 + 2048 + 128, "cacheReadInputTokens": 2048, "cacheWriteInputTokens": 128})

    def test_error_models(self):
        for status, code in [(400, "ValidationException"), (429, "ThrottlingException"), (500, "InternalServerException"), (503, "ServiceUnavailableException"), (403, "AccessDeniedException")]:
            self.refused(lambda: self.c.converse(modelId=f"error-{status}", messages=[user("x")]), code, status)
            status_, headers, _ = self.mock.raw(f"/model/error-{status}/converse", {"messages": [user("x")]})
            self.assertEqual(status_, status)
            self.assertTrue(headers["x-amzn-errortype"].startswith(code + ":"), headers)
        with self.assertRaises(ClientError) as ctx:
            list(self.c.converse_stream(modelId="error-429", messages=[user("x")])["stream"])
        self.assertEqual(code_of(ctx.exception)[:2], ("ThrottlingException", 429))

    def test_chunked_request_body_and_cache_points(self):
        body = json.dumps({"system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}], "messages": [{"role": "user", "content": [{"text": "chunked body"}, {"cachePoint": {"type": "default"}}]}]}).encode()
        req = AWSRequest(method="POST", url=f"{self.mock.url}/model/m/converse", data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(KEY, SECRET), "bedrock", REGION).add_auth(req)
        conn = http.client.HTTPConnection(self.mock.addr, timeout=10)
        try:
            headers = {k: v for k, v in req.headers.items()}
            conn.request("POST", "/model/m/converse", body=iter([body[:10], body[10:]]), headers=headers, encode_chunked=True)
            r = conn.getresponse()
            out = json.loads(r.read())
        finally:
            conn.close()
        self.assertEqual(r.status, 200, out)
        self.assertEqual(out["output"]["message"]["content"], [{"text": "You said: chunked body"}])
        self.assertEqual(out["usage"]["inputTokens"], 4)
        self.assertEqual(self.mock.get("/_mock/last-request")["headers"]["transfer-encoding"], "chunked")
        self.assertEqual(self.mock.get("/_mock/requests")["requests"][-1], {"method": "POST", "path": "/model/m/converse"})

    def test_malformed_and_disconnect_without_stream(self):
        status, _, body = self.mock.raw("/model/m-malformed/converse", {"messages": [user("x")]})
        self.assertEqual(status, 200)
        with self.assertRaises(ValueError):
            json.loads(body)
        with self.assertRaises(http.client.IncompleteRead):
            self.mock.raw("/model/m-disconnect/converse", {"messages": [user("x")]})

    # --- ConverseStream ---------------------------------------------------------------------

    def test_stream_decodes_with_boto3_and_matches_converse(self):
        whole = self.c.converse(modelId="m-cache", messages=[user("stream these words please")])
        events = list(self.c.converse_stream(modelId="m-cache", messages=[user("stream these words please")])["stream"])
        kinds = [next(iter(e)) for e in events]
        self.assertEqual(kinds, ["messageStart"] + ["contentBlockDelta"] * 6 + ["contentBlockStop", "messageStop", "metadata"])
        self.assertEqual(events[0]["messageStart"], {"role": "assistant"})
        text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
        self.assertEqual(text, whole["output"]["message"]["content"][0]["text"])
        self.assertEqual(events[-2]["messageStop"], {"stopReason": "end_turn"})
        self.assertEqual(events[-1]["metadata"]["usage"], whole["usage"])
        self.assertEqual(events[-1]["metadata"]["metrics"], {"latencyMs": 42})

    def test_tool_call_stream(self):
        cfg = {"tools": [WEATHER, TIME]}
        whole = self.c.converse(modelId="m-text-tool", messages=[user("weather")], toolConfig=cfg)
        events = list(self.c.converse_stream(modelId="m-text-tool", messages=[user("weather")], toolConfig=cfg)["stream"])
        starts = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
        self.assertEqual(starts, [{"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_mock_1_1", "name": "get_weather"}}}])
        pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e and "toolUse" in e["contentBlockDelta"]["delta"]]
        self.assertGreater(len(pieces), 5)
        self.assertEqual(json.loads("".join(pieces)), whole["output"]["message"]["content"][1]["toolUse"]["input"])
        self.assertEqual([e["contentBlockStop"]["contentBlockIndex"] for e in events if "contentBlockStop" in e], [0, 1])
        self.assertEqual(events[-2]["messageStop"]["stopReason"], "tool_use")
        self.assertEqual(events[-1]["metadata"]["usage"]["outputTokens"], len([e for e in events if "contentBlockDelta" in e]))
        # parallel tools: two toolUse blocks, indexes 0 and 1
        events = list(self.c.converse_stream(modelId="m-parallel-tools", messages=[user("x")], toolConfig=cfg)["stream"])
        self.assertEqual([e["contentBlockStart"]["start"]["toolUse"]["name"] for e in events if "contentBlockStart" in e], ["get_weather", "get_time"])

    def test_raw_frames_decode_with_botocores_parser(self):
        status, headers, body = self.mock.raw("/model/m/converse-stream", {"messages": [user("a b")]})
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/vnd.amazon.eventstream")
        buf = EventStreamBuffer()
        buf.add_data(body)
        msgs = list(buf)  # checks both CRCs of every frame
        self.assertEqual([m.headers[":event-type"] for m in msgs], ["messageStart"] + ["contentBlockDelta"] * 4 + ["contentBlockStop", "messageStop", "metadata"])
        for m in msgs:
            self.assertEqual((m.headers[":message-type"], m.headers[":content-type"]), ("event", "application/json"))
            self.assertIn("p", json.loads(m.payload))  # Bedrock's padding member

    def test_encoder_round_trips_through_botocore(self):
        frame = server.encode_frame([(":event-type", "messageStart"), (":content-type", "application/json"), (":message-type", "event")], b'{"role":"assistant"}')
        frame += server.exception_frame("throttlingException", {"message": "slow down"})
        buf = EventStreamBuffer()
        for i in range(0, len(frame), 7):  # fed in small pieces
            buf.add_data(frame[i : i + 7])
        msgs = list(buf)
        self.assertEqual(msgs[0].headers, {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"})
        self.assertEqual(msgs[0].payload, b'{"role":"assistant"}')
        self.assertEqual(msgs[1].headers[":message-type"], "exception")
        self.assertEqual(msgs[1].headers[":exception-type"], "throttlingException")
        corrupt = bytearray(frame)
        corrupt[20] ^= 1
        buf = EventStreamBuffer()
        buf.add_data(bytes(corrupt))
        with self.assertRaises(Exception):
            list(buf)

    def test_midstream_error_is_an_exception_frame(self):
        stream = self.c.converse_stream(modelId="m-midstream-error", messages=[user("a b c d e f")])["stream"]
        seen = []
        with self.assertRaises(EventStreamError) as ctx:
            for e in stream:
                seen.append(next(iter(e)))
        self.assertEqual(seen, ["messageStart", "contentBlockDelta", "contentBlockDelta"])
        self.assertEqual(ctx.exception.response["Error"]["Code"], "modelStreamErrorException")
        status, _, body = self.mock.raw("/model/m-midstream-error/converse-stream", {"messages": [user("a b c d e f")]})
        self.assertEqual(status, 200)
        buf = EventStreamBuffer()
        buf.add_data(body)
        last = list(buf)[-1]
        self.assertEqual((last.headers[":message-type"], last.headers[":exception-type"]), ("exception", "modelStreamErrorException"))
        self.assertEqual(json.loads(last.payload)["originalStatusCode"], 529)

    def test_stream_disconnect_and_malformed(self):
        with self.assertRaises(Exception):
            list(self.c.converse_stream(modelId="m-disconnect", messages=[user("a b c d e f")])["stream"])
        # Raw: three whole frames, then the connection is cut before the last chunk.
        conn = http.client.HTTPConnection(self.mock.addr, timeout=10)
        req = AWSRequest(method="POST", url=f"{self.mock.url}/model/m-disconnect/converse-stream", data=json.dumps({"messages": [user("a b c d e f")]}).encode())
        SigV4Auth(Credentials(KEY, SECRET), "bedrock", REGION).add_auth(req)
        conn.request("POST", "/model/m-disconnect/converse-stream", body=req.body, headers=dict(req.headers.items()))
        r = conn.getresponse()
        with self.assertRaises(http.client.IncompleteRead) as ctx:
            r.read()
        buf = EventStreamBuffer()
        buf.add_data(ctx.exception.partial)
        self.assertEqual(len(list(buf)), 3)
        conn.close()
        # Malformed: messageStart, then a well-framed event whose JSON payload is cut (botocore
        # yields it without its required members; a strict client refuses it).
        events = list(self.c.converse_stream(modelId="m-malformed", messages=[user("a b c")])["stream"])
        self.assertEqual(events, [{"messageStart": {"role": "assistant"}}, {"contentBlockDelta": {}}])
        status, _, body = self.mock.raw("/model/m-malformed/converse-stream", {"messages": [user("a b c")]})
        buf = EventStreamBuffer()
        buf.add_data(body)
        frames = list(buf)
        self.assertEqual(len(frames), 2)
        with self.assertRaises(ValueError):
            json.loads(frames[1].payload)

    def test_the_mock_exits_when_its_stdin_closes(self):
        m = MockServer()
        m.proc.stdin.close()
        self.assertEqual(m.proc.wait(timeout=10), 0)
        m.proc.stdout.close()
        m.proc.stderr.close()

    def test_paced_stream(self):
        paced = MockServer("--pace-ms", "1")
        try:
            events = list(paced.client().converse_stream(modelId="m", messages=[user("x y")])["stream"])
            self.assertEqual(len(events), 8)
        finally:
            paced.stop()

    # --- SigV4 ------------------------------------------------------------------------------

    def test_tampered_signature_is_refused(self):
        c = self.mock.client()

        def tamper(request, **_):
            auth = request.headers["Authorization"].decode() if isinstance(request.headers["Authorization"], bytes) else request.headers["Authorization"]
            last = auth[-1]
            request.headers["Authorization"] = auth[:-1] + ("0" if last != "0" else "1")

        c.meta.events.register("before-send.bedrock-runtime.Converse", tamper)
        msg = self.refused(lambda: c.converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403, "The request signature we calculated does not match")
        self.assertIn("The Canonical String for this request should have been", msg)
        # A body changed after signing is refused too.
        c2 = self.mock.client()

        def change_body(request, **_):
            request.body = request.body.replace(b'"x"', b'"y"')

        c2.meta.events.register("before-send.bedrock-runtime.Converse", change_body)
        self.refused(lambda: c2.converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403)

    def test_an_independent_signer_is_accepted(self):
        """SigV4 written out from the specification (not botocore), signing headers botocore's
        signer never signs (user-agent, content-length), as other SDKs may."""
        import hashlib
        import hmac

        body = json.dumps({"messages": [user("hand signed")]}).encode()
        path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": self.mock.addr, "content-type": "application/json", "content-length": str(len(body)),
            "user-agent": "hand-signer/1.0", "x-amz-date": now, "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        names = sorted(headers)
        # Canonical URI: each segment URI-encoded again (non-S3 services encode twice).
        canonical_uri = "/".join(urllib.parse.quote(seg, safe="-_.~") for seg in path.split("/"))
        canonical = "\n".join(["POST", canonical_uri, "", "".join(f"{n}:{headers[n].strip()}\n" for n in names), ";".join(names), headers["x-amz-content-sha256"]])
        scope = f"{now[:8]}/{REGION}/bedrock/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", now, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + SECRET).encode()
        for part in (now[:8], REGION, "bedrock", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
        conn = http.client.HTTPConnection(self.mock.addr, timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            r = conn.getresponse()
            out = json.loads(r.read())
        finally:
            conn.close()
        self.assertEqual(r.status, 200, out)
        self.assertEqual(out["output"]["message"]["content"][0]["text"], "You said: hand signed")

    def test_wrong_secret_unknown_key_wrong_scope(self):
        self.refused(lambda: self.mock.client(secret="wrong" + SECRET).converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403, "does not match")
        self.refused(lambda: self.mock.client(key="AKIAUNKNOWN000000000").converse(modelId="m", messages=[user("x")]), "UnrecognizedClientException", 403, "The security token included in the request is invalid.")
        self.refused(lambda: self.mock.client(region="us-west-2").converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403, "Credential should be scoped to a valid region, not 'us-west-2'.")
        status, headers, body = self.mock.raw("/model/m/converse", {"messages": [user("x")]}, service="bedrock-runtime")
        self.assertEqual(status, 403)
        self.assertEqual(headers["x-amzn-errortype"].split(":")[0], "InvalidSignatureException")
        self.assertEqual(json.loads(body), {"message": "Credential should be scoped to correct service: 'bedrock'. "})
        # A session token on a key that has none.
        self.refused(lambda: self.mock.client(token="bogus").converse(modelId="m", messages=[user("x")]), "UnrecognizedClientException", 403)

    def test_stale_and_missing_date(self):
        stale = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=6)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=stale):
            self.refused(lambda: self.c.converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403, "Signature expired:")
        future = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=6)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=future):
            self.refused(lambda: self.c.converse(modelId="m", messages=[user("x")]), "InvalidSignatureException", 403, "Signature not yet current:")
        recent = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=4)
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=recent):
            self.c.converse(modelId="m", messages=[user("x")])
        c = self.mock.client()

        def drop_date(request, **_):
            del request.headers["X-Amz-Date"]

        c.meta.events.register("before-send.bedrock-runtime.Converse", drop_date)
        self.refused(lambda: c.converse(modelId="m", messages=[user("x")]), "IncompleteSignatureException", 403, "X-Amz-Date")

    def test_unsigned_request_is_refused(self):
        status, headers, body = self.mock.raw("/model/m/converse", {"messages": [user("x")]}, sign=False)
        self.assertEqual((status, headers["x-amzn-errortype"].split(":")[0], json.loads(body)), (403, "MissingAuthenticationTokenException", {"message": "Missing Authentication Token"}))
        # The rejected request is recorded all the same.
        self.assertNotIn("authorization", self.mock.get("/_mock/last-request")["headers"])

    # --- Validation -------------------------------------------------------------------------

    def test_validation_rejections(self):
        v = lambda **kw: self.refused(lambda: self.c.converse(modelId="m", **kw), "ValidationException", 400)  # noqa: E731
        self.assertIn("must start with a user message", v(messages=[]))
        self.assertIn("must start with a user message", v(messages=[{"role": "assistant", "content": [{"text": "x"}]}]))
        self.assertIn("must alternate between user and assistant", v(messages=[user("a"), user("b")]))
        self.assertIn("enum value set: [user, assistant]", v(messages=[{"role": "system", "content": [{"text": "x"}]}]))
        self.assertIn("messages.0 is empty", v(messages=[{"role": "user", "content": []}]))
        self.assertIn("is blank", v(messages=[user("  ")]))
        self.assertEqual(
            v(messages=[user("x")], inferenceConfig={"temperature": 1.5, "topP": 2}),
            "2 validation errors detected: Value '1.5' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1; "
            "Value '2' at 'inferenceConfig.topP' failed to satisfy constraint: Member must have value less than or equal to 1",
        )
        self.assertIn("toolConfig field must be defined", v(messages=[user("x"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}, user("y")]))
        tools = {"tools": [WEATHER]}
        self.assertIn("Expected toolResult blocks at messages.2.content for the following Ids: t1", v(messages=[user("x"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {}}}]}, user("y")], toolConfig=tools))
        self.assertIn("exceeds the number of toolUse blocks", v(messages=[{"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}}]}], toolConfig=tools))
        self.assertIn("not defined in toolConfig.tools", v(messages=[user("x")], toolConfig={"tools": [WEATHER], "toolChoice": {"tool": {"name": "nope"}}}))
        doc = {"document": {"format": "txt", "name": "notes", "source": {"bytes": b"hello"}}}
        self.assertIn("must also include a text block", v(messages=[{"role": "user", "content": [doc]}]))
        self.assertIn("up to 20 images", v(messages=[{"role": "user", "content": [{"text": "x"}] + [{"image": {"format": "png", "source": {"bytes": b"abc"}}}] * 21}]))
        self.assertIn("only include images", v(messages=[user("x"), {"role": "assistant", "content": [{"image": {"format": "png", "source": {"bytes": b"abc"}}}]}]))

    def test_raw_validation_rejections(self):
        """What boto3 refuses to send itself: unknown fields, wrong types, bad base64."""
        def v(body):
            status, headers, out = self.mock.raw("/model/m/converse", body)
            self.assertEqual((status, headers["x-amzn-errortype"].split(":")[0]), (400, "ValidationException"), out)
            return json.loads(out)["message"]

        self.assertIn("extraneous key [temperature]", v({"messages": [user("x")], "temperature": 0.5}))
        self.assertIn("extraneous key [max_tokens]", v({"messages": [user("x")], "inferenceConfig": {"max_tokens": 5}}))
        self.assertIn("Member must have exactly one member set", v({"messages": [{"role": "user", "content": [{"text": "x", "image": {"format": "png", "source": {"bytes": "AAAA"}}}]}]}))
        self.assertIn("base64", v({"messages": [{"role": "user", "content": [{"image": {"format": "png", "source": {"bytes": "not base64!"}}}]}]}))
        self.assertIn("enum value set: [png, jpeg, gif, webp]", v({"messages": [{"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": "AAAA"}}}]}]}))
        self.assertIn("Value null at 'messages.1.member.role'", v({"messages": [{"content": [{"text": "x"}]}]}))
        self.assertIn("Member must be a list", v({"messages": [user("x")], "system": "be nice"}))
        self.assertIn("Value null at 'toolConfig.tools.1.member.toolSpec.inputSchema'", v({"messages": [user("x")], "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}]}}))
        self.assertIn("Member must have value greater than or equal to 1", v({"messages": [user("x")], "inferenceConfig": {"maxTokens": 0}}))
        self.assertIn("Malformed input request", v(b"{not json"))

    # --- STS web identity (IRSA) -------------------------------------------------------------

    def test_sts_web_identity_credentials_work(self):
        sts = boto3.client("sts", endpoint_url=self.mock.url, region_name=REGION, config=NO_RETRY)
        out = sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::123456789012:role/switchboard", RoleSessionName="gateway", WebIdentityToken=WEB_TOKEN, DurationSeconds=900)
        creds = out["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        self.assertEqual(out["AssumedRoleUser"]["Arn"], "arn:aws:sts::123456789012:assumed-role/switchboard/gateway")
        left = creds["Expiration"] - dt.datetime.now(dt.timezone.utc)
        self.assertTrue(dt.timedelta(minutes=14) < left <= dt.timedelta(minutes=15), left)
        c = self.mock.client(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
        r = c.converse(modelId="m", messages=[user("via irsa")])
        self.assertEqual(r["output"]["message"]["content"][0]["text"], "You said: via irsa")
        self.assertEqual(self.mock.get("/_mock/last-request")["headers"]["x-amz-security-token"], creds["SessionToken"])
        # Without the session token, or with another one, the temporary key is refused.
        self.refused(lambda: self.mock.client(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"]).converse(modelId="m", messages=[user("x")]), "UnrecognizedClientException", 403)
        self.refused(lambda: self.mock.client(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"] + "x").converse(modelId="m", messages=[user("x")]), "UnrecognizedClientException", 403)
        # A wrong web identity token, a missing parameter.
        self.refused(lambda: sts.assume_role_with_web_identity(RoleArn="arn:aws:iam::123456789012:role/switchboard", RoleSessionName="gateway", WebIdentityToken="other-token"), "InvalidIdentityToken", 400, "could not be validated")

    def test_boto3_web_identity_provider_chain(self):
        """IRSA as a pod sees it: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, STS at the mock."""
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write(WEB_TOKEN)
        try:
            env = {"AWS_WEB_IDENTITY_TOKEN_FILE": f.name, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa", "AWS_ROLE_SESSION_NAME": "pod", "AWS_ENDPOINT_URL_STS": self.mock.url, "AWS_DEFAULT_REGION": REGION}
            sts_before = self.mock.get("/_mock/requests")["sts"]
            with mock.patch.dict(os.environ, env):
                session = boto3.Session(botocore_session=botocore.session.Session())
                creds = session.get_credentials().get_frozen_credentials()
                self.assertTrue(creds.access_key.startswith("ASIA"))
                c = session.client("bedrock-runtime", endpoint_url=self.mock.url, config=NO_RETRY)
                r = c.converse(modelId="m", messages=[user("pod")])
                self.assertEqual(r["output"]["message"]["content"][0]["text"], "You said: pod")
            self.assertEqual(self.mock.get("/_mock/requests")["sts"], sts_before + 1)
        finally:
            os.unlink(f.name)

    # --- Behaviour vocabulary (tests/mock-providers/src/behavior.rs) --------------------------

    def test_model_suffixes_combine_like_the_rust_mocks(self):
        b = server.behaviour
        self.assertEqual(b("error-529"), {"error": 529})
        self.assertEqual(b("error-200"), {"content": "text", "stop": "natural", "cache": False, "failure": None})
        self.assertEqual(b("claude-parallel-tools-cache-disconnect"), {"content": "parallel-tools", "stop": "natural", "cache": True, "failure": "disconnect"})
        self.assertEqual(b("m-text-tool-midstream-error"), {"content": "text-tool", "stop": "natural", "cache": False, "failure": "midstream-error"})
        self.assertEqual(b("x-thinking-tool-stop-sequence-malformed"), {"content": "tool", "stop": "stop-sequence", "cache": False, "failure": "malformed"})
        self.assertEqual(b("tool")["content"], "text")


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    if result.wasSuccessful():
        print("mock-bedrock tests passed")
        sys.exit(0)
    sys.exit(1)
