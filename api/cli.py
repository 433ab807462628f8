"""`docker-faas`: the command line. `serve` runs the gateway and the controller in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

import uvicorn

from api.app import create_app, create_metrics_app
from api.proxy import quiet_broken_answers
from api.settings import ConfigError, from_env, with_password
from controller.docker import DockerAdapter
from events.sqlite import SQLiteEventStore


class _Server(uvicorn.Server):
    """Two servers share one process, so signals are handled once, by us, for both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve() -> int:
    try:
        settings = with_password(from_env())
    except ConfigError as err:
        print(f"docker-faas: configuration error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("uvicorn.error").addFilter(quiet_broken_answers)
    store = SQLiteEventStore(settings.state_db_path)
    app = create_app(settings, store=store, docker=DockerAdapter(settings.docker_host))
    common: dict[str, object] = {
        "host": settings.bind, "log_level": settings.log_level.lower(),
        "loop": "uvloop", "http": "httptools", "access_log": False,
        "timeout_keep_alive": int(settings.read_timeout),
    }
    servers = [
        _Server(uvicorn.Config(app, port=settings.gateway_port, lifespan="on", **common)),  # type: ignore[arg-type]
        _Server(uvicorn.Config(create_metrics_app(app.gateway), port=settings.metrics_port,
                               lifespan="off", **common)),  # type: ignore[arg-type]
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    logging.getLogger("docker_faas").info(
        "gateway on :%d, metrics on :%d, state %s, instance %s",
        settings.gateway_port, settings.metrics_port, settings.state_db_path, settings.instance,
    )
    try:
        await asyncio.gather(*(s.serve() for s in servers))
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docker-faas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the gateway (API, proxy, metrics) and the controller")
    sub.add_parser("password", help="print the gateway password (generated on first use)")
    args = parser.parse_args(argv)
    if args.command == "password":
        try:
            print(with_password(from_env()).auth_password)
        except ConfigError as err:
            print(f"docker-faas: configuration error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "serve":
        import uvloop
        return uvloop.run(_serve())
    return 2


if __name__ == "__main__":
    sys.exit(main())
