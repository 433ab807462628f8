"""The dashboard in a real browser against a real gateway and engine.

One flow, each step asserting what the page shows: log in, deploy a fixture from the form,
see it healthy, invoke it and see the answer, see its log line arrive live, scale to 2 and
see two healthy replicas, edit it and see the new version's diff in the history, roll back,
delete. Then the events timeline, and a stack planned, applied and watched. A second test:
a value only the server refuses shows the server's message next to its field and appends
nothing.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import FIXTURE, Gateway

pytestmark = pytest.mark.engine

SLOW = 45_000  # ms: containers starting on a busy two-core machine


def head(gw: Gateway) -> int:
    """The log's newest position (0 when empty)."""
    records = gw.client.get("/system/events", params={"order": "desc", "limit": 1}).json()
    return int(records[0]["position"]) if records else 0


def instances(page: Any) -> list[str]:
    rows = page.locator("table.replicas tbody tr[data-instance]")
    return list(rows.evaluate_all("rows => rows.map(r => r.dataset.instance)"))


def wait_replaced(page: Any, old: list[str]) -> None:
    """Until the replicas table shows two healthy replicas of the current spec, neither of
    them one of `old` (a rolling update has finished)."""
    page.wait_for_function(
        """old => {
            const rows = [...document.querySelectorAll('table.replicas tbody tr[data-instance]')];
            return rows.length === 2 && rows.every(r => !old.includes(r.dataset.instance)
                && r.cells[3].innerText.trim() === 'healthy');
        }""", arg=old, timeout=SLOW)


def test_login_deploy_invoke_logs_scale_edit_rollback_delete(
        page: Any, shot: Any, ui_gateway: Gateway) -> None:
    gw = ui_gateway
    name = "ui-" + uuid.uuid4().hex[:6]
    marker = f"hello from the dashboard {uuid.uuid4().hex[:8]}"

    # log in: / redirects to /ui/, which asks for the credentials the context carries
    assert httpx.get(gw.url + "/ui/").status_code == 401
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/"))
    expect(page.get_by_role("heading", name=re.compile("^Functions"))).to_be_visible()
    expect(page.locator("table.functions tbody")).to_contain_text(
        "No functions in this namespace yet.")
    shot("01-functions-empty")

    # deploy from the form; tee copies the body to stderr, which the watchdog logs
    page.get_by_role("link", name="Deploy a function").click()
    expect(page.get_by_role("heading", name="Deploy a function")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Image").fill(FIXTURE.format("echo"))
    page.get_by_label("Process (fprocess)").fill("tee /dev/stderr")
    page.get_by_label("Annotations").fill("owner=ui-test")
    shot("02-deploy-form")
    page.get_by_role("button", name="Deploy").click()

    # the function page: it becomes healthy
    expect(page).to_have_url(re.compile(rf"#/function/openfaas-fn/{name}$"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("#status-health")).to_have_text("all healthy", timeout=SLOW)
    expect(page.locator("#status-replicas")).to_have_text("1 healthy of 1 desired")
    replicas = page.locator("table.replicas tbody tr[data-instance]")
    expect(replicas).to_have_count(1)
    expect(replicas.first).to_contain_text("healthy")
    expect(page.locator("#spec-image")).to_have_text(FIXTURE.format("echo"))
    shot("03-function-healthy")

    # invoke it from the panel and see the answer
    page.get_by_label("Body").fill(marker)
    page.get_by_role("button", name="Invoke", exact=True).click()
    expect(page.locator("#invoke-status")).to_have_text(re.compile(r"^200"))
    expect(page.locator("#invoke-response")).to_have_text(marker)

    # its log line arrives in the live pane
    expect(page.locator("#log-lines")).to_contain_text(f"stderr: {marker}", timeout=SLOW)
    shot("04-invoked-and-logged")

    # scale to 2: two healthy replicas
    page.get_by_label("Desired replicas").fill("2")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("#status-replicas")).to_have_text("2 healthy of 2 desired",
                                                          timeout=SLOW)
    expect(replicas).to_have_count(2, timeout=SLOW)
    for i in range(2):
        expect(replicas.nth(i)).to_contain_text("healthy")
    expect(page.locator("#log-instance option")).to_have_count(3)  # all + two replicas
    shot("05-scaled-to-2")

    # edit: a new variable; the history shows the new version and its diff
    scaled = instances(page)
    page.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name=f"Edit {name}")).to_be_visible()
    expect(page.get_by_label("Image")).to_have_value(FIXTURE.format("echo"))
    page.get_by_label("Environment").fill("GREETING=hi")
    shot("06-edit-form")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"#/function/openfaas-fn/{name}$"))
    history = page.locator("table.history tbody tr")
    newest = history.first
    expect(newest).to_contain_text("updated")
    expect(newest).to_contain_text("envVars.GREETING")
    expect(newest.locator("ins")).to_have_text("hi")
    expect(page.locator("#spec-env")).to_contain_text("GREETING")
    versions = [int(v) for v in history.evaluate_all("rows => rows.map(r => r.dataset.version)")]
    assert versions == [3, 2, 1]  # updated, scaled, deployed
    wait_replaced(page, scaled)
    shot("07-history-after-edit")

    # roll back to v1: the variable goes again, as a new version
    edited = instances(page)
    page.get_by_role("button", name="Roll back to v1").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Roll back {name} to v1?")
    dialog.get_by_role("button", name="Roll back").click()
    expect(history).to_have_count(4)
    expect(newest).to_contain_text("updated")
    expect(newest.locator("del")).to_have_text("hi")
    expect(page.locator("#spec-env")).to_have_text("none")
    status = gw.client.get(f"/system/function/{name}").json()
    assert "envVars" not in status and status["envProcess"] == "tee /dev/stderr"
    assert status["annotations"] == {"owner": "ui-test"} and status["replicas"] == 2
    # the rolling update: two new replicas replace the two old ones
    wait_replaced(page, edited)
    expect(page.locator("#status-replicas")).to_have_text("2 healthy of 2 desired",
                                                          timeout=SLOW)
    shot("08-rolled-back")

    # the functions list shows it with its last change
    page.get_by_role("link", name="Functions", exact=True).click()
    row = page.locator(f'table.functions tr[data-name="{name}"]')
    expect(row).to_contain_text("2/2", timeout=SLOW)
    expect(row).to_contain_text("admin")
    expect(row.get_by_role("img", name="all healthy")).to_be_visible()
    shot("09-functions-list")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("10-functions-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # delete with confirmation
    row.get_by_role("link", name=name).click()
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page).to_have_url(re.compile(r"#/functions$"))
    expect(page.locator("table.functions tbody")).to_contain_text(
        "No functions in this namespace yet.")
    assert gw.client.get(f"/system/function/{name}").status_code == 404
    shot("11-deleted")

    # the audit timeline has all of it, newest first
    page.get_by_role("link", name="Events", exact=True).click()
    events = page.locator("table.events tbody tr")
    expect(events.first).to_contain_text("function.removed")
    types = events.locator(".badge").all_inner_texts()
    assert types[:6] == ["function.removed", "function.updated", "function.updated",
                         "function.scaled", "function.deployed"][:len(types[:6])]
    shot("12-events")

    # a stack: its plan as a diff, then applied and watched (asleep: no container to wait for)
    page.get_by_role("link", name="Stack", exact=True).click()
    page.get_by_label("stack.yml").fill(
        "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
        f"  {name}:\n    image: {FIXTURE.format('echo')}\n"
        "    labels:\n      com.openfaas.scale.min: \"0\"\n")
    page.get_by_role("button", name="Plan").click()
    step = page.locator(f'#stack-plan .plan-step[data-name="{name}"]')
    expect(step).to_contain_text("create")
    expect(step).to_contain_text("0 replicas")
    assert gw.client.get(f"/system/function/{name}").status_code == 404  # a dry run
    shot("13-stack-plan")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#stack-progress")).to_contain_text(
        "Done: every function is as the stack says.", timeout=SLOW)
    assert gw.client.get(f"/system/function/{name}").json()["replicas"] == 0
    shot("14-stack-applied")


def test_a_value_the_server_refuses_is_shown_at_its_field(
        page: Any, shot: Any, ui_gateway: Gateway) -> None:
    gw = ui_gateway
    before = head(gw)
    page.goto("/ui/#/deploy")
    page.get_by_label("Name", exact=True).fill("Bad_Name")
    page.get_by_label("Image").fill(FIXTURE.format("echo"))
    page.get_by_role("button", name="Deploy").click()
    # checked in the page first: nothing is sent
    expect(page.locator("#f-service-error")).to_contain_text("is not a valid name")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")

    # a label only the server can judge: its 400 message lands next to the labels
    page.get_by_label("Name", exact=True).fill("bad-value")
    page.get_by_label("Labels").fill("com.openfaas.scale.min=lots")
    page.get_by_role("button", name="Deploy").click()
    error = page.locator("#f-labels-error")
    expect(error).to_have_text("labels.com.openfaas.scale.min: 'lots' is not a whole number")
    expect(page.get_by_label("Labels")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-service-error")).to_be_empty()
    expect(page).to_have_url(re.compile(r"#/deploy$"))
    shot("20-deploy-refused")
    assert head(gw) == before
    assert gw.client.get("/system/function/bad-value").status_code == 404


def test_phone_width_and_keyboard_only(page: Any, shot: Any, ui_gateway: Gateway) -> None:
    """At a phone's width nothing runs off the side; with the keyboard alone one can reach
    the navigation, open the deploy form, fill it and be told what is wrong."""
    page.set_viewport_size({"width": 390, "height": 844})
    for route in ("#/functions", "#/events", "#/stack", "#/deploy"):
        page.goto(f"/ui/{route}")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{route} is {overflow}px wider than the phone's screen"
    shot("30-deploy-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/ui/#/functions")
    expect(page.get_by_role("heading", name=re.compile("^Functions"))).to_be_visible()
    # Tab until the "Deploy a function" link has the focus, then follow it with Enter
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement?.textContent?.trim()") == (
                "Deploy a function"):
            break
    else:
        pytest.fail("the deploy link cannot be reached with Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Deploy a function")).to_be_visible()
    page.get_by_label("Name", exact=True).focus()
    page.keyboard.type("Bad_Name")
    page.keyboard.press("Enter")  # submits the form from a text field
    expect(page.locator("#f-service-error")).to_contain_text("is not a valid name")
    # the focus ring is visible on the focused field (an outline or a box shadow)
    ring = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' || s.boxShadow !== 'none'; }""")
    assert ring, "the focused element shows no focus indicator"
