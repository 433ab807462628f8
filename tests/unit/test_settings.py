"""Configuration from the environment: defaults, bad values named, the kept password."""

from __future__ import annotations

import stat

import pytest

from api.settings import ConfigError, from_env, parse_duration, with_password


def test_defaults():
    s = from_env({})
    assert (s.gateway_port, s.metrics_port, s.functions_network) == (8080, 8082, "docker-faas-net")
    assert s.auth_enabled and s.auth_user == "admin" and s.default_replicas == 1
    assert s.read_timeout == s.write_timeout == s.exec_timeout == 60.0


@pytest.mark.parametrize("text,seconds", [
    ("60", 60), ("60s", 60), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("2.5s", 2.5),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("env,name", [
    ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT"),
    ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
    ({"METRICS_PORT": "8080"}, "METRICS_PORT"),
    ({"AUTH_ENABLED": "maybe"}, "AUTH_ENABLED"),
    ({"READ_TIMEOUT": "soon"}, "READ_TIMEOUT"),
    ({"EXEC_TIMEOUT": "0s"}, "EXEC_TIMEOUT"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ({"DEFAULT_REPLICAS": "-1"}, "DEFAULT_REPLICAS"),
    ({"MAX_REPLICAS": "3", "DEFAULT_REPLICAS": "4"}, "DEFAULT_REPLICAS"),
    ({"FUNCTIONS_NETWORK": "Bad Net"}, "FUNCTIONS_NETWORK"),
    ({"DOCKER_FAAS_INSTANCE": "prod\n"}, "DOCKER_FAAS_INSTANCE"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        from_env(env)


def test_generated_password_is_kept_with_mode_0600(tmp_path):
    settings = from_env({"STATE_DB_PATH": str(tmp_path / "s" / "log.db")})
    first = with_password(settings)
    path = tmp_path / "s" / "basic-auth-password"
    assert len(first.auth_password) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert with_password(settings).auth_password == first.auth_password
    given = from_env({"STATE_DB_PATH": str(tmp_path / "s" / "log.db"), "AUTH_PASSWORD": "pw"})
    assert with_password(given).auth_password == "pw"


def test_serve_refuses_bad_config(monkeypatch, capsys):
    from api.cli import main
    monkeypatch.setenv("GATEWAY_PORT", "nope")
    assert main(["password"]) == 2
    assert "GATEWAY_PORT" in capsys.readouterr().err


def test_async_settings_defaults_and_bad_values():
    s = from_env({})
    assert (s.async_workers, s.async_concurrency, s.async_max_attempts) == (8, 4, 10)
    assert s.async_body_limit == 16 * 2**20 and s.async_lease == 10.0
    s = from_env({"ASYNC_WORKERS": "2", "ASYNC_BODY_LIMIT": "1024", "ASYNC_LEASE": "2s"})
    assert (s.async_workers, s.async_body_limit, s.async_lease) == (2, 1024, 2.0)
    for name, raw in [("ASYNC_WORKERS", "0"), ("ASYNC_CONCURRENCY", "many"),
                      ("ASYNC_MAX_ATTEMPTS", "0"), ("ASYNC_BODY_LIMIT", "-1"),
                      ("ASYNC_LEASE", "0s")]:
        with pytest.raises(ConfigError, match=name):
            from_env({name: raw})


def test_autoscaler_settings():
    s = from_env({})
    assert (s.autoscale_enabled, s.autoscale_interval) == (True, 1.0)
    s = from_env({"AUTOSCALE_ENABLED": "false", "AUTOSCALE_INTERVAL": "250ms"})
    assert (s.autoscale_enabled, s.autoscale_interval) == (False, 0.25)
    for env in ({"AUTOSCALE_ENABLED": "sometimes"}, {"AUTOSCALE_INTERVAL": "0s"},
                {"AUTOSCALE_INTERVAL": "often"}):
        with pytest.raises(ConfigError, match=next(iter(env))):
            from_env(env)


def test_password_from_a_file_wins_over_the_kept_one(tmp_path):
    """AUTH_PASSWORD_FILE (a compose secret): the file's text less surrounding white space;
    no password is generated or kept beside the state."""
    secret = tmp_path / "basic-auth-password"
    secret.write_text("  from-a-file\n")
    env = {"STATE_DB_PATH": str(tmp_path / "s" / "log.db"), "AUTH_PASSWORD_FILE": str(secret)}
    settings = with_password(from_env(env))
    assert settings.auth_password == "from-a-file"
    assert not (tmp_path / "s" / "basic-auth-password").exists()


@pytest.mark.parametrize("content,message", [
    (None, "cannot read it"), ("\n  \n", "empty"), (b"\xff\xfe", "cannot read it"),
])
def test_password_file_problems_name_the_variable(tmp_path, content, message):
    secret = tmp_path / "pw"
    if isinstance(content, bytes):
        secret.write_bytes(content)
    elif content is not None:
        secret.write_text(content)
    with pytest.raises(ConfigError, match=f"AUTH_PASSWORD_FILE=.*{message}"):
        from_env({"AUTH_PASSWORD_FILE": str(secret)})


def test_password_and_password_file_together_are_refused(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("one")
    with pytest.raises(ConfigError, match="AUTH_PASSWORD_FILE: set it or AUTH_PASSWORD"):
        from_env({"AUTH_PASSWORD_FILE": str(secret), "AUTH_PASSWORD": "two"})
