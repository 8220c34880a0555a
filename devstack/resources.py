"""Creates what the app needs in an AWS account (or moto): tables with their indexes and TTLs,
the versioned bucket with its lifecycle rules, and the job queues. Idempotent."""

from __future__ import annotations

from botocore.exceptions import ClientError

from chalicelib import aws, queue, storage
from chalicelib.config import settings
from chalicelib.models import ALL_MODELS


def ensure_tables() -> None:
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True)  # also turns on the model's TTL attribute


def ensure_bucket() -> None:
    s3 = aws.s3()
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except ClientError:
        kwargs = {}
        if settings.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        s3.create_bucket(Bucket=settings.bucket, **kwargs)
    s3.put_bucket_versioning(
        Bucket=settings.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=settings.bucket, LifecycleConfiguration={"Rules": storage.LIFECYCLE_RULES}
    )


def ensure_queues() -> None:
    sqs = aws.sqs()
    dlq_url = sqs.create_queue(QueueName=queue.JOBS_DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sqs.create_queue(QueueName=queue.JOBS_QUEUE_NAME, Attributes=queue.queue_attributes(dlq_arn))


def ensure_all() -> None:
    ensure_tables()
    ensure_bucket()
    ensure_queues()
