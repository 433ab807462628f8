"""`docker-faas`: the command line.

`serve` runs the gateway and the controller in one process and `password` prints the
gateway's password; apply, diff, events, history, rollback, status and logs are a client of
a running gateway (api/commands.py, api/client.py; docs/cli.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.commands import Context


async def _serve() -> int:
    # imported here: the client commands need none of the server
    import uvicorn

    from api.app import create_app, create_metrics_app
    from api.fastpath import FastServer, Lifespan, Limits
    from api.proxy import quiet_broken_answers
    from api.settings import ConfigError, from_env, with_password
    from controller.docker import DockerAdapter
    from events.sqlite import SQLiteEventStore

    class _Server(uvicorn.Server):
        """Two servers share one process, so signals are handled once, by us, for both."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

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
    # The gateway port is our own protocol server (api/fastpath.py): invocations relayed at
    # the protocol level, everything else through the app as ASGI. Metrics stay on uvicorn.
    gateway = FastServer(app, app.proxy, Limits(
        read_timeout=settings.read_timeout, keep_alive=settings.read_timeout,
        max_body=settings.max_request_body), native=settings.native_relay)
    metrics = _Server(uvicorn.Config(
        create_metrics_app(app.gateway), port=settings.metrics_port, lifespan="off",
        host=settings.bind, log_level=settings.log_level.lower(), loop="uvloop",
        http="httptools", access_log=False,
        timeout_keep_alive=int(settings.read_timeout)))
    lifespan = Lifespan(app, gateway.state)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await lifespan.startup()
        await gateway.start(settings.bind, settings.gateway_port)
        metrics_task = asyncio.create_task(metrics.serve())
        logging.getLogger("docker_faas").info(
            "gateway on :%d, metrics on :%d, state %s, instance %s, invocation parser %s",
            settings.gateway_port, settings.metrics_port, settings.state_db_path,
            settings.instance, gateway.parser_name)
        await stopping.wait()
        await gateway.stop(grace=settings.write_timeout)
        metrics.should_exit = True
        await metrics_task
        await lifespan.shutdown()
    finally:
        store.close()
    return 0


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The client's global options. They are accepted before and after the subcommand; the
    subcommand's copies default to SUPPRESS so they never undo a value given before it."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("gateway options")
    group.add_argument("--gateway", "-g", metavar="URL", default=default(None),
                       help="gateway URL (else $OPENFAAS_URL, the stack's provider.gateway, "
                            "http://127.0.0.1:8080)")
    group.add_argument("--output", "-o", choices=("table", "json"), default=default("table"),
                       help="tables and text (default) or JSON")
    group.add_argument("--tls-no-verify", action="store_true", default=default(False),
                       help="do not verify the gateway's TLS certificate")
    group.add_argument("--username", "-u", metavar="USER", default=default(None),
                       help="user for basic auth (else $OPENFAAS_USERNAME, the saved login, "
                            "admin)")
    group.add_argument("--password-stdin", action="store_true", default=default(False),
                       help="read the password from standard input")


def _namespace(parser: argparse.ArgumentParser, what: str = "the function's namespace") -> None:
    parser.add_argument("--namespace", "-n", metavar="NS", help=f"{what} (default openfaas-fn)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="docker-faas",
        description="docker-faas: an OpenFaaS-compatible FaaS on the Docker engine. `serve` "
                    "runs it; the other commands are a client of a running gateway.",
        epilog="See docs/cli.md for discovery of the gateway and credentials, and exit codes.")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="run the gateway (API, proxy, metrics) and the controller")
    sub.add_parser("password", help="print the gateway password (generated on first use)")

    def client_command(name: str, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        _global_options(command, top=False)
        return command

    for name, help_text in (
        ("apply", "deploy a stack.yml: create, update (and with --prune remove) functions "
                  "in one step, then wait until they are ready"),
        ("diff", "show what apply would change, changing nothing"),
    ):
        command = client_command(name, help_text)
        command.add_argument("--file", "-f", action="append", required=True, metavar="FILE",
                             help="stack file; repeat to merge several, later ones win")
        command.add_argument("--prune", action="store_true",
                             help="remove functions of the stack's namespaces that it does "
                                  "not name")
        _namespace(command, "namespace for functions that name none")
        if name == "apply":
            command.add_argument("--dry-run", action="store_true",
                                 help="show the plan only (same as diff)")
            command.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                                 help="how long to wait for the functions to be ready "
                                      "(default 120; 0: do not wait)")
        else:
            command.add_argument("--detailed-exitcode", action="store_true",
                                 help="exit 2 when there are changes, 0 when there are none")

    events = client_command("events", "the event log: who changed what, and when")
    events.add_argument("--function", metavar="NAME", help="one function's events")
    _namespace(events, "only this namespace's events")
    events.add_argument("--type", action="append", metavar="TYPE",
                        help="event type, e.g. function.updated (repeatable)")
    events.add_argument("--actor", help="only events by this actor (user, autoscaler, ...)")
    events.add_argument("--since", metavar="TIME",
                        help="RFC 3339 time, or a duration ago such as 10m or 1h30m")
    events.add_argument("--until", metavar="TIME", help="RFC 3339 time, or a duration ago")
    events.add_argument("--after", type=int, metavar="POSITION",
                        help="only events after this log position")
    events.add_argument("--correlation-id", metavar="ID",
                        help="only the events of one request or apply")
    events.add_argument("--limit", type=int, metavar="N",
                        help="at most N events (gateway default 100, at most 1000)")
    events.add_argument("--desc", action="store_true", help="newest first")
    events.add_argument("--follow", action="store_true",
                        help="keep printing new events as they are appended (Ctrl-C ends)")

    history = client_command("history", "every version of a function, with what changed")
    history.add_argument("function", metavar="FUNCTION")
    _namespace(history)

    rollback = client_command(
        "rollback", "deploy a function's spec as it was at an earlier version (a new event)")
    rollback.add_argument("function", metavar="FUNCTION")
    rollback.add_argument("--to-version", type=int, required=True, metavar="N",
                          help="the version to go back to (see `docker-faas history`)")
    _namespace(rollback)
    rollback.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS",
                          help="how long to wait for it to be ready (default 120; 0: do not "
                               "wait)")

    status = client_command("status", "functions with their replicas, or one in detail")
    status.add_argument("function", nargs="?", metavar="FUNCTION")
    status.add_argument("--namespace", "-n", metavar="NS",
                        help="only this namespace (default: every namespace; for one "
                             "function, openfaas-fn)")

    logs = client_command("logs", "a function's log lines, every replica merged")
    logs.add_argument("function", metavar="FUNCTION")
    _namespace(logs)
    logs.add_argument("--follow", action="store_true",
                      help="keep printing new lines (until Ctrl-C or the gateway's "
                           "WRITE_TIMEOUT)")
    logs.add_argument("--since", metavar="TIME",
                      help="RFC 3339 time, or a duration ago such as 10m")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    return parser


def run_client(args: argparse.Namespace, ctx: Context) -> int:
    """Run one client command; every failure is one line per problem on stderr."""
    from api.client import CliError
    from api.commands import COMMANDS

    try:
        return COMMANDS[args.command](args, ctx)
    except CliError as err:
        for line in err.message.splitlines() or [""]:
            print(f"docker-faas: {line}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("docker-faas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `docker-faas events | head`
        sys.stderr.close()
        return 0


def _client(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from api.commands import Context

    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=250)  # a pipe or a file: no folding
    return run_client(args, Context(env=dict(os.environ), out=console,
                                    json=args.output == "json"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "password":
        from api.settings import ConfigError, from_env, with_password

        try:
            print(with_password(from_env()).auth_password)
        except ConfigError as err:
            print(f"docker-faas: configuration error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "serve":
        import uvloop
        return uvloop.run(_serve())
    return _client(args)


if __name__ == "__main__":
    sys.exit(main())
