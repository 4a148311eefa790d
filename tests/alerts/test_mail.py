"""Alert e-mail: a local SMTP sink that demands STARTTLS receives Swedish text holding only
viewer values, with no count below the privacy k."""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from app.alerts.deliver import deliver_due
from app.alerts.mail import compose, period_words
from app.ops.devdb import free_port
from app.settings import Settings
from tests.alerts.conftest import POLICE, Figure, Spot, last_delivery, subscribe

AREA = "1265"  # Sjöbo
K = 5


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "est test smtp")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Sink:
    """What the SMTP server received: each message and whether it came over TLS."""

    messages: list[tuple[EmailMessage, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.messages.append((mail, session.ssl is not None))
        return "250 OK"


@pytest.fixture()
def smtp(tmp_path: Path, settings: Settings) -> Iterator[tuple[Sink, Settings]]:
    """An SMTP sink on 127.0.0.1 that refuses mail before STARTTLS, and settings using it."""
    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    sink = Sink()
    port = free_port()
    server = Controller(
        sink, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )
    server.start()
    using = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_from": "lagesbild@est.example",
            "smtp_ca_file": str(cert),
            "public_base_url": "https://est.example",
        }
    )
    yield sink, using
    server.stop()


def _counts(text: str) -> list[float]:
    """Every number the text gives as a count ("cirka 20")."""
    return [float(n.replace(",", ".")) for n in re.findall(r"cirka (\d+(?:,\d+)?)", text)]


def test_the_smtp_sink_receives_swedish_text_over_starttls_with_no_count_below_k(
    system_engine: Engine,
    alert_orgs: dict[str, int],
    runs_of: Any,
    unsubscribe: list[int],
    smtp: tuple[Sink, Settings],
) -> None:
    sink, using = smtp
    sub = subscribe(system_engine, alert_orgs[POLICE], AREA, email="ledningsgrupp@lpo.example")
    unsubscribe.append(sub)
    runs = runs_of(AREA)
    runs.publish(
        48,
        (Spot("h-mail", viewer_count=20, incident_count=23),),
        (Figure("skadegorelse", this_week=25, last_week=0, mean=1.25),),
    )
    report = deliver_due(system_engine, using)
    assert report.sent == 2 and report.failed == 0
    by_subject = {m["Subject"]: (m, tls) for m, tls in sink.messages}
    assert set(by_subject) == {
        "Ny hotspot i Sjöbo, vecka 48",
        "Ökning av skadegörelse i Sjöbo, vecka 48",
    }
    for mail, over_tls in by_subject.values():
        assert over_tls
        assert mail["To"] == "ledningsgrupp@lpo.example"
        assert mail["From"] == "lagesbild@est.example"
        body = mail.get_content()
        assert all(n >= K for n in _counts(body)), body
        assert "23" not in body  # the hotspot's exact count
        assert "https://est.example/map?area=1265&week=2030-W48" in body
    hotspot = by_subject["Ny hotspot i Sjöbo, vecka 48"][0].get_content()
    assert "En ny hotspot har upptäckts i Sjöbo vecka 48." in hotspot
    assert "cirka 20 (visat antal, avrundat)" in hotspot and "hotspot=h-mail" in hotspot
    rise = by_subject["Ökning av skadegörelse i Sjöbo, vecka 48"][0].get_content()
    assert "Denna vecka: cirka 25 händelser" in rise
    assert "Förra veckan: färre än 5 händelser" in rise  # a shown 0
    assert "Snitt för de 12 veckorna före: färre än 5 händelser" in rise  # a mean of 1.25
    assert "p < 0,001" in rise


def test_without_an_smtp_server_the_delivery_says_what_to_set(
    system_engine: Engine,
    alert_orgs: dict[str, int],
    runs_of: Any,
    unsubscribe: list[int],
    settings: Settings,
) -> None:
    sub = subscribe(system_engine, alert_orgs[POLICE], "1256", email="lg@lpo.example")
    unsubscribe.append(sub)
    runs_of("1256").publish(47, (Spot("h-nomail"),))
    report = deliver_due(system_engine, settings)
    assert report.retrying >= 1
    assert "EST_SMTP_HOST" in last_delivery(system_engine, sub).last_error


def test_every_emerging_class_that_alerts_has_a_swedish_subject() -> None:
    base = {
        "area": {"code": "1267", "name": "Höör"},
        "period": "2026-T3",
        "suppression_k": 5,
        "provisional": True,
        "hotspot": {"id": "h-1", "viewer_count": 10, "point": {"lon": 13.5, "lat": 55.9}},
    }
    subjects = {
        kind: compose({**base, "kind": kind}, None).subject
        for kind in ("new_hot", "consecutive_hot", "intensifying_hot")
    }
    assert subjects["intensifying_hot"] == (
        "Tilltagande hotspot enligt trendanalysen i Höör, tertial 3 2026"
    )
    text = compose({**base, "kind": "new_hot"}, None).text
    assert "Perioden pågår fortfarande" in text and "Karta" not in text
    assert period_words("2026-W05") == "vecka 5"
