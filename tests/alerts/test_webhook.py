"""Webhooks: a local receiver gets signed JSON with the event id, a failing receiver is retried
with backoff and every attempt logged, and no webhook reaches an internal address unless the
operator allows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from app.alerts import subscriptions
from app.alerts.deliver import MAX_ATTEMPTS, RETRY_DELAYS_S, deliver_due
from app.alerts.webhook import EVENT_HEADER, SIGNATURE_HEADER, check_url, verify
from app.core.errors import InvalidInput
from app.settings import Settings
from tests.alerts.conftest import KOMMUN, WHO, Receiver, RunMaker, Spot, last_delivery, subscribe
from tests.conftest import World

AREA = "1263"  # Svedala


@dataclass
class Hooked:
    """The local receiver subscribed to an area, and what a test does with it."""

    engine: Engine
    subscription: int
    runs: RunMaker
    receiver: Receiver
    settings: Settings  # the receiver allowed, and a public address for map links

    def deliver(self, now: datetime | None = None, settings: Settings | None = None) -> None:
        """Send what is due."""
        deliver_due(self.engine, settings or self.settings, now=now)

    def delivery(self) -> Any:
        """The subscription's newest delivery."""
        return last_delivery(self.engine, self.subscription)

    def secret(self) -> str:
        """The subscription's current secret, as the nightly role reads it."""
        with self.engine.connect() as conn:
            return str(
                conn.scalar(
                    text("SELECT secret FROM est.alert_subscription WHERE id = :id"),
                    {"id": self.subscription},
                )
            )


@pytest.fixture()
def hooked(
    system_engine: Engine,
    settings: Settings,
    alert_orgs: dict[str, int],
    runs_of: Any,
    unsubscribe: list[int],
    receiver: Receiver,
) -> Callable[[str], Hooked]:
    """Subscribe the kommun's local receiver to an area."""
    allowing = settings.model_copy(
        update={"alert_allow_hosts": ["127.0.0.1"], "public_base_url": "https://est.example"}
    )

    def hook(area: str) -> Hooked:
        sub = subscribe(system_engine, alert_orgs[KOMMUN], area, url=receiver.url)
        unsubscribe.append(sub)
        return Hooked(system_engine, sub, runs_of(area), receiver, allowing)

    return hook


def test_the_receiver_gets_signed_json_that_verifies_with_either_secret_after_a_rotation(
    hooked: Callable[[str], Hooked],
) -> None:
    hook = hooked(AREA)
    first = hook.secret()
    hook.runs.publish(10, (Spot("h-w1"),))
    hook.deliver()
    (headers, body), *_ = hook.receiver.received
    event = hook.runs.events()[0]
    assert headers[EVENT_HEADER] == str(event.id)
    assert headers["Content-Type"] == "application/json"
    sent = orjson.loads(body)
    assert sent["event_id"] == event.id and sent["kind"] == "new_hotspot"
    assert sent["hotspot"]["id"] == "h-w1" and sent["hotspot"]["viewer_count"] == 20
    assert sent["map_url"] == "https://est.example/map?area=1263&week=2030-W10&hotspot=h-w1"
    signed = headers[SIGNATURE_HEADER]
    assert verify(signed, body, [first])
    assert not verify(signed, body, ["whsec_wrong"])
    assert not verify(signed, body.replace(b"h-w1", b"h-w2"), [first])
    assert not verify(signed, body, [first], now=time.time() + 900)  # replayed later

    with hook.engine.begin() as conn:
        second = subscriptions.rotate_secret(conn, WHO, hook.subscription, None)
    hook.runs.publish(11, (Spot("h-w1", "stable"), Spot("h-w2")))
    hook.deliver()
    headers, body = hook.receiver.received[-1]
    assert orjson.loads(body)["hotspot"]["id"] == "h-w2"
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    for receiver_knows in ([first], [second], [second, first]):
        assert verify(headers[SIGNATURE_HEADER], body, receiver_knows)
    # dropping the previous secret: only the new one signs
    with hook.engine.begin() as conn:
        subscriptions.update(conn, WHO, hook.subscription, None, drop_previous_secret=True)
    hook.runs.publish(12, (Spot("h-w3"),))
    hook.deliver()
    headers, body = hook.receiver.received[-1]
    assert verify(headers[SIGNATURE_HEADER], body, [second])
    assert not verify(headers[SIGNATURE_HEADER], body, [first])
    assert len(hook.receiver.received) == 3  # each event once


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged(
    hooked: Callable[[str], Hooked],
) -> None:
    hook = hooked(AREA)
    hook.runs.publish(20, (Spot("h-r"),))
    hook.receiver.answers += [500, 503]
    start = datetime.now(UTC) + timedelta(seconds=1)
    hook.deliver(start)
    first = hook.delivery()
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 500)
    assert first.next_attempt_at == start + timedelta(seconds=RETRY_DELAYS_S[0])
    hook.deliver(start + timedelta(seconds=30))  # not due yet
    assert len(hook.receiver.received) == 1
    hook.deliver(start + timedelta(seconds=61))
    assert hook.delivery().next_attempt_at == start + timedelta(seconds=361)
    hook.deliver(start + timedelta(seconds=361))
    done = hook.delivery()
    assert (done.status, done.attempts, done.last_status_code) == ("sent", 3, 200)
    assert done.delivered_at == start + timedelta(seconds=361) and done.next_attempt_at is None
    assert list(done.log) == ["failed:500", "failed:503", "sent:200"]
    # every attempt carried the same event id, for the receiver to drop repeats
    assert len({h[EVENT_HEADER] for h, _ in hook.receiver.received}) == 1


def test_after_the_last_attempt_a_delivery_is_failed_and_shown_in_the_metrics(
    hooked: Callable[[str], Hooked], client: TestClient, world: World
) -> None:
    area = "1272"  # Bromölla
    hook = hooked(area)
    hook.runs.publish(21, (Spot("h-f"),))
    hook.receiver.answers += [500] * MAX_ATTEMPTS
    when = datetime.now(UTC) + timedelta(seconds=1)
    for delay in (0, *RETRY_DELAYS_S):
        when += timedelta(seconds=delay)
        hook.deliver(when)
    failed = hook.delivery()
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 6, None)
    assert list(failed.log) == ["failed:500"] * 6 and "500" in failed.last_error
    hook.deliver(when + timedelta(days=2))
    assert len(hook.receiver.received) == MAX_ATTEMPTS  # given up: never tried again

    r = client.get("/metrics", headers=world.headers("drift", "admin"))
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    shown = {
        s.labels["status"]: s.value
        for s in families["est_alert_deliveries"].samples
        if s.labels["area"] == area and s.labels["channel"] == "webhook"
    }
    assert shown == {"pending": 0.0, "failed": 1.0}


def test_two_senders_at_once_send_each_delivery_once(hooked: Callable[[str], Hooked]) -> None:
    hook = hooked(AREA)
    hook.runs.publish(30, tuple(Spot(f"h-{i}") for i in range(6)))
    senders = [threading.Thread(target=hook.deliver) for _ in range(2)]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    ids = [orjson.loads(body)["hotspot"]["id"] for _, body in hook.receiver.received]
    assert sorted(ids) == [f"h-{i}" for i in range(6)]


def test_a_delivery_checks_the_address_again_and_refuses_it_without_the_allow_list(
    hooked: Callable[[str], Hooked], settings: Settings
) -> None:
    hook = hooked("1270")
    hook.runs.publish(22, (Spot("h-x"),))
    hook.deliver(settings=settings)  # the allow-list no longer names 127.0.0.1
    refused = hook.delivery()
    assert refused.status == "pending" and "loopback" in refused.last_error
    assert hook.receiver.received == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:8000/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://240.0.0.1/hook",
    ],
)
def test_a_webhook_to_an_internal_address_is_refused_naming_url(
    client: TestClient, world: World, url: str
) -> None:
    r = client.post(
        "/api/v1/alerts/subscriptions",
        json={"area": "1285", "url": url},
        headers=world.headers("kommun-1285", "admin"),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"].startswith("url: ") and r.json()["field"] == "url"


@pytest.mark.parametrize(
    "url",
    ["ftp://example.se/x", "file:///etc/passwd", "https://user:pw@example.se/", "no url", ""],
)
def test_only_http_and_https_urls_without_credentials_are_taken(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"^url: "):
        check_url(url, [])


def test_the_allow_list_names_hosts_or_networks() -> None:
    assert check_url("http://localhost:9/x", ["localhost"]).address == "127.0.0.1"
    assert check_url("http://127.0.0.1:9/x", ["127.0.0.0/8"]).path == "/x"
    with pytest.raises(InvalidInput):
        check_url("http://10.0.0.1/x", ["127.0.0.0/8", "localhost"])
    # a public address needs no allowing
    assert check_url("https://192.0.43.10/hook?a=1", []).path == "/hook?a=1"
