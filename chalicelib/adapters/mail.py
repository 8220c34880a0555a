"""The server's mails (password reset links): sent with SES on AWS, written as files locally.

The local stack sets `QFC_MAIL_FOLDER` (`<data dir>/mail/`): each mail is one `.eml` file there,
which a person opens with any mail program or reads as text, and tests read. On AWS the mail goes
out through SES from `QFC_MAIL_SENDER`, an address or domain the operator has verified in SES.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters import aws
from chalicelib.config import settings
from chalicelib.errors import MailNotSent
from chalicelib.observability import logger


def send(to: str, subject: str, text: str) -> None:
    """Send a plain-text mail from the configured sender (which must be set)."""
    sender = settings.mail_sender
    if sender is None:
        raise RuntimeError("No mail sender is configured (QFC_MAIL_SENDER).")
    if settings.mail_folder:
        _write(Path(settings.mail_folder), sender, to, subject, text)
        return
    try:
        aws.ses().send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}},
        )
    except (ClientError, BotoCoreError) as error:
        logger.warning("SES did not send a mail", extra={"error": str(error)})
        raise MailNotSent() from error


def _write(folder: Path, sender: str, to: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(text)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.eml"
    partial = folder / (name + ".part")
    partial.write_bytes(bytes(message))
    partial.rename(folder / name)  # a reader never sees half a mail
