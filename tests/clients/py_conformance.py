#!/usr/bin/env python3
"""Conformance of the official Anthropic Python SDK against qgate.

Every check talks to a running gateway through the unmodified SDK and asserts what a real
client relies on: the message object, the stream helpers (text, tool input assembled from
`input_json_delta`, thinking), long tool names, count_tokens, models.list, and which
exception class each error status becomes (with `retry-after` honoured).

Gateways come from the environment (see README.md):
  QGATE_BASE_URL        main gateway (required)
  QGATE_API_KEY         a key the gateway accepts; when set, a wrong key must give 401
  QGATE_THROTTLE_URL    1-account gateway reserved for the 429 check (its account ends throttled)
  QGATE_OVERLOAD_URL    gateway for the 529 check (default: QGATE_BASE_URL)
  QGATE_MIDSTREAM_URL   gateway for the mid-stream error check (default: QGATE_BASE_URL)
  QGATE_SMALL_BODY_URL  gateway started with a small MAX_BODY_BYTES, for the 413 check
  QGATE_STRICT=1        a check whose gateway is not configured fails instead of skipping

Prints one line per check and then `N passed, M failed` (`, K skipped`); exits 1 on any
failure.
"""

import hashlib
import json
import os
import re
import sys
import threading
import time
import traceback

import anthropic
import httpx2

MODEL = "claude-sonnet-4-6"
API_KEY = os.environ.get("QGATE_API_KEY") or "qgate-conformance"
STRICT = os.environ.get("QGATE_STRICT") == "1"
TOOL_INPUT = {"path": "/tmp/x", "n": 3}
# Over Amazon Q's 64-character limit, so the gateway must shorten it upstream and map it back.
LONG_TOOL = "mcp__qgate_conformance_server__read_a_file_from_the_workspace_with_a_long_name"
PROMPT_TOO_LONG = re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum")


class Skip(Exception):
    """The gateway this check needs is not configured."""


def base(var, fallback=None):
    url = os.environ.get(var) or (os.environ.get(fallback) if fallback else None)
    if not url:
        raise Skip(f"{var} is not set")
    return url


def client(var="QGATE_BASE_URL", fallback=None, **kw):
    kw.setdefault("api_key", API_KEY)
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 60)
    return anthropic.Anthropic(base_url=base(var, fallback), **kw)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def upstream_tool_name(name):
    """The name the upstream model sees for a client tool name.

    The simulator plays the model, so its `[[sim tool=...]]` script must name the tool as
    the model sees it: the gateway's deterministic rule (qgate_translate::tool_names) is
    the sanitised prefix, `_`, and the first 8 hex digits of the name's SHA-256.
    """
    if len(name) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", name):
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", name)[: 64 - 1 - len(digest)]
    return f"{prefix}_{digest}"


def tool_spec(name):
    return {
        "name": name,
        "description": "Reads part of a file.",
        "input_schema": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["path"],
        },
    }


def tool_prompt(upstream_name):
    return f"Read it. [[sim tool={upstream_name} input={json.dumps(TOOL_INPUT)}]]"


# --- checks ------------------------------------------------------------------------------


def create_text():
    msg = client().messages.create(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "Hello there [[sim words=7]]"}],
    )
    check(msg.id.startswith("msg_"), f"id {msg.id!r}")
    check(msg.type == "message" and msg.role == "assistant", f"{msg.type} {msg.role}")
    check(msg.model == MODEL, f"model echoed: {msg.model!r}")
    check(msg.content[0].type == "text", f"first block {msg.content[0].type}")
    check(len(msg.content[0].text.split()) == 7, f"7 words: {msg.content[0].text!r}")
    check(msg.stop_reason == "end_turn", f"stop_reason {msg.stop_reason!r}")
    check(msg.usage.input_tokens > 0, f"input_tokens {msg.usage.input_tokens}")
    check(msg.usage.output_tokens > 0, f"output_tokens {msg.usage.output_tokens}")
    check(bool(msg._request_id), f"_request_id {msg._request_id!r}")


def stream_text():
    with client().messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "Stream please [[sim words=12 chunk=3]]"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.request_id
    check(len(text.split()) == 12, f"12 streamed words: {text!r}")
    check([b.type for b in final.content] == ["text"], f"blocks {final.content}")
    check(final.content[0].text == text, "text_stream equals the final text")
    check(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason!r}")
    check(final.usage.input_tokens > 0 and final.usage.output_tokens > 0, f"{final.usage}")
    check(bool(request_id), "stream.request_id")


def stream_tool(name=LONG_TOOL):
    """Streams a scripted tool call and returns the final message."""
    fragments = []
    with client().messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=[tool_spec(name)],
        messages=[{"role": "user", "content": tool_prompt(upstream_tool_name(name))}],
    ) as stream:
        for event in stream:
            if event.type == "input_json":
                fragments.append(event.partial_json)
        final = stream.get_final_message()
    check(len(fragments) >= 1, "input_json events were streamed")
    check(json.loads("".join(fragments)) == TOOL_INPUT, f"fragments {fragments}")
    uses = [b for b in final.content if b.type == "tool_use"]
    check(len(uses) == 1, f"one tool_use block: {final.content}")
    check(uses[0].name == name, f"tool name {uses[0].name!r}")
    check(uses[0].input == TOOL_INPUT, f"input {uses[0].input!r}")
    check(bool(uses[0].id), "tool_use id")
    check(final.stop_reason == "tool_use", f"stop_reason {final.stop_reason!r}")
    return final


def stream_tool_use():
    stream_tool("read_file")


def long_tool_name_round_trip():
    name = LONG_TOOL
    check(len(name) > 64, "the name is over the upstream limit")
    first = stream_tool(name)
    use = next(b for b in first.content if b.type == "tool_use")
    # Send the call back as a client would: the SDK's own dump of the blocks (with its
    # null-valued extra fields), then a tool_result.
    second = client().messages.create(
        model=MODEL,
        max_tokens=256,
        tools=[tool_spec(name)],
        messages=[
            {"role": "user", "content": tool_prompt(upstream_tool_name(name))},
            {"role": "assistant", "content": [b.model_dump() for b in first.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "qgate-long-ok"}
                ],
            },
        ],
    )
    text = "".join(b.text for b in second.content if b.type == "text")
    check("qgate-long-ok" in text, f"the reply quotes the tool result: {text!r}")
    check(second.stop_reason == "end_turn", f"stop_reason {second.stop_reason!r}")


def stream_thinking():
    thinking_deltas = 0
    with client().messages.stream(
        model=MODEL,
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "Think first, then answer."}],
    ) as stream:
        for event in stream:
            if event.type == "thinking":
                thinking_deltas += 1
        final = stream.get_final_message()
    types = [b.type for b in final.content]
    check(types[:1] == ["thinking"], f"a thinking block comes first: {types}")
    check("text" in types, f"a text block follows: {types}")
    check(final.content[0].thinking.strip() != "", "thinking text is not empty")
    check(thinking_deltas >= 1, "thinking deltas were streamed")
    for block in final.content:
        if block.type == "text":
            check("thinking>" not in block.text, f"tag text leaked: {block.text!r}")


def count_tokens():
    c = client()
    small = c.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "How many tokens is this?"}]
    )
    large = c.messages.count_tokens(
        model=MODEL,
        messages=[{"role": "user", "content": "How many tokens is this? " * 200}],
    )
    check(isinstance(small.input_tokens, int) and small.input_tokens > 0, f"{small}")
    check(large.input_tokens > small.input_tokens, f"{large.input_tokens} > {small.input_tokens}")


def models_list():
    c = client()
    everything = c.models.list(limit=100)
    ids = [m.id for m in everything.data]
    check(len(ids) > 0, "the list is not empty")
    for m in everything.data:
        check(m.type == "model" and m.display_name and m.created_at, f"model shape {m}")
    check(everything.first_id == ids[0] and everything.last_id == ids[-1], "first_id/last_id")
    for wanted in ("claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001"):
        check(wanted in ids, f"{wanted} (a Claude Code model) is listed: {ids}")
    check(c.models.retrieve("claude-opus-4-8").id == "claude-opus-4-8", "models.retrieve")
    page = c.models.list(limit=2)
    check(len(page.data) <= 2, f"limit=2 honoured: got {len(page.data)} models")
    check(page.has_more == (len(ids) > 2), f"has_more {page.has_more}")
    walked = []
    for m in c.models.list(limit=2):  # the SDK follows has_more / last_id
        walked.append(m.id)
        if len(walked) > 2 * len(ids):
            break  # a gateway that ignores after_id would page forever
    check(walked == ids, f"auto-pagination visits every model once: {walked}")


def error_missing_max_tokens():
    try:
        client().post(
            "/v1/messages",
            body={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            cast_to=httpx2.Response,
        )
    except anthropic.BadRequestError as e:
        check(e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error", f"{e.body}")
        check(bool(e.response.headers.get("request-id")), "request-id on an error")
        return
    raise AssertionError("no BadRequestError")


def error_prompt_too_long():
    # Over the upstream's 600 000-character limit for one message, under the body limit.
    huge = "lorem ipsum dolor sit amet " * 25_000
    try:
        client().messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": huge}]
        )
    except anthropic.BadRequestError as e:
        message = e.body["error"]["message"]
        match = PROMPT_TOO_LONG.fullmatch(message)
        check(match is not None, f"exact wording: {message!r}")
        check(int(match[1]) > int(match[2]), f"N > M in {message!r}")
        check(e.body["error"]["type"] == "invalid_request_error", f"{e.body}")
        return
    raise AssertionError("no BadRequestError")


def error_wrong_key():
    if not os.environ.get("QGATE_API_KEY"):
        raise Skip("QGATE_API_KEY is not set (the gateway accepts any key)")
    try:
        client(api_key="sk-wrong-key").messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.AuthenticationError as e:
        check(e.status_code == 401 and e.body["error"]["type"] == "authentication_error", f"{e.body}")
        check("sk-wrong-key" not in json.dumps(e.body), "the key is not echoed")
        return
    raise AssertionError("no AuthenticationError")


def error_unknown_model():
    try:
        client().messages.create(
            model="gpt-4o", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.NotFoundError as e:
        check(e.status_code == 404 and e.body["error"]["type"] == "not_found_error", f"{e.body}")
        return
    raise AssertionError("no NotFoundError")


def error_body_too_large():
    c = client("QGATE_SMALL_BODY_URL")
    try:
        c.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "x" * 20_000}]
        )
    except anthropic.ContentTooLargeError as e:
        check(e.status_code == 413 and e.body["error"]["type"] == "request_too_large", f"{e.body}")
        return
    raise AssertionError("no ContentTooLargeError")


def error_overloaded():
    try:
        client("QGATE_OVERLOAD_URL", "QGATE_BASE_URL").messages.create(
            model=MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": "hi [[sim error=unavailable]]"}],
        )
    except anthropic.OverloadedError as e:
        check(isinstance(e, anthropic.InternalServerError), "OverloadedError is a 5xx class")
        check(e.status_code == 529 and e.body["error"]["type"] == "overloaded_error", f"{e.body}")
        check(e.response.headers.get("retry-after") is not None, "retry-after on a 529")
        return
    raise AssertionError("no OverloadedError")


def error_midstream():
    received = []
    try:
        with client("QGATE_MIDSTREAM_URL", "QGATE_BASE_URL").messages.stream(
            model=MODEL,
            max_tokens=256,
            messages=[{"role": "user", "content": "go [[sim error=midstream_exception]]"}],
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    except anthropic.APIStatusError as e:
        check(e.status_code == 200, f"raised from inside a 200 stream: {e.status_code}")
        check(e.body["type"] == "error" and e.body["error"]["type"], f"error body {e.body}")
        check("".join(received).strip() != "", "text before the error reached the client")
        return
    raise AssertionError(f"the stream ended without an error after {received!r}")


def error_throttled_honours_retry_after():
    attempts = []  # (monotonic send time, status, retry-after)
    started = {}

    def on_request(request):
        started[id(request)] = time.monotonic()

    def on_response(response):
        sent = started.get(id(response.request), time.monotonic())
        attempts.append((sent, response.status_code, response.headers.get("retry-after")))

    http = anthropic.DefaultHttpxClient(
        event_hooks={"request": [on_request], "response": [on_response]}
    )
    c = client("QGATE_THROTTLE_URL", max_retries=1, http_client=http)
    try:
        c.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi [[sim error=throttle]]"}]
        )
    except anthropic.RateLimitError as e:
        check(e.body["error"]["type"] == "rate_limit_error", f"{e.body}")
        check(len(attempts) == 2, f"two attempts with max_retries=1: {attempts}")
        (t0, s0, ra), (t1, _, _) = attempts
        check(s0 == 429 and ra is not None, f"first answer 429 with retry-after: {attempts}")
        waited = t1 - t0
        check(waited >= 0.9 * float(ra), f"waited {waited:.2f}s for retry-after {ra}")
        print(f"  (429: retry-after {ra}s, the SDK waited {waited:.1f}s)")
        return
    raise AssertionError("no RateLimitError")


CHECKS = [
    create_text,
    stream_text,
    stream_tool_use,
    long_tool_name_round_trip,
    stream_thinking,
    count_tokens,
    models_list,
    error_missing_max_tokens,
    error_prompt_too_long,
    error_wrong_key,
    error_unknown_model,
    error_body_too_large,
    error_overloaded,
    error_midstream,
]
# Waits out a retry-after (tens of seconds), so it runs beside the others.
SLOW_CHECKS = [error_throttled_honours_retry_after]


def run(fn, results):
    try:
        fn()
        results[fn.__name__] = ("pass", "")
    except Skip as e:
        results[fn.__name__] = ("fail" if STRICT else "skip", str(e))
    except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the suite
        detail = f"{type(e).__name__}: {e}"
        if not isinstance(e, AssertionError):
            detail += "\n" + traceback.format_exc()
        results[fn.__name__] = ("fail", detail)


def main():
    print(f"anthropic {anthropic.__version__} against {os.environ.get('QGATE_BASE_URL')}")
    results = {}
    slow = [threading.Thread(target=run, args=(fn, results)) for fn in SLOW_CHECKS]
    for t in slow:
        t.start()
    for fn in CHECKS:
        run(fn, results)
    for t in slow:
        t.join(timeout=120)
    counts = {"pass": 0, "fail": 0, "skip": 0}
    for fn in CHECKS + SLOW_CHECKS:
        status, detail = results.get(fn.__name__, ("fail", "did not finish"))
        counts[status] += 1
        print(f"{status.upper():4} {fn.__name__}{': ' + detail if detail else ''}")
    summary = f"{counts['pass']} passed, {counts['fail']} failed"
    if counts["skip"]:
        summary += f", {counts['skip']} skipped"
    print(summary)
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
