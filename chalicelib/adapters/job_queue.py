"""The jobs queue: SQS messages that tell a worker which job to run, with a dead-letter queue
for messages that keep failing. The job itself lives in DynamoDB; a message only carries its id.

In AWS the stack passes the queue URLs (QFC_JOBS_QUEUE_URL, QFC_JOBS_DLQ_URL); the local stack
creates queues under the names below and they are looked up by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chalicelib.adapters import aws
from chalicelib.config import settings

JOBS_QUEUE_NAME = "qfc-jobs"
JOBS_DEAD_LETTER_QUEUE_NAME = "qfc-jobs-dlq"
# A received message stays invisible for longer than a job may run (QFC_JOB_TIMEOUT_SECONDS,
# 600 s by default), so that it only comes back when its worker died.
VISIBILITY_TIMEOUT_SECONDS = 900
# After this many receives without success a message is poison and moves to the dead-letter queue.
MAX_RECEIVES = 3


def _url_of(name: str, configured: str | None) -> str:
    return configured or aws.sqs().get_queue_url(QueueName=name)["QueueUrl"]


def jobs_queue_url() -> str:
    return _url_of(JOBS_QUEUE_NAME, settings.jobs_queue_url)


def dead_letter_queue_url() -> str:
    return _url_of(JOBS_DEAD_LETTER_QUEUE_NAME, settings.jobs_dead_letter_queue_url)


def queue_attributes(dead_letter_queue_arn: str) -> dict[str, str]:
    """The jobs queue's attributes, as the local stack creates it (infra declares the same)."""
    redrive = {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": str(MAX_RECEIVES)}
    return {"VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS), "RedrivePolicy": json.dumps(redrive)}


@dataclass(frozen=True)
class Message:
    job_id: str
    receipt_handle: str
    receive_count: int


def send(job_id: str, delay_seconds: int = 0) -> None:
    aws.sqs().send_message(QueueUrl=jobs_queue_url(), MessageBody=json.dumps({"job_id": job_id}),
                           DelaySeconds=delay_seconds)


def _messages(queue_url: str, wait_seconds: int) -> list[Message]:
    response = aws.sqs().receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=wait_seconds,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    messages = []
    for raw in response.get("Messages", []):
        try:
            job_id = str(json.loads(raw["Body"])["job_id"])
        except (ValueError, KeyError, TypeError):
            job_id = ""  # not one of ours: the caller drops it
        count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        messages.append(Message(job_id, raw["ReceiptHandle"], count))
    return messages


def receive(wait_seconds: int) -> list[Message]:
    return _messages(jobs_queue_url(), wait_seconds)


def receive_dead_letters(wait_seconds: int = 0) -> list[Message]:
    return _messages(dead_letter_queue_url(), wait_seconds)


def delete(message: Message, *, dead_letter: bool = False) -> None:
    url = dead_letter_queue_url() if dead_letter else jobs_queue_url()
    aws.sqs().delete_message(QueueUrl=url, ReceiptHandle=message.receipt_handle)
