"""IAM roles, least privilege: each role reaches only this stack's tables, bucket, queue and logs.

The API reads and writes items, never scans (no request path may Scan) and never changes a
table. The job worker does the same, on only the tables and objects a job uses, and consumes
the queue.
"""

from __future__ import annotations

from chalicelib.adapters import storage
from chalicelib.adapters.storage import PROJECTS_PREFIX, TEMPORARY_PREFIX
from chalicelib.models import (
    ClientFeaturePk,
    Delta,
    Job,
    JobLease,
    ListCount,
    Project,
    ProjectFile,
    ProjectName,
    User,
)

from .api import FUNCTION_LOGS, FUNCTION_ROLE
from .cfn import Json, allow, assume_role_policy, get_att, policy_document, ref, resource, sub
from .jobs import EXECUTION_ROLE, JOB_LOGS, TASK_ROLE
from .large_requests import LOGS as LARGE_REQUEST_LOGS
from .parameters import DEPLOY_JOB_WORKERS, HAS_MAIL_SENDER, MAIL_SENDER
from .storage import JOBS_DEAD_LETTER_QUEUE, JOBS_QUEUE, bucket_arn, bucket_objects_arn
from .tables import table_arns

TABLE_ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    # Transactions are authorized per item action, plus this for their condition checks.
    "dynamodb:ConditionCheckItem",
]
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUCKET_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads"]
QUEUE_SEND_ACTIONS = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
# The tables a job worker uses (job_containers/worker.py and runner.py, through chalicelib): jobs
# and their leases, projects (by name: an owner's shared datasets) and their files, deltas, the
# list counts a new job adds to, and users (whose storage a job's edits count against). A worker
# checks no permission and logs nobody in, so its credentials reach neither the login records
# (auth-tokens, login-attempts) nor who may see what (collaborators, memberships, teams) nor
# uploads in progress.
WORKER_MODELS = (Job, JobLease, Project, ProjectName, ProjectFile, Delta, ClientFeaturePk, ListCount, User)
# The worker reads project files (its project's, its owner's shared datasets) and job reports; it
# writes the files a job edited, job reports, thumbnails and packages; it deletes versions no
# longer wanted (file versions past those kept, the previous thumbnail, what it stored for edits
# that lost a conflict). Never a plain delete (a delete marker), a listing or a temporary object.
WORKER_READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]
WORKER_WRITE_ACTIONS = ["s3:PutObject"]
WORKER_DELETE_ACTIONS = ["s3:DeleteObjectVersion"]
PROJECT_FILES = bucket_objects_arn(storage.file_key("*", ""))
JOB_REPORTS = bucket_objects_arn(storage.job_key("*", "*", ""))
THUMBNAILS = bucket_objects_arn(storage.thumbnail_key("*"))
PACKAGES = bucket_objects_arn(storage.package_prefix("*", "*"))
# The queue URLs are in the worker's environment: it never looks them up.
QUEUE_CONSUME_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
WORKER_SEND_ACTIONS = ["sqs:SendMessage"]
LOG_WRITE_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# The API runs its background tasks (a project's purge) by invoking itself asynchronously.
SELF_INVOKE_ACTIONS = ["lambda:InvokeFunction"]
IMAGE_PULL_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]
SEND_MAIL_ACTIONS = ["ses:SendEmail"]
API_MAIL_POLICY = "ApiFunctionMailPolicy"
# AWS defines this action on no resource: it can only be granted on "*".
RESOURCELESS_ACTIONS = ["ecr:GetAuthorizationToken"]


def _data_statements() -> list[Json]:
    return [
        allow(TABLE_ITEM_ACTIONS, table_arns(), "Tables"),
        allow(OBJECT_ACTIONS, [bucket_objects_arn(PROJECTS_PREFIX), bucket_objects_arn(TEMPORARY_PREFIX)],
              "BucketObjects"),
        allow(BUCKET_ACTIONS, [bucket_arn()], "Bucket"),
    ]


def _role(service: str, policy_name: str, statements: list[Json], **attributes: object) -> Json:
    return resource(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": assume_role_policy(service),
            "Policies": [
                {"PolicyName": policy_name, "PolicyDocument": policy_document(*statements)}
            ],
        },
        **attributes,
    )


def api_role() -> Json:
    return _role(
        "lambda.amazonaws.com",
        "api",
        [
            *_data_statements(),
            allow(QUEUE_SEND_ACTIONS, [get_att(JOBS_QUEUE, "Arn")], "SubmitJobs"),
            allow(LOG_WRITE_ACTIONS, [get_att(FUNCTION_LOGS, "Arn")], "Logs"),
            # By name: the function's own ARN attribute would make the role depend on it.
            allow(SELF_INVOKE_ACTIONS, [sub(
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
                "${AWS::StackName}-api"
            )], "RunBackgroundTasks"),
        ],
    )


def api_mail_policy() -> Json:
    """Password reset mails (chalicelib/adapters/mail.py), only when the operator names a sender,
    and from that sender only: its SES identity is the address or the address's domain,
    whichever the operator verified."""
    identity = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
    domain = {"Fn::Select": [1, {"Fn::Split": ["@", ref(MAIL_SENDER)]}]}
    statement = allow(SEND_MAIL_ACTIONS, [sub(identity + "${" + MAIL_SENDER + "}"),
                                          {"Fn::Sub": [identity + "${Domain}", {"Domain": domain}]}],
                      "SendMail")
    statement["Condition"] = {"StringEquals": {"ses:FromAddress": ref(MAIL_SENDER)}}
    return resource("AWS::IAM::Policy", {"PolicyName": "send-mail", "Roles": [ref(FUNCTION_ROLE)],
                                         "PolicyDocument": policy_document(statement)},
                    Condition=HAS_MAIL_SENDER)


def job_task_role() -> Json:
    return _role(
        "ecs-tasks.amazonaws.com",
        "job-worker",
        [
            allow(TABLE_ITEM_ACTIONS, table_arns(WORKER_MODELS), "Tables"),
            allow(WORKER_READ_ACTIONS, [PROJECT_FILES, JOB_REPORTS], "ReadProjectFiles"),
            allow(WORKER_WRITE_ACTIONS, [PROJECT_FILES, JOB_REPORTS, THUMBNAILS, PACKAGES],
                  "WriteJobResults"),
            # And what a job stored when its project was deleted while it ran (job_containers.runner).
            allow(WORKER_DELETE_ACTIONS, [PROJECT_FILES, THUMBNAILS, JOB_REPORTS, PACKAGES],
                  "DeleteReplacedVersions"),
            allow(QUEUE_CONSUME_ACTIONS, [get_att(JOBS_QUEUE, "Arn"), get_att(JOBS_DEAD_LETTER_QUEUE, "Arn")],
                  "ConsumeJobs"),
            # A job whose project is busy is offered again as a new message; jobs start jobs.
            allow(WORKER_SEND_ACTIONS, [get_att(JOBS_QUEUE, "Arn")], "SubmitJobs"),
        ],
        Condition=DEPLOY_JOB_WORKERS,
    )


def job_execution_role() -> Json:
    """What ECS itself needs to start a worker or a large-request task (the same image): pull
    the image, write their logs."""
    account_repositories = sub(
        "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/*"
    )
    return _role(
        "ecs-tasks.amazonaws.com",
        "start-job-worker",
        [
            allow(RESOURCELESS_ACTIONS, ["*"], "RegistryLogin"),
            allow(IMAGE_PULL_ACTIONS, [account_repositories], "PullImage"),
            allow(LOG_WRITE_ACTIONS, [get_att(JOB_LOGS, "Arn"), get_att(LARGE_REQUEST_LOGS, "Arn")], "Logs"),
        ],
        Condition=DEPLOY_JOB_WORKERS,
    )


def role_resources() -> Json:
    return {
        FUNCTION_ROLE: api_role(),
        API_MAIL_POLICY: api_mail_policy(),
        TASK_ROLE: job_task_role(),
        EXECUTION_ROLE: job_execution_role(),
    }
