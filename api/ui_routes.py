"""The web dashboard (/ui/) and the read-only helper endpoints it reads.

* `GET /` redirects to `/ui/`; `GET /ui/` is the page and `GET /ui/{file}` its assets, all
  from the `api/ui/` folder that ships with the package (no CDN, nothing fetched from
  elsewhere: the Content-Security-Policy allows this origin only). Assets carry an ETag and
  `Cache-Control: no-cache`, so a reload revalidates with a 304 and transfers nothing.
* `GET /system/function/{name}/metrics`: the last hour of the function's traffic in 10 s
  samples (api/samples.py).
* `GET /system/functions/summary`: per function of a namespace, invocations and 5xx errors
  since the gateway started and over the last hour, and its last change (who, when, what):
  the newest record of its stream, from an index that reads only the records appended
  since the previous request (the first request reads the log once).
* `GET /system/function/{name}/replicas`: the function's containers as the controller sees
  them, with their last health probe.

The page changes things only through the same /system API that faas-cli uses; everything
here reads. /ui/ is behind the same basic authentication as /system/ (api/auth.py).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from api import stack_routes, wire
from api.audit import rfc3339
from api.context import Gateway
from api.errors import ApiError
from api.samples import Samples
from controller.docker import EngineError, EngineUnavailable
from events.codec import encode
from events.store import EventStore

UI_DIR = Path(__file__).with_name("ui")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Content-Security-Policy": CSP,
            "X-Frame-Options": "DENY"}


@attrs.frozen
class Asset:
    body: bytes
    gzipped: bytes  # the same, compressed once (served when the client accepts gzip)
    media: str
    etag: str


@cache
def _asset(name: str) -> Asset | None:
    """One file of api/ui/, read and compressed once; None when absent. Only plain file
    names of that folder are served (no sub-folders, no dot files)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return None
    path = UI_DIR / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    media = _TYPES.get(path.suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Asset(body, gzip.compress(body, 9, mtime=0), media,
                 hashlib.sha256(body).hexdigest()[:20])


def _gzip_ok(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip" and params.replace(" ", "") not in ("q=0", "q=0.0"):
            return True
    return False


def _serve(request: Request, name: str) -> Response:
    asset = _asset(name)
    if asset is None:
        return Response("not found\n", status_code=404, media_type="text/plain")
    zipped = _gzip_ok(request)
    etag = f'"{asset.etag}{"-gz" if zipped else ""}"'  # one per representation
    headers = {**_HEADERS, "ETag": etag, "Vary": "Accept-Encoding"}
    if etag in (t.strip() for t in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    if zipped:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media, headers=headers)
    return Response(asset.body, media_type=asset.media, headers=headers)


async def root(request: Request) -> Response:
    return RedirectResponse("/ui/", status_code=302)


async def index(request: Request) -> Response:
    return _serve(request, "index.html")


async def asset(request: Request) -> Response:
    return _serve(request, request.path_params["file"])


# --- read-only helpers ---------------------------------------------------------------


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _samples(request: Request) -> Samples:
    samples: Samples = request.app.state.samples
    return samples


def _function(request: Request) -> tuple[Gateway, str, str]:
    """The gateway, namespace and name of a /system/function/{name}/… request; 404 when
    the function is not deployed, 400 for a namespace that does not exist."""
    gw = _gateway(request)
    name = wire.check_name(request.path_params["name"], "name")
    namespace = wire.namespace_of(None, request.query_params.get("namespace"))
    if gw.desired.get(namespace, name) is None:
        if not gw.desired.has_namespace(namespace):
            raise ApiError(400, f"namespace: {namespace!r} does not exist")
        raise ApiError(404, f"function {name}.{namespace} not found")
    return gw, namespace, name


async def function_metrics(request: Request) -> Response:
    _, namespace, name = _function(request)
    samples = _samples(request)
    fn = f"{name}.{namespace}"
    totals = samples.summary([fn])[fn]
    return JSONResponse({"name": name, "namespace": namespace,
                         "invocations": totals["invocations"], "errors": totals["errors"],
                         "interval": samples.interval, "samples": samples.series(fn)})


@attrs.define
class LastChanges:
    """The newest record of each function's own stream (`function/<ns>/<name>`: deploys,
    updates, scaling, removal; not the controller's outcomes), read incrementally: each
    look reads only what was appended since the one before, at most `budget` records."""

    seen: int = 0
    last: dict[str, dict[str, Any]] = attrs.Factory(dict)
    page: int = 5000
    budget: int = 50_000

    def update(self, store: EventStore) -> None:
        read = 0
        while read < self.budget:
            records = store.read_all(after=self.seen, limit=self.page)
            for record in records:
                if record.stream.startswith("function/"):
                    self.last[record.stream] = {
                        "actor": record.actor, "time": rfc3339(record.time),
                        "type": encode(record.event)[0], "version": record.version,
                        "position": record.position}
            if records:
                self.seen = records[-1].position
            read += len(records)
            if len(records) < self.page:
                return


def _last_changes(request: Request) -> LastChanges:
    index: LastChanges | None = getattr(request.app.state, "last_changes", None)
    if index is None:
        index = request.app.state.last_changes = LastChanges()
    return index


async def functions_summary(request: Request) -> Response:
    gw = _gateway(request)
    namespace = wire.namespace_of(None, request.query_params.get("namespace"))
    if not gw.desired.has_namespace(namespace):
        raise ApiError(400, f"namespace: {namespace!r} does not exist")
    names = [state.spec.name for state in gw.desired.in_namespace(namespace)]
    traffic = _samples(request).summary(f"{n}.{namespace}" for n in names)
    changes = _last_changes(request)
    changes.update(gw.store)
    return JSONResponse([
        {"name": n, "namespace": namespace, **traffic[f"{n}.{namespace}"],
         "lastChange": changes.last.get(f"function/{namespace}/{n}")}
        for n in names])


def _created(epoch: int) -> str | None:
    if epoch <= 0:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def function_replicas(request: Request) -> Response:
    gw, namespace, name = _function(request)
    controller = gw.controller
    if controller is None:  # an API without an engine (tests): nothing runs
        return JSONResponse([])
    key = (namespace, name)
    try:
        observed = await controller.observe(key)
    except (EngineUnavailable, EngineError) as err:
        raise ApiError(503, f"the Docker engine did not answer: {err}") from None
    target = controller.target(key)
    out: list[dict[str, Any]] = []
    for replica in sorted(controller.health.annotate(observed),
                          key=lambda r: (r.replica, r.created, r.id)):
        out.append({
            "instance": replica.id[:12],
            "replica": replica.replica,
            "state": replica.state,
            "healthy": replica.live and replica.healthy,
            "current": target is not None and replica.spec_hash == target.spec_hash,
            "created": _created(replica.created),
        })
    return JSONResponse(out)


UI_ROUTES = [
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/ui/", index, methods=["GET", "HEAD"]),
    Route("/ui/{file}", asset, methods=["GET", "HEAD"]),
    Route("/system/functions/summary", functions_summary, methods=["GET"]),
    Route("/system/function/{name}/metrics", function_metrics, methods=["GET"]),
    Route("/system/function/{name}/replicas", function_replicas, methods=["GET"]),
    Route("/system/stack/parse", stack_routes.parse, methods=["POST"]),
]
