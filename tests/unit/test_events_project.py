"""The pure core: decide + project behave like a plain dict of functions, and folding the
log in pieces gives the same state as folding it at once."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import decide
from events.errors import AlreadyExists, DomainError, Invalid, NotFound
from events.model import Desired, FunctionSpec, Resources, stream_name
from events.project import EMPTY, project
from events.store import Recorded
from events.types import (
    Event,
    FunctionDeployed,
    FunctionScaled,
    FunctionUpdated,
    NamespaceCreated,
    stream_of,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)

# Small pools so that commands collide: the same function deployed twice, updated with the
# spec it already has, scaled to its current count, removed and deployed again.
namespaces = st.sampled_from(["openfaas-fn", "dev"])
names = st.sampled_from(["a", "b", "c"])
replicas = st.integers(min_value=0, max_value=3)
specs = st.builds(
    FunctionSpec,
    name=names,
    namespace=namespaces,
    image=st.sampled_from(["img:1", "img:2"]),
    secrets=st.sampled_from([(), ("a",)]),
    env_vars=st.sampled_from([{}, {"MODE": "fast"}]),
    limits=st.sampled_from([None, Resources(memory="128Mi")]),
)
commands = st.lists(
    st.one_of(
        st.tuples(st.just("deploy"), specs, replicas),
        st.tuples(st.just("update"), specs),
        st.tuples(st.just("scale"), namespaces, names, replicas),
        st.tuples(st.just("remove"), namespaces, names),
        st.tuples(st.just("ns-create"), namespaces),
        st.tuples(st.just("ns-remove"), namespaces),
        st.tuples(st.just("secret-create"), namespaces, names, st.sampled_from(["d1", "d2"])),
        st.tuples(st.just("secret-update"), namespaces, names, st.sampled_from(["d1", "d2"])),
        st.tuples(st.just("secret-remove"), namespaces, names),
    ),
    max_size=30,
)

Command = tuple[object, ...]


def run(cmds: list[Command]) -> tuple[list[Recorded], Desired]:
    """Decide each command against the running state and record its events like a store."""
    records: list[Recorded] = []
    versions: dict[str, int] = {}
    desired = EMPTY
    for cmd in cmds:
        try:
            events = _decide(desired, cmd)
        except DomainError:
            continue
        new: list[Recorded] = []
        for event in events:
            stream = stream_of(event)
            versions[stream] = versions.get(stream, 0) + 1
            position = len(records) + len(new) + 1
            new.append(
                Recorded(
                    position=position,
                    stream=stream,
                    version=versions[stream],
                    time=T0 + timedelta(seconds=position),
                    actor="test",
                    request_id=f"r{position}",
                    event=event,
                )
            )
        records.extend(new)
        desired = project(new, desired)
    return records, desired


def _decide(desired: Desired, cmd: Command) -> list[Event]:
    match cmd:
        case ("deploy", FunctionSpec() as spec, int(n)):
            return decide.deploy(desired, spec, n)
        case ("update", FunctionSpec() as spec):
            return decide.update(desired, spec)
        case ("scale", str(ns), str(name), int(n)):
            return decide.scale(desired, ns, name, n)
        case ("remove", str(ns), str(name)):
            return decide.remove(desired, ns, name)
        case ("ns-create", str(ns)):
            return decide.create_namespace(desired, ns, (("openfaas", "1"),), ())
        case ("ns-remove", str(ns)):
            return decide.remove_namespace(desired, ns)
        case ("secret-create", str(ns), str(name), str(digest)):
            return decide.create_secret(desired, ns, name, digest)
        case ("secret-update", str(ns), str(name), str(digest)):
            return decide.update_secret(desired, ns, name, digest)
        case ("secret-remove", str(ns), str(name)):
            return decide.remove_secret(desired, ns, name)
    raise AssertionError(cmd)


@given(commands)
def test_commands_project_to_what_a_plain_dict_expects(cmds: list[Command]) -> None:
    model: dict[tuple[str, str], tuple[FunctionSpec, int]] = {}
    spaces = {"openfaas-fn"}
    secrets: dict[tuple[str, str], str] = {}

    def usable(spec: FunctionSpec) -> bool:
        return spec.namespace in spaces and all((spec.namespace, s) in secrets
                                                for s in spec.secrets)

    for cmd in cmds:
        match cmd:
            case ("deploy", FunctionSpec() as spec, int(n)) if usable(spec):
                model.setdefault(spec.key, (spec, n))
            case ("update", FunctionSpec() as spec) if spec.key in model and usable(spec):
                model[spec.key] = (spec, model[spec.key][1])
            case ("scale", str(ns), str(name), int(n)) if (ns, name) in model:
                model[(ns, name)] = (model[(ns, name)][0], n)
            case ("remove", str(ns), str(name)):
                model.pop((ns, name), None)
            case ("ns-create", str(ns)):
                spaces.add(ns)
            case ("ns-remove", str(ns)) if ns != "openfaas-fn" and not any(
                    k[0] == ns for k in model):
                spaces.discard(ns)
                secrets = {k: v for k, v in secrets.items() if k[0] != ns}
            case ("secret-create", str(ns), str(name), str(d)) if ns in spaces:
                secrets.setdefault((ns, name), d)
            case ("secret-update", str(ns), str(name), str(d)) if (ns, name) in secrets:
                secrets[(ns, name)] = d
            case ("secret-remove", str(ns), str(name)) if not any(
                    k[0] == ns and name in s.secrets for k, (s, _) in model.items()):
                secrets.pop((ns, name), None)

    records, desired = run(cmds)

    assert {k: (s.spec, s.replicas) for k, s in desired.functions.items()} == model
    assert set(desired.namespace_names()) == spaces
    assert {k: s.digest for k, s in desired.secrets.items()} == secrets
    assert desired.position == len(records)
    for (ns, name), state in desired.functions.items():
        last = [r for r in records if r.stream == stream_name(ns, name)][-1]
        assert state.version == last.version
        assert state.updated_at >= state.created_at
    assert project(records) == desired


@given(commands, st.data())
def test_folding_a_prefix_then_the_rest_equals_folding_everything(
    cmds: list[Command], data: st.DataObject
) -> None:
    records, _ = run(cmds)
    cut = data.draw(st.integers(min_value=0, max_value=len(records)))
    assert project(records[cut:], project(records[:cut])) == project(records)


def _record(position: int, version: int, event: Event) -> Recorded:
    time = T0 + timedelta(minutes=position)
    return Recorded(position, stream_name(*event.key), version, time, "alice", "", event)


def test_projection_tracks_times_versions_and_namespaces() -> None:
    spec = FunctionSpec("f", "ns", "img:1")
    other = FunctionSpec("a", "ns", "img:1")
    desired = project(
        [
            _record(1, 1, FunctionDeployed(spec, 1)),
            _record(2, 1, FunctionDeployed(other, 1)),
            _record(3, 2, FunctionUpdated(attrs.evolve(spec, image="img:2"))),
            _record(4, 3, FunctionScaled("ns", "f", 5, 1)),
        ]
    )
    state = desired.get("ns", "f")
    assert state is not None
    assert (state.spec.image, state.replicas, state.version) == ("img:2", 5, 3)
    assert state.created_at == T0 + timedelta(minutes=1)
    assert state.updated_at == T0 + timedelta(minutes=3)  # the update, not the scale
    assert desired.position == 4
    assert [s.spec.name for s in desired.in_namespace("ns")] == ["a", "f"]
    assert desired.in_namespace("other") == []
    assert desired.get("other", "f") is None


def test_project_does_not_change_its_input() -> None:
    first = project([_record(1, 1, FunctionDeployed(FunctionSpec("f", "ns", "i"), 1))])
    project([_record(2, 2, FunctionScaled("ns", "f", 3, 1))], first)
    state = first.get("ns", "f")
    assert state is not None and state.replicas == 1
    assert EMPTY.functions == {} and EMPTY.position == 0


@pytest.fixture
def deployed() -> Desired:
    created = NamespaceCreated("ns", {"openfaas": "1"})
    return project([
        Recorded(1, "namespace/ns", 1, T0, "alice", "", created),
        _record(2, 1, FunctionDeployed(FunctionSpec("f", "ns", "img:1"), 2)),
    ])


def test_decide_errors_carry_their_http_status(deployed: Desired) -> None:
    with pytest.raises(AlreadyExists) as exists:
        decide.deploy(deployed, FunctionSpec("f", "ns", "img:2"), 1)
    assert exists.value.status == 409
    assert "'f'" in exists.value.message

    missing = FunctionSpec("g", "ns", "img")
    calls: list[Callable[[], list[Event]]] = [
        lambda: decide.update(deployed, missing),
        lambda: decide.scale(deployed, "ns", "g", 1),
        lambda: decide.remove(deployed, "ns", "g"),
        lambda: decide.remove(deployed, "other", "f"),
    ]
    for call in calls:
        with pytest.raises(NotFound) as not_found:
            call()
        assert not_found.value.status == 404

    with pytest.raises(Invalid) as invalid:
        decide.scale(deployed, "ns", "f", -1)
    assert invalid.value.status == 400


def test_commands_that_change_nothing_return_no_events(deployed: Desired) -> None:
    assert decide.update(deployed, FunctionSpec("f", "ns", "img:1")) == []
    assert decide.scale(deployed, "ns", "f", 2) == []


def test_references_must_exist(deployed: Desired) -> None:
    with pytest.raises(Invalid, match="namespace 'nope'"):
        decide.deploy(deployed, FunctionSpec("g", "nope", "img"), 1)
    with pytest.raises(Invalid, match="secrets: 'key'"):
        decide.deploy(deployed, FunctionSpec("g", "ns", "img", secrets=("key",)), 1)
    with pytest.raises(Invalid, match="secrets: 'key'"):
        decide.update(deployed, FunctionSpec("f", "ns", "img", secrets=("key",)))


def test_commands_record_what_changed(deployed: Desired) -> None:
    changed = FunctionSpec("f", "ns", "img:2")
    assert decide.update(deployed, changed) == [FunctionUpdated(changed)]
    assert decide.scale(deployed, "ns", "f", 0) == [
        FunctionScaled("ns", "f", 0, previous=2, reason="manual")]
    assert decide.scale(deployed, "ns", "f", 5, reason="scale-from-zero") == [
        FunctionScaled("ns", "f", 5, previous=2, reason="scale-from-zero")]
    new = FunctionSpec("g", "ns", "img")
    assert decide.deploy(deployed, new, 3) == [FunctionDeployed(new, 3)]
