#!/usr/bin/env python3
"""Regenerates the committed seed corpora in fuzz/corpus/<target>/.

Seeds are deterministic (fixed random seed) so re-running this produces the same files.

* event_stream_decode: real-looking Amazon Q transcripts (Q-CLI and Kiro, text, tool
  calls, exceptions, error frames, unknown events) encoded by an encoder written here from
  the AWS event-stream spec -- independent of the Rust encoder under test -- prefixed with
  the bytes that select the target's raw mode and chunking; plus byte strings that select
  the structured and valid-frame modes.
* translate_request: the request bodies of the Claude Code fixtures and a few hand-written
  bodies (raw-JSON mode), plus byte strings for the structured generator.
* stream_translator: byte strings for its structured event generator, and scenarios in
  its readable JSON form.
"""
import json
import os
import random
import struct
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)
rng = random.Random(8)


def header(name, value):
    n = name.encode()
    v = value.encode()
    return struct.pack(">B", len(n)) + n + b"\x07" + struct.pack(">H", len(v)) + v


def frame(headers, payload):
    hb = b"".join(header(k, v) for k, v in headers)
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack(">II", total, len(hb))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + hb + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind, payload):
    return frame(
        [(":message-type", "event"), (":event-type", kind), (":content-type", "application/json")],
        json.dumps(payload).encode(),
    )


def exception(kind, payload):
    return frame(
        [(":message-type", "exception"), (":exception-type", kind), (":content-type", "application/json")],
        json.dumps(payload).encode(),
    )


def error(code, message):
    return frame([(":message-type", "error"), (":error-code", code), (":error-message", message)], b"")


def text_reply(words, kiro=False):
    out = [] if kiro else [event("initial-response", {"conversationId": "c-1"})]
    out.append(event("messageMetadataEvent", {"conversationId": "c-1", "utteranceId": "u-1"}))
    out += [event("assistantResponseEvent", {"content": w + " "}) for w in words]
    out.append(event("meteringEvent", {"unit": "credit", "unitPlural": "credits", "usage": 0.25}))
    out.append(event("contextUsageEvent", {"contextUsagePercentage": 1.5}))
    return out


def tool_reply():
    out = text_reply(["Running", "it"])
    out.append(event("toolUseEvent", {"toolUseId": "tooluse_1", "name": "Bash", "input": ""}))
    out.append(event("toolUseEvent", {"toolUseId": "tooluse_1", "name": "Bash", "input": "{\"command\": "}))
    out.append(event("toolUseEvent", {"toolUseId": "tooluse_1", "name": "Bash", "input": "\"ls\"}"}))
    out.append(event("toolUseEvent", {"toolUseId": "tooluse_1", "name": "Bash", "stop": True}))
    return out


TRANSCRIPTS = {
    "text": text_reply(["Hello", "wörld", "✓"]),
    "kiro_text": text_reply(["<thinking>", "hmm", "</thinking>", "answer"], kiro=True),
    "tool": tool_reply(),
    "midstream_exception": text_reply(["a", "b"])
    + [exception("InternalServerException", {"message": "Encountered an unexpected error"})],
    "output_limit": text_reply(["x"] * 5)
    + [exception("ContentLengthExceededException", {"message": "too long", "reason": "CONTENT_LENGTH_EXCEEDS_THRESHOLD"})],
    "error_frame": [error("ThrottlingException", "Rate exceeded")],
    "unknown_events": [
        event("codeReferenceEvent", {"references": []}),
        event("followupPromptEvent", {"followupPrompt": {}}),
        event("metadataEvent", {"tokenUsage": {"uncachedInputTokens": 10, "outputTokens": 3}}),
        event("reasoningContentEvent", {"text": "why", "signature": "sig"}),
        event("invalidStateEvent", {"reason": "INVALID_TASK_ASSIST_PLAN", "message": "bad"}),
    ],
}


def write(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def decode_seeds():
    for name, frames in TRANSCRIPTS.items():
        stream = b"".join(frames)
        # mode 0 (raw), no chunk lengths: the whole transcript in one piece
        write("event_stream_decode", f"raw_{name}", b"\x00\x00" + stream)
        # mode 0, chunks of 1, 7 and 13 bytes
        write("event_stream_decode", f"raw_chunked_{name}", b"\x00\x03\x00\x06\x0c" + stream)
    # truncated and corrupted variants
    stream = b"".join(TRANSCRIPTS["tool"])
    write("event_stream_decode", "raw_truncated", b"\x00\x00" + stream[:-7])
    corrupted = bytearray(stream)
    corrupted[40] ^= 0x20
    write("event_stream_decode", "raw_corrupted", b"\x00\x00" + bytes(corrupted))
    for mode in (1, 2):
        for i in range(6):
            write("event_stream_decode", f"mode{mode}_{i}", bytes([mode]) + rng.randbytes(rng.randint(16, 300)))


def translate_seeds():
    fixtures = os.path.join(REPO, "fixtures", "claude-code")
    for name in sorted(os.listdir(fixtures)):
        with open(os.path.join(fixtures, name)) as f:
            body = json.load(f)["body"]
        write("translate_request", f"claude_code_{name}", json.dumps(body).encode())
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    bodies = {
        "tool_loop": {
            "model": "claude-sonnet-4-5", "max_tokens": 100,
            "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
            "messages": [
                {"role": "user", "content": "list files"},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a b c"}]},
            ],
        },
        "orphans_and_images": {
            "model": "claude-opus-4-8", "max_tokens": 1, "system": [{"type": "text", "text": "be brief"}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "tool_result", "tool_use_id": "toolu_x", "content": [{"type": "text", "text": ""}], "is_error": True},
                ]},
                {"role": "system", "content": "mid-conversation system"},
                {"role": "assistant", "content": "prefill"},
            ],
        },
        "empty_everything": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": []}, {"role": "user", "content": ""}], "tools": []},
    }
    for name, body in bodies.items():
        write("translate_request", f"json_{name}", json.dumps(body).encode())
    for i in range(8):
        write("translate_request", f"structured_{i}", bytes([rng.randint(0x80, 0xff)]) + rng.randbytes(rng.randint(32, 600)))


def stream_seeds():
    for i in range(12):
        write("stream_translator", f"structured_{i}", rng.randbytes(rng.randint(16, 500)))
    # the readable JSON form (fuzz/src/stream/scenario.rs)
    scenarios = {
        "thinking_split": {"thinking": True, "end": "finish", "events": [
            {"text": "<thin"}, {"text": "king>plan"}, {"text": "</thi"}, {"text": "nking>answer"},
            {"metering": 0.5}, {"context_usage": 2.5}]},
        "tool_fragments": {"end": "finish", "events": [
            {"text": "Let me look."}, {"tool": ["tooluse_1", "Read", "{\"path\":", False]},
            {"tool": ["tooluse_2", "Bash", "{}", True]}, {"tool": ["tooluse_1", "", "\"a\"}", True]},
            {"tokens": [10, 5, 2, None]}]},
        "cut_off_tool": {"end": "output_limit", "events": [
            {"tool": ["tooluse_1", "Write", "{\"content\": \"abc", False]}]},
        "reasoning_then_fail": {"thinking": True, "end": "fail", "events": [
            {"reasoning": ["why", "sig"]}, {"text": "x"}], "after": [{"text": "late"}]},
        "invalid_state": {"end": "finish", "events": [{"text": "a"}, {"invalid_state": "INVALID_TASK_ASSIST_PLAN"}]},
    }
    for name, scenario in scenarios.items():
        write("stream_translator", f"json_{name}", json.dumps(scenario).encode())


decode_seeds()
translate_seeds()
stream_seeds()
