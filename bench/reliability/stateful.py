"""Part 2: a hypothesis state machine against ONE running gateway on the real engine.

Random sequences of deploy / update / scale / delete of three functions (the echo and env
fixtures, 0–2 replicas, an env var VERSION, a secret or none) and create / update / delete
of two secrets. After every step the API must agree with a plain in-test model: each call's
status (202, 201, 404, 409, 400 for a missing secret), and GET /system/functions and
GET /system/secrets (names, image, replicas, VERSION, secrets). At a few points of a run
(rule `converge`, at most twice) and at its end the controller must converge within a
bounded wait: the containers carrying the gateway's instance label are exactly the model's
replicas (one running container per slot, none other, every one passing its health check),
and every replica runs the current spec (each answers as its image and VERSION should).
Each run ends by removing everything, so runs are independent. Shrinking is off (every step
waits on real containers): a failure reports the sequence as it was generated.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
from hypothesis import HealthCheck, Phase, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    invariant,
    precondition,
    rule,
)

from bench.reliability.common import (
    FIXTURE,
    Gateway,
    Report,
    anomalies,
    containers,
    gateway,
    log_problems,
)

FUNCTIONS = ("fa", "fb", "fc")
SECRETS = ("sa", "sb")
FIXTURES = ("echo", "env")
CONVERGE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Fn:
    fixture: str
    replicas: int
    version: str | None = None
    secrets: tuple[str, ...] = ()


@dataclass
class Stats:
    runs: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    invariant_checks: int = 0
    convergences: list[float] = field(default_factory=list)
    not_converged: list[str] = field(default_factory=list)
    wrong_answers: list[str] = field(default_factory=list)


class GatewayMachine(RuleBasedStateMachine):
    gw: ClassVar[Gateway]
    stats: ClassVar[Stats]

    def __init__(self) -> None:
        super().__init__()
        self.functions: dict[str, Fn] = {}
        self.secrets: dict[str, str] = {}
        self.converged_in_run = 0
        self.stats.runs += 1

    # ---- helpers

    def call(self, method: str, path: str, body: dict[str, Any]) -> int:
        r = self.gw.client.request(method, path, json=body)
        self.stats.steps[f"{method} {path.split('/')[2]} {r.status_code}"] += 1
        return r.status_code

    def expect(self, what: str, got: int, want: int) -> None:
        assert got == want, f"{what}: answered {got}, the model expected {want}"

    def missing_secret(self, secrets: tuple[str, ...]) -> bool:
        return any(s not in self.secrets for s in secrets)

    @staticmethod
    def body(name: str, fixture: str, version: str | None,
             secrets: tuple[str, ...]) -> dict[str, Any]:
        body: dict[str, Any] = {"service": name, "image": FIXTURE.format(fixture),
                                "secrets": list(secrets)}
        if version is not None:
            body["envVars"] = {"VERSION": version}
        return body

    # ---- names: mostly ones that make the call succeed, sometimes any (the 404/409 paths)

    def pick(self, data: st.DataObject, pool: tuple[str, ...], good: list[str]) -> str:
        if good and data.draw(st.integers(0, 9), label="any name") < 8:
            return data.draw(st.sampled_from(sorted(good)), label="name")
        return data.draw(st.sampled_from(pool), label="name")

    def pick_secrets(self, data: st.DataObject) -> tuple[str, ...]:
        chance = data.draw(st.integers(0, 9), label="secrets")
        if chance < 5:
            return ()
        if chance < 9 and self.secrets:
            return (data.draw(st.sampled_from(sorted(self.secrets)), label="secret"),)
        return (data.draw(st.sampled_from(SECRETS), label="secret"),)

    # ---- functions

    @rule(data=st.data(), fixture=st.sampled_from(FIXTURES), replicas=st.integers(0, 2),
          version=st.none() | st.sampled_from("123"))
    def deploy(self, data: st.DataObject, fixture: str, replicas: int,
               version: str | None) -> None:
        name = self.pick(data, FUNCTIONS, [f for f in FUNCTIONS if f not in self.functions])
        secrets = self.pick_secrets(data)
        body = self.body(name, fixture, version, secrets)
        body["labels"] = {"com.openfaas.scale.min": str(replicas)}
        got = self.call("POST", "/system/functions", body)
        if name in self.functions:
            self.expect(f"deploy {name} (exists)", got, 409)
        elif self.missing_secret(secrets):
            self.expect(f"deploy {name} with missing secret {secrets}", got, 400)
        else:
            self.expect(f"deploy {name}", got, 202)
            self.functions[name] = Fn(fixture, replicas, version, secrets)

    @precondition(lambda self: bool(self.functions))
    @rule(data=st.data(), fixture=st.sampled_from(FIXTURES),
          version=st.none() | st.sampled_from("123"))
    def update(self, data: st.DataObject, fixture: str, version: str | None) -> None:
        name = self.pick(data, FUNCTIONS, list(self.functions))
        secrets = self.pick_secrets(data)
        got = self.call("PUT", "/system/functions", self.body(name, fixture, version, secrets))
        if name not in self.functions:
            self.expect(f"update {name} (missing)", got, 404)
        elif self.missing_secret(secrets):
            self.expect(f"update {name} with missing secret {secrets}", got, 400)
        else:
            self.expect(f"update {name}", got, 202)
            self.functions[name] = replace(self.functions[name], fixture=fixture,
                                           version=version, secrets=secrets)

    @precondition(lambda self: bool(self.functions))
    @rule(data=st.data(), replicas=st.integers(0, 2))
    def scale(self, data: st.DataObject, replicas: int) -> None:
        name = self.pick(data, FUNCTIONS, list(self.functions))
        got = self.call("POST", f"/system/scale-function/{name}", {"replicas": replicas})
        if name not in self.functions:
            self.expect(f"scale {name} (missing)", got, 404)
        else:
            self.expect(f"scale {name}", got, 202)
            self.functions[name] = replace(self.functions[name], replicas=replicas)

    @precondition(lambda self: bool(self.functions))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        name = self.pick(data, FUNCTIONS, list(self.functions))
        got = self.call("DELETE", "/system/functions", {"functionName": name})
        self.expect(f"delete {name}", got, 202 if name in self.functions else 404)
        self.functions.pop(name, None)

    # ---- secrets

    @rule(data=st.data(), value=st.sampled_from(["one", "two", "three"]))
    def create_secret(self, data: st.DataObject, value: str) -> None:
        name = self.pick(data, SECRETS, [n for n in SECRETS if n not in self.secrets])
        got = self.call("POST", "/system/secrets", {"name": name, "value": value})
        if name in self.secrets:
            self.expect(f"create secret {name} (exists)", got, 409)
        else:
            self.expect(f"create secret {name}", got, 201)
            self.secrets[name] = value

    @precondition(lambda self: bool(self.secrets))
    @rule(data=st.data(), value=st.sampled_from(["one", "two", "three"]))
    def update_secret(self, data: st.DataObject, value: str) -> None:
        name = self.pick(data, SECRETS, list(self.secrets))
        got = self.call("PUT", "/system/secrets", {"name": name, "value": value})
        self.expect(f"update secret {name}", got, 202 if name in self.secrets else 404)
        if name in self.secrets:
            self.secrets[name] = value

    @precondition(lambda self: bool(self.secrets))
    @rule(data=st.data())
    def delete_secret(self, data: st.DataObject) -> None:
        name = self.pick(data, SECRETS, list(self.secrets))
        got = self.call("DELETE", "/system/secrets", {"name": name})
        users = [f for f, fn in self.functions.items() if name in fn.secrets]
        if name not in self.secrets:
            self.expect(f"delete secret {name} (missing)", got, 404)
        elif users:
            self.expect(f"delete secret {name} (mounted by {users})", got, 409)
        else:
            self.expect(f"delete secret {name}", got, 202)
            del self.secrets[name]

    # ---- the API agrees with the model after every step

    @invariant()
    def api_agrees(self) -> None:
        self.stats.invariant_checks += 1
        r = self.gw.client.get("/system/functions")
        assert r.status_code == 200, r.text
        seen = {f["name"]: (f["image"], f["replicas"], (f.get("envVars") or {}).get("VERSION"),
                            tuple(f.get("secrets") or ())) for f in r.json()}
        want = {n: (FIXTURE.format(f.fixture), f.replicas, f.version, f.secrets)
                for n, f in self.functions.items()}
        assert seen == want, f"GET /system/functions {seen} != model {want}"
        r = self.gw.client.get("/system/secrets")
        assert r.status_code == 200, r.text
        names = sorted(s["name"] for s in r.json())
        assert names == sorted(self.secrets), f"secrets {names} != model {sorted(self.secrets)}"

    # ---- the controller converges to the model

    @precondition(lambda self: self.converged_in_run < 2)
    @rule()
    def converge(self) -> None:
        self.converged_in_run += 1
        self.check_converged("mid-run")

    def check_converged(self, where: str) -> None:
        """Wait (bounded) until the containers match the model and every replica answers
        as its current spec should (right after an update the old replicas still match the
        counts: only their answers tell)."""
        want = {n: f.replicas for n, f in self.functions.items()}
        began = time.monotonic()
        while True:
            status = {f["name"]: f for f in self.gw.client.get("/system/functions").json()}
            available = {n: int(f["availableReplicas"]) for n, f in status.items()}
            found = anomalies(want, available, containers(self.gw))
            # round robin over the healthy replicas: 3 calls per replica reach each one
            wrong = [] if not found.converged else [
                problem for name, fn in self.functions.items() for i in range(3 * fn.replicas)
                if (problem := self.wrong_answer(name, fn, i))]
            if found.converged and not wrong:
                break
            if time.monotonic() - began > CONVERGE_TIMEOUT:
                text = f"run {self.stats.runs} {where}: {found.describe()}"
                if wrong:
                    self.stats.wrong_answers.append(f"{text}: {wrong[0]}")
                    raise AssertionError(f"replicas not running the current spec after "
                                         f"{CONVERGE_TIMEOUT:.0f} s: {wrong}")
                self.stats.not_converged.append(text)
                raise AssertionError(f"not converged in {CONVERGE_TIMEOUT:.0f} s: {text}")
            time.sleep(0.2)
        self.stats.convergences.append(time.monotonic() - began)

    def wrong_answer(self, name: str, fn: Fn, i: int) -> str:
        """Empty when the function answers as its image and VERSION should, else what it did."""
        probe = f"probe-{i}"
        try:
            r = self.gw.client.post(f"/function/{name}", content=probe.encode())
        except httpx.HTTPError as err:
            return f"{name}: {err!r}"
        if r.status_code != 200:
            return f"{name}: {r.status_code} {r.text[:200]}"
        if fn.fixture == "echo":
            return "" if r.text == probe else f"{name}: echo answered {r.text[:200]!r}"
        lines = r.text.splitlines()
        version = [x for x in lines if x.startswith("VERSION=")]
        ok = "Http_Method=POST" in lines and version == (
            [f"VERSION={fn.version}"] if fn.version is not None else [])
        return "" if ok else f"{name}: env answered {version or 'no VERSION'}, " \
                             f"not {fn.version}"

    def teardown(self) -> None:
        # the end of a run: converged, then everything removed for the next run
        try:
            self.check_converged("end of run")
        finally:
            for name in list(self.functions):
                self.gw.client.request("DELETE", "/system/functions",
                                       json={"functionName": name})
            for name in list(self.secrets):
                self.gw.client.request("DELETE", "/system/secrets", json={"name": name})
            deadline = time.monotonic() + CONVERGE_TIMEOUT
            while containers(self.gw) and time.monotonic() < deadline:
                time.sleep(0.2)


def run(report: Report, tmp: Path, *, runs: int, steps: int, seed_value: int) -> None:
    part = "2 stateful"
    print(f"\n== {part}: hypothesis, {runs} runs of up to {steps} steps", flush=True)
    gw = gateway(tmp / "stateful")
    stats = Stats()
    GatewayMachine.gw = gw
    GatewayMachine.stats = stats
    failure = ""
    began = time.monotonic()
    try:
        gw.start()
        test = get_state_machine_test(GatewayMachine, settings=settings(
            max_examples=runs, stateful_step_count=steps, deadline=None, database=None,
            phases=[Phase.generate], suppress_health_check=list(HealthCheck),
            print_blob=False))
        try:
            hypothesis_seed(seed_value)(test)()
        except Exception as err:  # reported in the table; hypothesis printed the steps
            failure = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
        problems = log_problems(gw)
    finally:
        gw.close()
    took = time.monotonic() - began
    total_steps = sum(stats.steps.values())
    report.raw["stateful"] = {"seconds": took, "runs": stats.runs, "steps": dict(stats.steps),
                              "invariant_checks": stats.invariant_checks,
                              "convergence_s": stats.convergences, "failure": failure,
                              "not_converged": stats.not_converged,
                              "wrong_answers": stats.wrong_answers,
                              "log_problems": problems[:20]}
    report.add(part, "runs, API steps, invariant checks",
               f"{stats.runs}, {total_steps}, {stats.invariant_checks} in {took:.0f} s")
    report.add(part, "API answers and state differing from the model",
               failure if failure and not (stats.not_converged or stats.wrong_answers) else 0,
               "0", not failure or bool(stats.not_converged or stats.wrong_answers))
    conv = sorted(stats.convergences)
    report.add(part, "convergence checks passed (median / max s)",
               f"{len(conv)}" + (f" ({conv[len(conv) // 2]:.1f} / {conv[-1]:.1f})"
                                 if conv else ""))
    report.add(part, f"not converged within {CONVERGE_TIMEOUT:.0f} s",
               "; ".join(stats.not_converged) or 0, "0", not stats.not_converged)
    report.add(part, "replicas not running the current spec",
               "; ".join(stats.wrong_answers) or 0, "0", not stats.wrong_answers)
    report.add(part, "errors logged by the gateway", len(problems), "0", not problems)
