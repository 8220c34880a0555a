"""The versioned files bucket and the jobs queue with its dead-letter queue."""

from __future__ import annotations

from chalicelib.adapters import job_queue as queue
from chalicelib.adapters import storage

from .cfn import NO_VALUE, Json, get_att, if_, ref, resource, sub
from .parameters import BUCKET_NAME, HAS_BUCKET_NAME

BUCKET = "FilesBucket"
BUCKET_POLICY = "FilesBucketPolicy"
JOBS_QUEUE = "JobsQueue"
JOBS_DEAD_LETTER_QUEUE = "JobsDeadLetterQueue"

FOUR_DAYS = 4 * 24 * 3600
# Longer than the jobs queue's retention: a message's age counts from when it was first sent.
FOURTEEN_DAYS = 14 * 24 * 3600



def _cloudformation_rule(rule: Json) -> Json:
    """A lifecycle rule of the S3 API (chalicelib.storage) in CloudFormation's shape."""
    converted: Json = {"Id": rule["ID"], "Status": rule["Status"]}
    if rule["Filter"].get("Prefix"):
        converted["Prefix"] = rule["Filter"]["Prefix"]
    if "AbortIncompleteMultipartUpload" in rule:
        converted["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "Expiration" in rule:
        converted["ExpirationInDays"] = rule["Expiration"]["Days"]
    if "NoncurrentVersionExpiration" in rule:
        converted["NoncurrentVersionExpiration"] = rule["NoncurrentVersionExpiration"]
    return converted


LIFECYCLE_RULES: list[Json] = [_cloudformation_rule(rule) for rule in storage.LIFECYCLE_RULES]

# Presigned GETs and PUTs come straight from browsers and apps; the ETag of each uploaded
# part must be readable to complete a multipart upload.
CORS_RULES: list[Json] = [
    {
        "Id": "presigned-transfers",
        "AllowedMethods": ["GET", "PUT"],
        "AllowedOrigins": ["*"],
        "AllowedHeaders": ["*"],
        "ExposedHeaders": ["ETag"],
        "MaxAge": 3600,
    }
]


def bucket_resources(policy_statements: tuple[Json, ...] = ()) -> Json:
    """The bucket, with `policy_statements` added to its policy (the console's reader)."""
    keep = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    return {
        BUCKET: resource(
            "AWS::S3::Bucket",
            {
                "BucketName": if_(HAS_BUCKET_NAME, ref(BUCKET_NAME), NO_VALUE),
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {"Rules": LIFECYCLE_RULES},
                "CorsConfiguration": {"CorsRules": CORS_RULES},
            },
            **keep,
        ),
        BUCKET_POLICY: resource(
            "AWS::S3::BucketPolicy",
            {
                "Bucket": ref(BUCKET),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyPlainHttp",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [bucket_arn(), bucket_objects_arn()],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                        *policy_statements,
                    ],
                },
            },
        ),
    }


def bucket_arn() -> Json:
    return get_att(BUCKET, "Arn")


def bucket_objects_arn(prefix: str = "") -> Json:
    """The objects under `prefix` (all of them by default)."""
    return sub(f"${{{BUCKET}.Arn}}/{prefix}*")


# Queued messages are work in progress, not data: the jobs themselves are kept in DynamoDB.
_TRANSIENT = {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete"}


def queue_resources() -> Json:
    return {
        JOBS_DEAD_LETTER_QUEUE: resource(
            "AWS::SQS::Queue",
            {
                "QueueName": sub("${AWS::StackName}-jobs-dlq"),
                "MessageRetentionPeriod": FOURTEEN_DAYS,
                "SqsManagedSseEnabled": True,
            },
            **_TRANSIENT,
        ),
        JOBS_QUEUE: resource(
            "AWS::SQS::Queue",
            {
                "QueueName": sub("${AWS::StackName}-jobs"),
                "VisibilityTimeout": queue.VISIBILITY_TIMEOUT_SECONDS,
                "MessageRetentionPeriod": FOUR_DAYS,
                "RedrivePolicy": {
                    "deadLetterTargetArn": get_att(JOBS_DEAD_LETTER_QUEUE, "Arn"),
                    "maxReceiveCount": queue.MAX_RECEIVES,
                },
                "SqsManagedSseEnabled": True,
            },
            **_TRANSIENT,
        ),
    }
