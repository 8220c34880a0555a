"""Creates what the app needs in an AWS account (or moto): tables with their indexes and TTLs,
the versioned bucket with its lifecycle rules, and the job queues. Idempotent."""

from __future__ import annotations

from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from chalicelib.adapters import aws, storage
from chalicelib.adapters import job_queue as queue
from chalicelib.config import settings
from chalicelib.maintenance import reorder, upgrades
from chalicelib.models import ALL_MODELS, Collaborator, Project, User
from chalicelib.models.base import shared_connection


def ensure_tables() -> None:
    indexed = set()
    for model in ALL_MODELS:
        if not model.exists():
            model.create_table(wait=True)  # also turns on the model's TTL attribute
        elif _add_missing_indexes(model):
            indexed.add(model)
    if User in indexed:
        upgrades.fill_directory()
    if indexed & {Project, Collaborator}:  # the paged project list's indexes
        reorder.reorder_all()


def _add_missing_indexes(model) -> bool:
    """Indexes a newer version of a model declares, added to a table kept from an older one
    (the local stack's data outlives upgrades; CloudFormation does this on AWS)."""
    client = shared_connection().client
    table = client.describe_table(TableName=model.Meta.table_name)["Table"]
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    added = False
    for index in model._get_schema()["global_secondary_indexes"]:
        if index["index_name"] in present:
            continue
        client.update_table(
            TableName=model.Meta.table_name,
            AttributeDefinitions=index["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[{"Create": {
                "IndexName": index["index_name"], "KeySchema": index["key_schema"],
                "Projection": index["projection"]}}],
        )
        added = True
    return added


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
    if settings.public_url:  # the web console served there uploads to the bucket
        origin = "://".join(urlsplit(settings.public_url)[:2])
        rules = browser_cors_rules(origin)
        s3.put_bucket_cors(Bucket=settings.bucket, CORSConfiguration={"CORSRules": rules})


def browser_cors_rules(origin: str) -> list[dict]:
    """The local bucket's CORS: the web console at `origin` PUTs the parts of presigned uploads
    straight to S3 (another origin here: moto's port) and reads their ETags; downloads are
    navigations and thumbnails plain images. On AWS, infra/storage.py's CORS_RULES do this."""
    return [{"AllowedOrigins": [origin], "AllowedMethods": ["PUT"], "AllowedHeaders": ["content-type"],
             "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}]


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
