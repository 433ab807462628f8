"""AUTH_USERS_FILE: further users, each recorded as the actor of what they change."""

from __future__ import annotations

import base64

import pytest

from api.auth import check_basic
from api.settings import ConfigError, from_env


def header(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_users_are_read_from_the_file(tmp_path) -> None:
    path = tmp_path / "users"
    path.write_text("# ops team\nalice:a-pass\n\nbob:b:with:colons\n")
    settings = from_env({"AUTH_USERS_FILE": str(path)})
    assert settings.auth_users == (("alice", "a-pass"), ("bob", "b:with:colons"))


@pytest.mark.parametrize(("text", "problem"), [
    ("alice\n", "line 1: expected user:password"),
    ("ok:1\n:nopass-user\n", "line 2: expected user:password"),
    ("alice:\n", "line 1: expected user:password"),
    ("alice:1\nalice:2\n", "line 2: user 'alice' is given twice"),
    ("admin:x\n", "line 1: user 'admin' is given twice"),
])
def test_a_bad_line_is_named(tmp_path, text, problem) -> None:
    path = tmp_path / "users"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        from_env({"AUTH_USERS_FILE": str(path)})


def test_a_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="AUTH_USERS_FILE=.*cannot read it"):
        from_env({"AUTH_USERS_FILE": str(tmp_path / "nope")})


def test_check_basic_knows_every_user_and_nothing_else() -> None:
    users = {"admin": "s3cret", "alice": "a-pass"}
    assert check_basic(header("admin", "s3cret"), users) == "admin"
    assert check_basic(header("alice", "a-pass"), users) == "alice"
    assert check_basic(header("alice", "s3cret"), users) is None
    assert check_basic(header("mallory", "a-pass"), users) is None
    assert check_basic(header("alice", ""), users) is None
    assert check_basic(b"Bearer x", users) is None
