"""api.stack: faas-cli stack files → FunctionDeployment bodies, on real-world and made-up files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from api.stack import Stack, StackError, load_stack, substitute

STACKS = Path(__file__).resolve().parents[2].parent / "shared" / "stacks"
needs_stacks = pytest.mark.skipif(
    not STACKS.is_dir(), reason=f"real-world stack files not found at {STACKS}"
)

OLD_PROVIDER = 'provider.name: the old "faas" is read as "openfaas"'
# Files written for the old provider name: they load, with that one warning.
OLD_PROVIDER_FILES = [
    "alexellis__go-fns-tester__stack.yml",
    "alexellis__repaint-the-past__twitter_stack.yml",
    "openfaas-incubator__openfaas-sinatra-guestbook__stack.yml",
    "qianl15__openfaas-labs__openfaas__long-task.yml",
    "stefanprodan__openfaas-gke__functions__promql.yml",
    "openfaas__faas-cli__samples.yml",
]
# Files whose values the API would refuse, and why: errors when strict (deploying), warnings
# otherwise. Everything else must load strictly with no error.
EXPECTED_ERRORS: dict[str, list[str]] = {
    # 2017 Swarm units: "10m" memory is not a Kubernetes-style memory quantity.
    # (the API reports the first bad field of a function, here limits before requests)
    "openfaas__faas-cli__samples.yml": [
        "limits.memory: '10m'", "limits.memory: '30m'", "limits.memory: '20m'"
    ],
    # faas-cli test data: functions with only environment_file, so nothing to deploy.
    "openfaas__faas-cli__commands__testdata__deploy__stack.yml": [
        'function "func1": image: no image is set', 'function "func2": image: no image is set'
    ],
    # Our API's secret names are DNS labels; this file uses underscores.
    "openfaas__workshop__issue-bot__stack.yml": [
        "secrets: 'alexellis_github_auth_token' is not a valid name"
    ],
}
ENV = {"FUNCTION_NAME": "befaas-fn", "FUNCTION_HANDLER": "./fn", "GATEWAY_IP": "10.0.0.1"}


def stage(source: Path, folder: Path, rewrite_provider: bool = False) -> Path:
    """Copy one real stack file and stub the environment files it names (not collected)."""
    target = folder / source.name
    shutil.copyfile(source, target)
    if rewrite_provider:
        text = re.sub(r"(?m)^(\s+name:\s*)faas\b", r"\1openfaas", target.read_text())
        target.write_text(text)
    doc = yaml.safe_load(substitute(source.read_text(), ENV))  # only to find the file names
    for fields in (doc.get("functions") or {}).values():
        for name in (fields or {}).get("environment_file") or []:
            stub = folder / name
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(f"environment:\n  FROM_{stub.stem.upper().replace('-', '_')}: stub\n")
    return target


def real_files() -> list[str]:
    return sorted(p.name for p in STACKS.glob("*.yml")) if STACKS.is_dir() else []


@needs_stacks
def test_the_corpus_is_all_there() -> None:
    assert len(real_files()) == 23


@needs_stacks
@pytest.mark.parametrize("name", real_files())
def test_real_stack_files(name: str, tmp_path: Path) -> None:
    path = stage(STACKS / name, tmp_path)
    expected = EXPECTED_ERRORS.get(name)
    if expected is None:
        stack = load_stack([path], ENV)
        assert stack.functions
        old = [OLD_PROVIDER] if name in OLD_PROVIDER_FILES else []
        assert [w.split(": ", 1)[1] for w in stack.warnings] == old
        for body in stack.deployments():
            assert body["image"] and body["labels"] is not None and "annotations" in body
        return
    with pytest.raises(StackError) as caught:
        load_stack([path], ENV)
    errors = caught.value.errors
    for fragment in expected:
        assert any(fragment in e for e in errors), (fragment, errors)
    for error in errors:
        assert error.startswith(str(path) + ": "), error
        assert any(fragment in error for fragment in expected), error


@needs_stacks
@pytest.mark.parametrize("name", [n for n in OLD_PROVIDER_FILES if n not in EXPECTED_ERRORS])
def test_old_provider_files_are_otherwise_fine(name: str, tmp_path: Path) -> None:
    stack = load_stack([stage(STACKS / name, tmp_path, rewrite_provider=True)], ENV)
    assert stack.functions and stack.warnings == ()


@needs_stacks
@pytest.mark.parametrize("name", real_files())
def test_every_real_file_reads(name: str, tmp_path: Path) -> None:
    """Not strict, every file faas-cli reads loads; what the API would refuse is a warning."""
    stack = load_stack([stage(STACKS / name, tmp_path)], ENV, strict=False)
    assert stack.functions or name in EXPECTED_ERRORS
    for fragment in EXPECTED_ERRORS.get(name, []):
        assert any(fragment in w for w in stack.warnings), (fragment, stack.warnings)


def load_real(name: str, folder: Path, env: dict[str, str] | None = None) -> Stack:
    return load_stack([stage(STACKS / name, folder)], ENV if env is None else env)


@needs_stacks
def test_spot_check_faas_cli_stack(tmp_path: Path) -> None:
    stack = load_real("openfaas__faas-cli__stack.yml", tmp_path)
    assert list(stack.functions)[:3] == ["url-ping", "stronghash", "nodejs-echo"]
    url_ping = stack.functions["url-ping"]
    assert url_ping["image"] == "alexellis2/url-ping:0.3"  # ${DOCKER_USER:-alexellis2}
    assert url_ping["annotations"] == {"test": "true"}
    assert url_ping["labels"] == {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}
    assert url_ping["envVars"] == {"debug": "true"}
    strong = stack.functions["stronghash"]
    assert strong["envProcess"] == "sha512sum" and strong["secrets"] == ("test1", "test2")
    assert stack.gateway == "http://127.0.0.1:8080"
    other = load_real("openfaas__faas-cli__stack.yml", tmp_path, {"DOCKER_USER": "me"})
    assert other.functions["url-ping"]["image"] == "me/url-ping:0.3"


@needs_stacks
def test_spot_check_store_functions_and_cloud(tmp_path: Path) -> None:
    store = load_real("openfaas__store-functions__stack.yml", tmp_path)
    assert store.functions["cows"]["image"] == "ghcr.io/openfaas/cows:latest"
    assert len(store.functions) == 19
    cloud = load_real("openfaas__openfaas-cloud__stack.yml", tmp_path, {"TAG": "0.9"})
    push = cloud.functions["github-push"]
    assert push["image"] == "ghcr.io/openfaas/ofc-github-push:0.9"
    assert push["envVars"]["FROM_GITHUB"] == "stub"  # environment_file reached envVars
    assert "FROM_GATEWAY_CONFIG" in push["envVars"]


@needs_stacks
def test_spot_check_variable_function_name_and_cron(tmp_path: Path) -> None:
    befaas = load_real("Be-FaaS__BeFaaS-framework__misc__openfaas.yml", tmp_path)
    assert list(befaas.functions) == ["befaas-fn"]
    assert befaas.functions["befaas-fn"]["image"] == "DOCKERHUB_USER_MISSING/befaas-fn:latest"
    assert befaas.functions["befaas-fn"]["envVars"] == {"IS_OPENFAAS": "1"}
    assert befaas.gateway is None  # ${OPENFAAS_GATEWAY} unset → empty
    cron = load_real("openfaas__cron-connector__travis__test-func.yml", tmp_path)
    assert cron.functions["nodeinfo-1"]["annotations"] == {
        "topic": "cron-function", "schedule": "* * * * *"
    }


@needs_stacks
def test_spot_check_derek_environment_order(tmp_path: Path) -> None:
    derek = load_real("alexellis__derek__derek.yml", tmp_path)
    body = derek.functions["derek-0113"]
    assert body["image"] == "ghcr.io/alexellis/derek:0.11.3"
    assert body["envVars"]["FROM_SECRETS"] == "stub"


# -- made-up files ---------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HEAD = "version: 1.0\nprovider:\n  name: openfaas\n  gateway: http://127.0.0.1:8080\n"


def test_full_mapping_to_function_deployment(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + """functions:
  echo:
    lang: python3
    handler: ./echo
    build_args: {GO111MODULE: on}
    skip_build: true
    image: ghcr.io/me/echo:1
    fprocess: cat
    environment: {A: on, B: 0.25, C: 300, D: "x"}
    secrets: [api-key]
    labels: {com.openfaas.scale.zero: false}
    limits: {memory: 128Mi}
    requests: {}
    constraints: ["node.platform.os == linux"]
    readonly_root_filesystem: true
    namespace: team-a
configuration:
  templates:
    - name: python3
      source: https://example.com/t
""")
    stack = load_stack([path], {})
    assert stack.warnings == ()
    assert stack.deployments() == [{
        "service": "echo", "image": "ghcr.io/me/echo:1", "envProcess": "cat",
        "envVars": {"A": "on", "B": "0.25", "C": "300", "D": "x"},
        "secrets": ["api-key"], "constraints": ["node.platform.os == linux"],
        "labels": {"com.openfaas.scale.zero": "false"}, "annotations": {},
        "limits": {"memory": "128Mi"}, "readOnlyRootFilesystem": True, "namespace": "team-a",
    }]


def test_minimal_function_has_empty_labels_and_annotations(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", "provider: {name: openfaas}\nfunctions:\n  f:\n"
                 "    image: alpine\n    limits:\n      memory: ''\n")
    assert load_stack([path], {}).deployments() == [
        {"service": "f", "image": "alpine", "labels": {}, "annotations": {}}
    ]


def test_env_substitution_with_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + """functions:
  ${NAME:-fallback}:
    image: ${REG:-docker.io}/${OWNER}/fn:${TAG:-latest}
    environment: {EMPTY: "${UNSET}", DEF: "${EMPTY_VAR:-d}"}
""")
    stack = load_stack([path], {"OWNER": "me", "TAG": "2", "EMPTY_VAR": ""})
    body = stack.functions["fallback"]
    assert body["image"] == "docker.io/me/fn:2"
    assert body["envVars"] == {"EMPTY": "", "DEF": "d"}
    named = load_stack([path], {"NAME": "real", "OWNER": "o"})
    assert list(named.functions) == ["real"]


def test_substitute_leaves_other_dollars_alone() -> None:
    assert substitute("$HOME ${X} $${ ${Y:-a:b}", {"X": "1"}) == "$HOME 1 $${ a:b"


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
values = st.text(st.characters(blacklist_characters="${}", blacklist_categories=("Cs",)),
                 max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(names, values, min_size=1, max_size=6), st.data())
def test_substitution_of_set_variables_never_leaves_a_reference(
    env: dict[str, str], data: st.DataObject
) -> None:
    keys = sorted(env)
    refs = data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=8))
    text = " ".join(f"${{{k}}}" if i % 2 else f"${{{k}:-dflt}}" for i, k in enumerate(refs))
    out = substitute(text, env)
    assert "${" not in out
    expected = " ".join(
        env[k] if i % 2 else (env[k] or "dflt") for i, k in enumerate(refs)
    )
    assert out == expected


@settings(max_examples=40, deadline=None)
@given(names, values)
def test_unset_variable_takes_its_default(name: str, default: str) -> None:
    assert substitute(f"<${{{name}:-{default}}}>", {}) == f"<{default}>"
    assert substitute(f"<${{{name}}}>", {}) == "<>"


def test_later_files_override_field_by_field(tmp_path: Path) -> None:
    base = write(tmp_path, "base/stack.yml", HEAD + """functions:
  a:
    image: a:1
    environment: {X: "1", Y: "1"}
    environment_file: [env.yml]
    labels: {l1: "1"}
    secrets: [s1, s2]
    limits: {memory: 64Mi, cpu: 100m}
  b:
    image: b:1
""")
    write(tmp_path, "base/env.yml", "environment:\n  FROM_BASE: yes\n")
    override = write(tmp_path, "prod/override.yml", """functions:
  a:
    image: a:2
    environment: {Y: "2"}
    labels: {l2: "2"}
    secrets: [s3]
    limits: {memory: 256Mi}
  c:
    image: c:1
    environment_file: [prod-env.yml]
""")
    write(tmp_path, "prod/prod-env.yml", "environment:\n  FROM_PROD: 'true'\n")
    stack = load_stack([base, override], {})
    assert list(stack.functions) == ["a", "b", "c"]
    a = stack.deployments()[0]
    assert a["image"] == "a:2"
    assert a["envVars"] == {"X": "1", "Y": "2", "FROM_BASE": "yes"}
    assert a["labels"] == {"l1": "1", "l2": "2"}
    assert a["secrets"] == ["s3"]
    assert a["limits"] == {"memory": "256Mi", "cpu": "100m"}
    assert stack.functions["c"]["envVars"] == {"FROM_PROD": "true"}
    assert stack.gateway == "http://127.0.0.1:8080"


def test_environment_file_overlays_environment_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + """functions:
  f:
    image: f
    environment: {A: inline, B: inline, C: inline}
    environment_file: [one.yml, sub/two.yml]
""")
    write(tmp_path, "one.yml", "environment:\n  B: one\n  C: one\n")
    write(tmp_path, "sub/two.yml", "environment:\n  C: two\n  D: 5\n  E: ${X}\n")
    # faas-cli reads environment files as they are: no ${VAR} substitution in them.
    assert load_stack([path], {"X": "x"}).functions["f"]["envVars"] == {
        "A": "inline", "B": "one", "C": "two", "D": "5", "E": "${X}"
    }


def test_missing_environment_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + "functions:\n  f:\n    image: f\n"
                 "    environment_file: [nope.yml]\n")
    with pytest.raises(StackError, match=r'function "f": environment_file: cannot read'):
        load_stack([path], {})


def test_unknown_keys_warn_naming_file_function_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + "extra: 1\nfunctions:\n  f:\n    image: f\n"
                 "    replicas: 3\n    lang: go\n    platforms: linux/amd64\n")
    stack = load_stack([path], {})
    assert stack.warnings == (
        f"{path}: unknown top-level key 'extra' ignored",
        f"{path}: function \"f\": unknown key 'replicas' ignored",
    )
    assert stack.functions["f"]["image"] == "f"


def test_invalid_values_raise_once_naming_file_function_field(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + """functions:
  good:
    image: good
  echo:
    image: echo
    limits: {memory: lots}
  Bad_Name:
    image: x
  ro:
    image: ro
    readonly_root_filesystem: maybe
  envs:
    image: e
    environment: {A: [1, 2]}
  proc:
    image: p
    environment: {"bad=key": v}
""")
    with pytest.raises(StackError) as caught:
        load_stack([path], {})
    errors = caught.value.errors
    assert len(errors) == 5
    fn = f"{path}: function"
    assert errors[0].startswith(f"{fn} \"echo\": limits.memory: 'lots' is not a quantity")
    assert errors[1].startswith(f"{fn} \"Bad_Name\": the function name: 'Bad_Name'")
    assert errors[2] == f"{fn} \"ro\": readonly_root_filesystem: 'maybe' is not true or false"
    assert errors[3] == f"{fn} \"envs\": environment.A: expected a plain value, got a list"
    assert errors[4].startswith(f"{fn} \"proc\": environment: 'bad=key'")
    assert str(caught.value) == "\n".join(errors)


def test_error_names_the_file_that_set_the_field(tmp_path: Path) -> None:
    base = write(tmp_path, "a.yml", HEAD + "functions:\n  f:\n    image: f\n")
    over = write(tmp_path, "b.yml", "functions:\n  f:\n    requests: {cpu: fast}\n")
    with pytest.raises(StackError) as caught:
        load_stack([base, over], {})
    assert caught.value.errors == (
        f"{over}: function \"f\": requests.cpu: 'fast' is not a quantity "
        "(examples: 128Mi, 1G, 500m, 0.5)",
    )


def test_function_without_image_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + "functions:\n  f:\n    lang: go\n    handler: ./f\n")
    with pytest.raises(StackError, match=r'function "f": image: no image is set; deploying needs'):
        load_stack([path], {})


def test_old_provider_name_is_read_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", "provider: {name: faas}\nfunctions:\n  f:\n    image: f\n")
    stack = load_stack([path], {})
    assert stack.warnings == (f'{path}: provider.name: the old "faas" is read as "openfaas"',)


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ("provider: {name: swarm}",
         "provider.name: 'swarm' is not accepted; it must be \"openfaas\""),
        ("", "provider.name: missing; it must be \"openfaas\""),
    ],
)
def test_provider_name_must_be_openfaas(tmp_path: Path, provider: str, message: str) -> None:
    path = write(tmp_path, "stack.yml", provider + "\nfunctions:\n  f:\n    image: f\n")
    with pytest.raises(StackError) as caught:
        load_stack([path], {})
    assert caught.value.errors == (f"{path}: {message}",)


@pytest.mark.parametrize("version", ["2.0", "1", "'1.1'"])
def test_only_version_1_0(tmp_path: Path, version: str) -> None:
    path = write(tmp_path, "stack.yml", f"version: {version}\n" + HEAD.split("\n", 1)[1]
                 + "functions:\n  f:\n    image: f\n")
    with pytest.raises(StackError, match=r"version: .* is not supported"):
        load_stack([path], {})


@pytest.mark.parametrize("text", ["functions: [a, b]", "- a\n- b\n", "functions:\n  f: [1\n"])
def test_malformed_files(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "stack.yml", HEAD + text if text.startswith("f") else text)
    with pytest.raises(StackError, match=re.escape(str(path))):
        load_stack([path], {})


def test_missing_file_and_no_files(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="cannot read the file"):
        load_stack([tmp_path / "absent.yml"], {})
    with pytest.raises(StackError, match="no stack file"):
        load_stack([], {})


def test_result_is_frozen(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + "functions:\n  f:\n    image: f\n"
                 "    secrets: [s]\n")
    stack = load_stack([path], {})
    body: Any = stack.functions["f"]
    with pytest.raises(TypeError):
        body["image"] = "other"
    fresh = stack.deployments()[0]
    fresh["secrets"].append("t")
    assert stack.functions["f"]["secrets"] == ("s",)
    with pytest.raises(AttributeError):
        stack.gateway = "x"  # type: ignore[misc]


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "stack.yml", HEAD + """x-common: &common
  labels: {team: a}
  environment: {LOG: "on"}
functions:
  one:
    <<: *common
    image: one
  two:
    <<: *common
    image: two
    environment: {LOG: "off"}
""")
    stack = load_stack([path], {})
    assert stack.warnings == (f"{path}: unknown top-level key 'x-common' ignored",)
    assert stack.functions["one"]["labels"] == {"team": "a"}
    assert stack.functions["one"]["envVars"] == {"LOG": "on"}
    assert stack.functions["two"]["envVars"] == {"LOG": "off"}
