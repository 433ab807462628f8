"""The command-line client's side of the wire: which gateway, which credentials, and HTTP.

Discovery follows faas-cli where faas-cli has a rule (docs/cli.md):

* gateway: `--gateway`, else (apply/diff) the stack's `provider.gateway` when it is not
  the default, else `OPENFAAS_URL`, else http://127.0.0.1:8080; then normalised as faas-cli's
  getGatewayURL does (lower case, no trailing `/`, `http://` added when no scheme is given);
* credentials: `--password-stdin` (with `--username`), else `OPENFAAS_PASSWORD` (with
  `OPENFAAS_USERNAME`), else the entry for that exact gateway URL in the config file
  `faas-cli login` writes: `$OPENFAAS_CONFIG/config.yml`, or `./.openfaas/config.yml` when
  `CI` is `true`/`1`, else `~/.openfaas/config.yml`; `auths:` entries of `gateway`, `auth`
  and `token`, where `auth: basic` means `token` is base64 of `user:password` and any other
  type is sent as a bearer token.

Every failure becomes a `CliError` carrying one line (or one line per problem) for stderr.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import yaml

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
URL_ENV = "OPENFAAS_URL"
CONFIG_ENV = "OPENFAAS_CONFIG"
USERNAME_ENV = "OPENFAAS_USERNAME"
PASSWORD_ENV = "OPENFAAS_PASSWORD"
CONFIG_FILE = "config.yml"
DEFAULT_USER = "admin"


class CliError(Exception):
    """A failure to report as `docker-faas: <line>` on stderr, exiting with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def version() -> str:
    try:
        return metadata.version("docker-faas")
    except metadata.PackageNotFoundError:  # running from a tree that was never installed
        return "0.0.0"


def user_agent() -> str:
    return f"docker-faas-cli/{version()}"


# --- the gateway -----------------------------------------------------------------------


def normalize_gateway(url: str) -> str:
    """faas-cli's form of a gateway URL: trimmed, lower case, no trailing slash, a scheme."""
    url = url.strip().rstrip("/").lower()
    if not url.startswith("http"):
        url = "http://" + url
    return url


def choose_gateway(
    flag: str | None, env: Mapping[str, str], stack_gateway: str | None = None
) -> tuple[str, str]:
    """(normalised gateway URL, where it came from), in faas-cli's order (getGatewayURL):
    the flag, then the stack's `provider.gateway` unless it names the default, then
    OPENFAAS_URL, then the default."""
    if stack_gateway and normalize_gateway(stack_gateway) == DEFAULT_GATEWAY:
        stack_gateway = None
    for value, source in (
        (flag, "--gateway"),
        (stack_gateway, "the stack's provider.gateway"),
        (env.get(URL_ENV), URL_ENV),
    ):
        if value and value.strip():
            return normalize_gateway(value), source
    return DEFAULT_GATEWAY, "the default"


# --- credentials -----------------------------------------------------------------------


def config_dir(env: Mapping[str, str]) -> Path:
    """Where faas-cli keeps config.yml: OPENFAAS_CONFIG, else ./.openfaas in CI, else
    ~/.openfaas (the home directory from HOME as given)."""
    override = env.get(CONFIG_ENV, "")
    if override:
        return Path(override).expanduser()
    if env.get("CI") in ("true", "1"):
        return Path(".openfaas")
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".openfaas"


def config_path(env: Mapping[str, str]) -> Path:
    return config_dir(env) / CONFIG_FILE


@dataclass(frozen=True)
class Credentials:
    """What to send: basic (username and password), a bearer token, or nothing."""

    username: str = ""
    password: str = ""
    token: str = ""
    source: str = ""  # for messages: where they were found

    def header(self) -> str | None:
        if self.password:
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if self.token:
            return "Bearer " + self.token
        return None


def _config_entries(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as err:
        raise CliError(f"{path}: cannot read the faas-cli config: {err}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else "parse error"
        raise CliError(f"{path}: not valid YAML ({first})") from None
    if doc is None:
        return []
    auths = doc.get("auths") if isinstance(doc, dict) else None
    if auths is None:
        return []
    if not isinstance(auths, list):
        raise CliError(f"{path}: auths: expected a list of gateway entries")
    return [entry for entry in auths if isinstance(entry, dict)]


def config_credentials(gateway: str, env: Mapping[str, str]) -> Credentials | None:
    """The saved login for `gateway` (compared as faas-cli does: the exact URL, then in
    normalised form for hand-written files), or None."""
    path = config_path(env)
    entries = _config_entries(path)
    match = next((e for e in entries if e.get("gateway") == gateway), None)
    if match is None:
        match = next((e for e in entries if isinstance(e.get("gateway"), str)
                      and normalize_gateway(e["gateway"]) == gateway), None)
    if match is None:
        return None
    token = str(match.get("token") or "")
    source = str(path)
    if match.get("auth") == "basic":
        try:
            user, sep, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise CliError(f"{path}: the token saved for {gateway} is not base64 of "
                           "user:password; log in again")
        return Credentials(username=user, password=password, source=source)
    return Credentials(token=token, source=source) if token else None


def find_credentials(
    gateway: str, env: Mapping[str, str], *, username: str | None = None,
    password: str | None = None,
) -> Credentials:
    """Credentials for `gateway`: a password given on stdin, else the OPENFAAS_* variables,
    else the faas-cli config file; none at all when nothing is found."""
    if password:
        return Credentials(username or env.get(USERNAME_ENV) or DEFAULT_USER, password,
                           source="--password-stdin")
    if env.get(PASSWORD_ENV):
        return Credentials(username or env.get(USERNAME_ENV) or DEFAULT_USER,
                           env[PASSWORD_ENV], source=PASSWORD_ENV)
    saved = config_credentials(gateway, env)
    if saved is not None and username and saved.password:
        saved = Credentials(username, saved.password, source=saved.source)
    return saved or Credentials()


# --- HTTP ------------------------------------------------------------------------------


def _body_text(response: httpx.Response) -> str:
    try:
        text = response.text.strip()
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    return text


class GatewayClient:
    """An httpx client for one gateway that turns every failure into a CliError."""

    def __init__(
        self, url: str, credentials: Credentials, *, verify: bool = True,
        timeout: float = 30.0, transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.timeout = timeout
        headers = {"User-Agent": user_agent()}
        header = credentials.header()
        if header:
            headers["Authorization"] = header
        self.http = httpx.Client(base_url=url, headers=headers, verify=verify,
                                 timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- errors --

    def _unreachable(self, err: httpx.HTTPError) -> CliError:
        if isinstance(err, httpx.TimeoutException):
            return CliError(f"the gateway at {self.url} did not answer within "
                            f"{self.timeout:g}s ({type(err).__name__})")
        reason = str(err) or type(err).__name__
        if isinstance(err, httpx.ConnectError):
            return CliError(f"cannot reach the gateway at {self.url}: {reason} "
                            f"(set --gateway or {URL_ENV})")
        return CliError(f"request to the gateway at {self.url} failed: {reason}")

    def _unauthorized(self) -> CliError:
        if self.credentials.header() is None:
            told = "no credentials were found for it"
        else:
            told = f"it refused the credentials from {self.credentials.source}"
        return CliError(
            f"unauthorized (401) at {self.url}: {told}; log in with "
            f"`faas-cli login -g {self.url} -u admin --password-stdin`, or set "
            f"{USERNAME_ENV}/{PASSWORD_ENV} (`docker-faas password` prints the password on "
            "the gateway's host)"
        )

    def check(self, method: str, path: str, response: httpx.Response) -> None:
        status = response.status_code
        if status == 401:
            raise self._unauthorized()
        if status >= 400:
            message = _body_text(response) or response.reason_phrase
            lines = message.splitlines() or [""]
            first = f"{method} {path}: {status} {response.reason_phrase}: {lines[0]}"
            raise CliError("\n".join([first, *lines[1:]]))

    # -- requests --

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
        json: Any = None, headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send; return the response when it succeeded or its status is in `allow`."""
        try:
            response = self.http.request(method, path, params=params, json=json,
                                         headers=headers)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        if response.status_code not in allow:
            self.check(method, path, response)
        return response

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        try:
            return response.json()
        except ValueError:
            raise CliError(f"GET {path}: the gateway answered {response.status_code} "
                           "with a body that is not JSON") from None

    @contextlib.contextmanager
    def stream(self, path: str, params: Mapping[str, Any]) -> Iterator[httpx.Response]:
        """A streamed GET with no read timeout (for logs that follow)."""
        timeout = httpx.Timeout(self.timeout, read=None)
        try:
            with self.http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    self.check("GET", path, response)
                yield response
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None


def environment() -> dict[str, str]:
    return dict(os.environ)


__all__ = [
    "CliError", "Credentials", "DEFAULT_GATEWAY", "GatewayClient", "choose_gateway",
    "config_credentials", "config_dir", "config_path", "find_credentials",
    "normalize_gateway", "user_agent", "version",
]
