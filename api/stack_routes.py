"""POST /system/stack/parse (our extension): a faas-cli stack.yml → the body of /system/apply.

A browser cannot read YAML without a library, so the dashboard sends the stack here and
gets back `{functions: [FunctionDeployment…], warnings: […]}`, ready for
`POST /system/apply`. It reads only: nothing is planned or appended. The reader is
api/stack.py's, so the rules (substitution, validation, messages) are faas-cli's and ours.

The body is the YAML text itself, or JSON `{"stack": "<yaml>", "env": {"VAR": "value"}}`
to give values for `${VAR}`. The gateway's own environment is never used for
substitution (it holds the gateway's secrets): an unset `${VAR}` is empty and
`${VAR:-default}` takes its default. `environment_file` is refused: it names files on the
client's machine, which the gateway cannot (and must not) read.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.errors import ApiError, bad_request
from api.stack import StackError, load_stack, substitute

BODY_LIMIT = 1024 * 1024
FILE_NAME = "stack.yml"


def _mentions_environment_file(text: str) -> bool:
    """Whether any mapping of the (substituted) document has an `environment_file` key,
    anchors and merge keys included. Unparsable text is left to the reader to report."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return False
    seen: set[int] = set()
    todo: list[yaml.Node] = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == "environment_file":
                    return True
                todo.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return False


def parse_stack(text: str, env: dict[str, str]) -> dict[str, Any]:
    """The apply body of a stack file's text; StackError lists every problem."""
    if _mentions_environment_file(substitute(text, env)):
        raise StackError([f"{FILE_NAME}: environment_file: not available when the stack is "
                          "sent to the gateway (it cannot read files on your machine); put "
                          "the variables under environment"])
    with tempfile.TemporaryDirectory(prefix="stack-") as folder:
        path = Path(folder) / FILE_NAME
        path.write_text(text, encoding="utf-8")
        try:
            stack = load_stack([path], env)
        except StackError as err:
            raise StackError([e.replace(str(path), FILE_NAME) for e in err.errors]) from None
        return {"functions": stack.deployments(),
                "warnings": [w.replace(str(path), FILE_NAME) for w in stack.warnings]}


def _request_parts(raw: bytes, content_type: str) -> tuple[str, dict[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("stack: expected UTF-8 text") from None
    if not content_type.startswith("application/json"):
        return text, {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as err:
        raise bad_request(f"request body: invalid JSON: {err}") from None
    if not isinstance(body, dict) or not isinstance(body.get("stack"), str):
        raise bad_request('stack: expected {"stack": "<stack.yml text>", "env": {...}}')
    env = body.get("env") or {}
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise bad_request("env: expected an object of strings")
    return body["stack"], env


async def parse(request: Request) -> Response:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > BODY_LIMIT:
            raise ApiError(413, f"stack: larger than {BODY_LIMIT} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    content_type = request.headers.get("content-type", "").lower()
    text, env = _request_parts(raw, content_type)
    if not text.strip():
        raise bad_request("stack: the stack file is empty")
    try:
        result = await run_in_threadpool(parse_stack, text, env)
    except StackError as err:
        raise bad_request("\n".join(err.errors)) from None
    return JSONResponse(result)
