"""The durable async queue: claims, leases, expiry, back-off, attempt limits, durability."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from api.asyncmodel import (
    BACKOFF_CAP,
    CALLBACK,
    INVOKE,
    Result,
    Submission,
    backoff,
    judge_callback,
    judge_invoke,
)
from api.queue import QueueStore

LEASE = 10.0
_tokens = itertools.count()


def sub(call_id: str, name: str = "echo", callback: str | None = None,
        body: bytes = b"hi") -> Submission:
    return Submission(call_id=call_id, name=name, namespace="openfaas-fn", target=name,
                      path="/a", query="x=1", headers=(("X-Call-Id", call_id),), body=body,
                      callback_url=callback)


def token() -> str:
    return f"t{next(_tokens)}"


@pytest.fixture
def store(tmp_path: Path):
    s = QueueStore(tmp_path / "queue.db")
    yield s
    s.close()


def claim(store: QueueStore, now: float, exclude: tuple[str, ...] = ()):
    return store.claim(now, token=token(), lease=LEASE, exclude=exclude)


# ---- the pure rules ----

def test_backoff_doubles_from_half_a_second_up_to_the_cap():
    assert [backoff(n) for n in range(1, 10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_never_shrinks_and_never_passes_the_cap(attempt):
    assert 0 < backoff(attempt) <= backoff(attempt + 1) <= BACKOFF_CAP


@pytest.mark.parametrize("status", [200, 201, 302, 400, 404, 500])
def test_a_final_answer_is_done_whatever_its_status(status):
    assert judge_invoke(status, 1, 3) == ("done", None)


@pytest.mark.parametrize("status", [429, 502, 503, 504, None])
def test_busy_or_unreachable_is_retried_until_the_attempts_run_out(status):
    assert judge_invoke(status, 1, 3) == ("retry", 0.5)
    assert judge_invoke(status, 2, 3) == ("retry", 1.0)
    assert judge_invoke(status, 3, 3) == ("failed", None)


@pytest.mark.parametrize("status,verdict", [
    (200, "done"), (204, "done"), (302, "done"), (400, "failed"), (404, "failed"),
    (429, "retry"), (500, "retry"), (503, "retry"), (None, "retry"),
])
def test_callback_verdicts(status, verdict):
    assert judge_callback(status, 1, 5)[0] == verdict
    if verdict == "retry":
        assert judge_callback(status, 5, 5) == ("failed", None)


# ---- the store ----

def test_enqueue_then_claim_in_order_with_a_lease(store):
    assert store.enqueue(sub("a"), 0.0) and store.enqueue(sub("b"), 1.0)
    assert not store.enqueue(sub("a", body=b"other"), 2.0)  # the call id is the key
    first = claim(store, 5.0)
    assert first is not None and first.request == sub("a")
    assert (first.stage, first.attempts, first.callback_attempts) == (INVOKE, 1, 0)
    second = claim(store, 5.0)
    assert second is not None and second.request.call_id == "b"
    assert claim(store, 5.0) is None
    assert store.status("a")["status"] == "running"
    assert store.next_due(5.0) == 15.0  # the first lease to run out


def test_an_expired_lease_is_claimed_again_and_the_old_holder_is_locked_out(store):
    store.enqueue(sub("a"), 0.0)
    old = claim(store, 0.0)
    assert claim(store, LEASE - 0.001) is None
    new = claim(store, LEASE)
    assert new is not None and new.request.call_id == "a" and new.attempts == 2
    assert not store.retry(old.token, LEASE, at=LEASE, error="late")
    assert store.finish_invoke(old.token, LEASE, outcome="done", result=Result(200)) is None
    assert store.finish_invoke(new.token, LEASE, outcome="done", result=Result(200)) == "done"


def test_renewing_keeps_a_lease_alive(store):
    store.enqueue(sub("a"), 0.0)
    job = claim(store, 0.0)
    assert store.renew([job.token], 2 * LEASE) == 1
    assert claim(store, LEASE + 1) is None
    assert claim(store, 2 * LEASE) is not None


def test_start_up_requeues_only_expired_leases(store):
    for call_id in "ab":
        store.enqueue(sub(call_id), 0.0)
    claim(store, 0.0)
    claim(store, 5.0)
    assert store.requeue_expired(LEASE) == 1  # a's lease ran out, b's has 5 s left
    assert store.status("a")["status"] == "queued"
    assert store.status("b")["status"] == "running"
    again = claim(store, LEASE)
    assert again is not None and again.request.call_id == "a" and again.attempts == 2


def test_retry_waits_for_its_time_and_keeps_the_error(store):
    store.enqueue(sub("a"), 0.0)
    job = claim(store, 0.0)
    assert store.retry(job.token, 1.0, at=3.0, error="function answered 502",
                       function_status=502)
    view = store.status("a")
    assert (view["status"], view["lastError"], view["functionStatus"]) == (
        "queued", "function answered 502", 502)
    assert store.next_due(1.0) == 3.0
    assert claim(store, 2.9) is None
    assert claim(store, 3.0).attempts == 2


def test_a_saturated_function_is_skipped_but_its_callbacks_are_not(store):
    store.enqueue(sub("a1", "a", callback="http://cb/"), 0.0)
    store.enqueue(sub("a2", "a"), 1.0)
    store.enqueue(sub("b1", "b"), 2.0)
    job = claim(store, 5.0)
    assert store.finish_invoke(job.token, 5.0, outcome="done", result=Result(200)) == "running"
    assert store.retry(job.token, 5.0, at=5.0, error="callback: refused")
    assert claim(store, 6.0, exclude=("a.openfaas-fn",)).request.call_id == "b1"  # due first
    callback = claim(store, 6.0, exclude=("a.openfaas-fn",))
    assert callback.request.call_id == "a1" and callback.stage == CALLBACK
    assert claim(store, 6.0, exclude=("a.openfaas-fn",)) is None
    assert store.next_due(6.0, exclude=("a.openfaas-fn",)) == 16.0
    assert claim(store, 6.0).request.call_id == "a2"


def test_two_stages_keep_the_answer_for_the_callback(store):
    store.enqueue(sub("a", callback="http://cb/hook"), 0.0)
    job = claim(store, 0.0)
    answer = Result(201, (("Content-Type", "text/plain"),), b"made", 0.25)
    assert store.finish_invoke(job.token, 1.0, outcome="done", result=answer) == "running"
    assert store.retry(job.token, 1.0, at=2.0, error="callback: refused")
    again = claim(store, 2.0)
    assert (again.stage, again.attempts, again.callback_attempts) == (CALLBACK, 1, 2)
    assert again.result == answer and again.outcome == "done"
    assert store.finish_callback(again.token, 3.0, delivered=True, callback_status=200) == "done"
    view = store.status("a")
    assert (view["status"], view["functionStatus"], view["callbackStatus"]) == ("done", 201, 200)
    assert view["lastError"] == "callback: refused"  # what happened on the way stays visible
    assert claim(store, 100.0) is None


def test_a_failed_callback_fails_the_request(store):
    store.enqueue(sub("a", callback="http://cb/"), 0.0)
    job = claim(store, 0.0)
    store.finish_invoke(job.token, 0.0, outcome="done", result=Result(200))
    assert store.finish_callback(job.token, 1.0, delivered=False, callback_status=404,
                                 error="callback answered 404") == "failed"
    assert store.status("a")["lastError"] == "callback answered 404"


def test_release_gives_back_without_counting_the_attempt(store):
    store.enqueue(sub("a"), 0.0)
    job = claim(store, 0.0)
    assert store.release([job.token], 1.0) == 1
    assert store.status("a")["status"] == "queued"
    assert claim(store, 1.0).attempts == 1


def test_status_view_counts_and_purge(store):
    store.enqueue(sub("a"), 0.0)
    store.enqueue(sub("b"), 0.5)
    store.enqueue(sub("c", "other"), 0.5)
    assert store.status("a") == {
        "callId": "a", "function": "echo", "namespace": "openfaas-fn", "status": "queued",
        "attempts": 0, "callbackAttempts": 0, "lastError": None, "functionStatus": None,
        "callbackStatus": None, "createdAt": "1970-01-01T00:00:00Z",
        "updatedAt": "1970-01-01T00:00:00Z",
    }
    assert store.status("nope") is None
    assert store.pending_counts() == {"echo.openfaas-fn": 2, "other.openfaas-fn": 1}
    job = claim(store, 1.0)
    store.finish_invoke(job.token, 2.0, outcome="failed", result=Result(None, error="x"),
                        error="gave up")
    assert store.pending_counts() == {"echo.openfaas-fn": 1, "other.openfaas-fn": 1}
    assert store.purge(2.0) == 0 and store.purge(2.1) == 1
    assert store.status("a") is None


def test_committed_requests_survive_reopening_and_the_file_is_private(tmp_path):
    path = tmp_path / "q" / "queue.db"
    first = QueueStore(path)
    first.enqueue(sub("a"), 0.0)
    claim(first, 0.0)  # running when the "gateway" dies
    first.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = QueueStore(path)
    try:
        assert second._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert second.requeue_expired(LEASE) == 1
        assert claim(second, LEASE).request == sub("a")
    finally:
        second.close()


# ---- the property: one live lease per request, nothing due is ever left unclaimed ----

class LeaseMachine(RuleBasedStateMachine):
    """Interleaves enqueues, claims, retries, finishes, renewals and the passing of time.

    The model keeps, per unfinished call id, when it is due (queued) or until when it is
    leased and by which token. Whatever the interleaving: a claim never hands out a request
    whose lease is still live, never a finished one, and returns nothing only when nothing
    is due; a superseded token can change nothing."""

    @initialize()
    def open(self) -> None:
        self.store = QueueStore(":memory:")
        self.now = 0.0
        self.ids = itertools.count()
        self.due: dict[str, float] = {}  # queued: claimable from then on
        self.held: dict[str, tuple[str, float]] = {}  # leased: (token, until)
        self.stale: list[str] = []  # tokens whose lease someone else took over
        self.finished: set[str] = set()

    def teardown(self) -> None:
        if hasattr(self, "store"):
            self.store.close()

    def _live(self, call_id: str) -> bool:
        return call_id in self.held and self.held[call_id][1] > self.now

    @rule()
    def enqueue(self) -> None:
        call_id = f"c{next(self.ids)}"
        assert self.store.enqueue(sub(call_id), self.now)
        self.due[call_id] = self.now

    @rule(dt=st.sampled_from([0.0, 0.5, 3.0, LEASE / 2, LEASE, 2 * LEASE]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def claim(self) -> None:
        t = token()
        job = self.store.claim(self.now, token=t, lease=LEASE)
        claimable = {c for c, at in self.due.items() if at <= self.now}
        claimable |= {c for c, (_, until) in self.held.items() if until <= self.now}
        if job is None:
            assert not claimable
            return
        call_id = job.request.call_id
        assert call_id in claimable and call_id not in self.finished
        assert not self._live(call_id)
        if call_id in self.held:
            self.stale.append(self.held[call_id][0])
        self.due.pop(call_id, None)
        self.held[call_id] = (t, self.now + LEASE)

    @precondition(lambda self: any(self._live(c) for c in self.held))
    @rule(data=st.data(), delay=st.sampled_from([0.0, 1.0, 15.0]))
    def retry(self, data: st.DataObject, delay: float) -> None:
        call_id = data.draw(st.sampled_from(sorted(c for c in self.held if self._live(c))))
        t, _ = self.held.pop(call_id)
        assert self.store.retry(t, self.now, at=self.now + delay, error="busy")
        self.due[call_id] = self.now + delay

    @precondition(lambda self: any(self._live(c) for c in self.held))
    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(c for c in self.held if self._live(c))))
        t, _ = self.held.pop(call_id)
        assert self.store.finish_invoke(t, self.now, outcome="done", result=Result(200)) == "done"
        self.finished.add(call_id)

    @rule()
    def renew(self) -> None:
        live = {c: t for c, (t, _) in self.held.items() if self._live(c)}
        assert self.store.renew(list(live.values()), self.now + LEASE) == len(live)
        for call_id, t in live.items():
            self.held[call_id] = (t, self.now + LEASE)

    @precondition(lambda self: bool(self.stale))
    @rule()
    def stale_holder_is_locked_out(self) -> None:
        t = self.stale[-1]
        assert not self.store.retry(t, self.now, at=self.now, error="late")
        assert self.store.finish_invoke(t, self.now, outcome="done", result=Result(200)) is None

    @invariant()
    def counts_match(self) -> None:
        if hasattr(self, "store"):
            pending = self.store.pending_counts().get("echo.openfaas-fn", 0)
            assert pending == len(self.due) + len(self.held)


LeaseMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40,
                                          deadline=None)
test_leases_hand_out_each_request_once_per_lease = LeaseMachine.TestCase
