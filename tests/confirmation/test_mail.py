"""delivery/mail.py against a real SMTP server on loopback: plain, STARTTLS (required, refused when
not offered, with a user and password), TLS from the start, one kept connection, reconnecting,
and failures that name no recipient."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest

from tests.confirmation.conftest import PASSWORD, USER, Inbox, LoopbackCA, SmtpServer, check_login
from widget_server import messages
from widget_server.delivery.errors import DeliveryFailed
from widget_server.delivery.mail import Mail, Mailer, SmtpTarget

RECIPIENT = "ana.teacher@example.org"


def message(to: str = RECIPIENT, subject: str = "Please confirm") -> Mail:
    mail = EmailMessage()
    mail["From"] = "Pledge <pledge@campaign.example>"
    mail["To"] = to
    mail["Subject"] = subject
    mail.set_content("Hello")
    return Mail("pledge@campaign.example", to, mail.as_bytes())


def send_all(mailer: Mailer, *mails: Mail) -> None:
    async def go() -> None:
        try:
            for mail in mails:
                await mailer.send(mail)
        finally:
            await mailer.close()

    asyncio.run(go())


def failure(mailer: Mailer, mail: Mail) -> str:
    with pytest.raises(DeliveryFailed) as caught:
        send_all(mailer, mail)
    reason = caught.value.reason
    assert RECIPIENT not in reason and "ana" not in reason.lower(), reason
    return reason


def test_the_url_gives_scheme_host_port_and_percent_decoded_credentials() -> None:
    target = SmtpTarget.from_url("smtps://pledge%40campaign.example:p%40ss%3Aw%2Frd@mail.example.org")
    assert target == SmtpTarget("smtps", "mail.example.org", 465, "pledge@campaign.example", "p@ss:w/rd")
    assert SmtpTarget.from_url("smtp+starttls://mail.example.org").port == 587
    assert SmtpTarget.from_url("smtp://10.0.0.2").port == 25


def test_plain_smtp_delivers_to_the_to_address(smtp_server: SmtpServer, inbox: Inbox) -> None:
    send_all(Mailer(smtp_server.url()), message())
    [got] = inbox.wait_for(1)
    assert got.rcpt_tos == [RECIPIENT]
    assert got.mail_from == "pledge@campaign.example"
    assert got.message["Subject"] == "Please confirm"


def test_one_connection_carries_a_surge_of_messages(smtp_server: SmtpServer, inbox: Inbox) -> None:
    send_all(Mailer(smtp_server.url()), *(message(subject=f"n{i}") for i in range(5)))
    assert [r.message["Subject"] for r in inbox.wait_for(5)] == [f"n{i}" for i in range(5)]
    assert inbox.greetings == 1


def test_a_connection_idle_past_its_time_is_closed_and_a_new_one_opened(smtp_server: SmtpServer, inbox: Inbox) -> None:
    async def go() -> None:
        mailer = Mailer(smtp_server.url(), keep_open=0.05)
        await mailer.send(message())
        await asyncio.sleep(0.3)  # the mailer's own idle timer, not a timing assertion
        await mailer.send(message())
        await mailer.close()

    asyncio.run(go())
    inbox.wait_for(2)
    assert inbox.greetings == 2


def test_a_dropped_connection_is_opened_again(smtp_server: SmtpServer, inbox: Inbox) -> None:
    async def go() -> None:
        mailer = Mailer(smtp_server.url())
        await mailer.send(message(subject="before"))
        smtp_server.stop()  # drops the kept connection
        smtp_server.start()
        await mailer.send(message(subject="after"))
        await mailer.close()

    asyncio.run(go())
    assert [r.message["Subject"] for r in inbox.wait_for(2)] == ["before", "after"]


def test_a_server_that_is_down_is_a_failure_to_retry(smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    reason = failure(Mailer(smtp_server.url(), timeout=2), message())
    assert reason.startswith("could not reach the mail server")


def test_a_refused_recipient_gives_the_code_and_never_the_address(smtp_server: SmtpServer, inbox: Inbox) -> None:
    inbox.refuse_rcpt = f"550 5.1.1 <{RECIPIENT}>: no such user here"
    reason = failure(Mailer(smtp_server.url()), message())
    assert reason == messages.MAIL_REFUSED_RECIPIENT.format(codes="550")
    assert inbox.received == []


def test_starttls_is_required_when_the_url_asks_for_it(smtp_server: SmtpServer, inbox: Inbox) -> None:
    """smtp+starttls:// to a server that offers no STARTTLS: nothing is sent in clear."""
    url = f"smtp+starttls://{USER}:secret@127.0.0.1:{smtp_server.port}"
    assert failure(Mailer(url), message()) == messages.MAIL_NO_STARTTLS
    assert inbox.settle(0.1) == 0


def test_starttls_with_a_trusted_certificate_logs_in_and_delivers(
    test_ca: LoopbackCA, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(
        inbox,
        tls_context=test_ca.server_context(),
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    server.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
        credentials = (
            f"{USER}:{PASSWORD.replace('%', '%25').replace('@', '%40').replace('/', '%2F').replace(':', '%3A')}"
        )
        send_all(Mailer(server.url("smtp+starttls", credentials)), message())
        assert inbox.wait_for(1)[0].rcpt_tos == [RECIPIENT]

        # A wrong password: refused, and the reason is the code, not the password.
        reason = failure(Mailer(server.url("smtp+starttls", f"{USER}:wrong")), message())
        assert reason == messages.MAIL_REFUSED_LOGIN.format(code=535) and "wrong" not in reason
    finally:
        server.stop()


def test_a_certificate_nobody_vouches_for_is_refused(test_ca: LoopbackCA, inbox: Inbox) -> None:
    """Without the test's CA in the trust store, the server's certificate is not believed."""
    server = SmtpServer(inbox, tls_context=test_ca.server_context(), require_starttls=True)
    server.start()
    try:
        reason = failure(Mailer(server.url("smtp+starttls")), message())
        assert reason.startswith("the mail server's certificate could not be trusted"), reason
        assert inbox.received == []
    finally:
        server.stop()


def test_smtps_speaks_tls_from_the_first_byte(
    test_ca: LoopbackCA, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = SmtpServer(inbox, ssl_context=test_ca.server_context())
    server.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.ca_file))
        send_all(Mailer(server.url("smtps")), message(), message())
        assert len(inbox.wait_for(2)) == 2
        assert inbox.greetings == 1
    finally:
        server.stop()


class SlowInbox(Inbox):
    """Takes its time over each message, as a busy mail server does."""

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        await asyncio.sleep(0.8)
        return await super().handle_DATA(server, session, envelope)


def test_a_send_given_up_on_finishes_alone_before_the_next_uses_the_connection() -> None:
    """The outbox worker cancels a send that takes too long; the exchange still ends on its own
    thread, and the next send waits for it rather than sharing (or dropping) its connection: each
    message arrives once."""
    inbox = SlowInbox()
    server = SmtpServer(inbox)
    server.start()
    try:
        mailer = Mailer(server.url())

        async def go() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(mailer.send(message(subject="first")), 0.2)
            await mailer.send(message(subject="second"))
            await mailer.close()

        asyncio.run(go())
        got = inbox.wait_for(2)
        assert [m.message["Subject"] for m in got] == ["first", "second"]
        assert inbox.settle(1.0) == 2
    finally:
        server.stop()
