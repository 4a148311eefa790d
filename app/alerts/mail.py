"""Alert e-mail: Swedish plain text from the event's viewer values, sent through SMTP.

The text says only what the payload holds, and no count below the privacy k: a shown value
smaller than k (a week with nothing shown, a mean of a few shown weeks) reads "färre än k".
The server is EST_SMTP_HOST:EST_SMTP_PORT, upgraded with STARTTLS unless EST_SMTP_STARTTLS is
false, its certificate checked against the system's CAs or EST_SMTP_CA_FILE.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from app.alerts.events import NEW_HOTSPOT, RISE
from app.core import swedish
from app.core.errors import InvalidInput, NotReady
from app.settings import Settings

MAX_ADDRESS_LENGTH = 254
_ADDRESS = re.compile(r"[^@\s,;:<>()\[\]\"\\]+@[^@\s,;:<>()\[\]\"\\]+\.[^@\s,;:<>()\[\]\"\\.]+")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_TERTIAL = re.compile(r"^(\d{4})-T(\d)$")
# What a group's figures are called: for a week's run and for a tertial's.
FIGURE_WORDS = {
    "week": {
        "this_week": "Denna vecka",
        "last_week": "Förra veckan",
        "same_week_last_year": "Samma vecka i fjol",
        "mean_12_weeks": "Snitt för de 12 veckorna före",
    },
    "tertial": {
        "this_week": "Denna tertial",
        "last_week": "Tertialen före",
        "same_week_last_year": "Samma tertial i fjol",
        "mean_12_weeks": "Snitt för de tre tertialen före",
    },
}
TEST_WORDS = {
    "baseline_mean": "mot snittet",
    "previous_period": "mot perioden före",
    "same_period_last_year": "mot samma period i fjol",
}


@dataclass(frozen=True)
class Message:
    """An alert mail: its subject and plain text."""

    subject: str
    text: str


@dataclass(frozen=True)
class Attachment:
    """A file sent with a mail (the weekly report's viewer PDF)."""

    filename: str
    content: bytes
    media_type: str = "application/pdf"


def check_address(address: str) -> str:
    """An e-mail address as given; InvalidInput naming `email` when it is none."""
    if len(address) > MAX_ADDRESS_LENGTH or _ADDRESS.fullmatch(address) is None:
        raise InvalidInput(
            f"email: {address[:80]!r} is no e-mail address such as lagesbild@kommun.se",
            field="email",
        )
    return address


def period_words(label: str) -> str:
    """2026-W48 as "vecka 48", 2026-T3 as "tertial 3 2026"."""
    if (week := _WEEK.match(label)) is not None:
        return f"vecka {int(week[2])}"
    if (tertial := _TERTIAL.match(label)) is not None:
        return f"tertial {tertial[2]} {tertial[1]}"
    return label


def _count(value: float | None, k: int) -> str:
    """A shown count in words, never one below k."""
    if value is None:
        return "inget visat antal"
    if value < k:
        return f"färre än {k}"
    shown = f"{value:.1f}".replace(".", ",").removesuffix(",0")
    return f"cirka {shown}"


def _p(value: float) -> str:
    return "< 0,001" if value < 0.001 else f"= {value:.2g}".replace(".", ",")


def _group_name(name: str) -> str:
    """A group's name inside a sentence: Skadegörelse as skadegörelse, ANDTS as it is."""
    return name if name[:2].isupper() else name[:1].lower() + name[1:]


def compose(payload: dict[str, Any], map_url: str | None) -> Message:
    """The Swedish subject and text of an event's payload."""
    area = payload["area"]["name"]
    period = period_words(payload["period"])
    k = int(payload["suppression_k"])
    kind = payload["kind"]
    if kind == RISE:
        group = payload["group"]
        subject = f"Ökning av {_group_name(group['name'])} i {area}, {period}"
        words = FIGURE_WORDS["tertial" if _TERTIAL.match(payload["period"]) else "week"]
        lines = [
            f"{group['name']} har ökat i {area} {period}, mer än slumpen förklarar.",
            "",
            *(f"{words[n]}: {_count(v, k)} händelser" for n, v in group["shown"].items()),
            *(
                f"Ökningen {TEST_WORDS.get(name, name)}: p {_p(t['p'])}, "
                f"efter korrektion för alla jämförelser p {_p(t['p_adjusted'])}"
                for name, t in group["tests"].items()
            ),
        ]
    else:
        hotspot = payload["hotspot"]
        if kind == NEW_HOTSPOT:
            subject = f"Ny hotspot i {area}, {period}"
            first = f"En ny hotspot har upptäckts i {area} {period}."
        else:
            named = swedish.emerging_class(kind)
            subject = f"{named[:1].upper()}{named[1:]} enligt trendanalysen i {area}, {period}"
            first = f"Trendanalysen visar en {named} i {area} {period}."
        point = hotspot["point"]
        lines = [
            first,
            "",
            f"Hotspot: {hotspot['id']}",
            f"Antal händelser: {_count(hotspot['viewer_count'], k)} (visat antal, avrundat)",
            f"Plats: {point['lat']:.5f}, {point['lon']:.5f} (en punkt inom hotspotens rutor)",
        ]
    if payload.get("provisional"):
        lines.append("Perioden pågår fortfarande; siffrorna kan ändras.")
    if map_url:
        lines += ["", f"Karta: {map_url}"]
    lines += [
        "",
        "Meddelandet innehåller bara det som visas i lägesbilden: avrundade antal i rutor med "
        f"minst {k} händelser, aldrig enskilda händelser eller deras platser.",
        f"Din organisation prenumererar på larm för {area}; organisationens administratörer "
        "ändrar det i EST Lägesbild.",
    ]
    return Message(subject, "\n".join(lines) + "\n")


def send(
    settings: Settings,
    to: str,
    message: Message,
    event_id: int | None = None,
    *,
    attachments: Sequence[Attachment] = (),
    headers: Mapping[str, str] | None = None,
) -> None:
    """Send a mail (an alert's, or the weekly report's) through the configured SMTP server."""
    if not settings.smtp_host or not settings.smtp_from:
        raise NotReady("e-mail is not configured: set EST_SMTP_HOST and EST_SMTP_FROM")
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain="est-lagesbild")
    if event_id is not None:
        mail["X-EST-Event"] = str(event_id)
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(message.text)
    for attachment in attachments:
        main, sub = attachment.media_type.split("/", 1)
        mail.add_attachment(
            attachment.content, maintype=main, subtype=sub, filename=attachment.filename
        )
    tls = ssl.create_default_context(cafile=settings.smtp_ca_file)
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.alert_timeout_s
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=tls)
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(mail)
