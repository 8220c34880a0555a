"""The template's parameters and conditions, and the values derived from them.

Names that must be unique per stack (tables, queues) default to the stack name, so a second
stack (staging beside production) in the same account needs no other input.
"""

from __future__ import annotations

from .cfn import Json, and_, condition, equals, if_, join, not_, ref, sub

LAMBDA_CODE_BUCKET = "LambdaCodeS3Bucket"
LAMBDA_CODE_KEY = "LambdaCodeS3Key"
TABLE_PREFIX = "TablePrefix"
BUCKET_NAME = "BucketName"
API_MEMORY = "ApiMemorySize"
LOG_RETENTION = "LogRetentionDays"
JOB_IMAGE = "JobImageUri"
JOB_WORKERS = "JobWorkerCount"
JOB_WORKERS_MAX = "JobWorkerMaxCount"
ALARM_EMAIL = "AlarmEmail"
DOMAIN_NAME = "DomainName"
HOSTED_ZONE = "HostedZoneId"
CERTIFICATE = "CertificateArn"
MAIL_SENDER = "MailSender"
PUBLIC_URL = "PublicUrl"
SIGNUP = "Signup"
LARGE_REQUESTS_AT_REST = "LargeRequestsAtRest"
EDGE_SECRET = "EdgeSecret"

HAS_TABLE_PREFIX = "HasTablePrefix"
HAS_BUCKET_NAME = "HasBucketName"
DEPLOY_JOB_WORKERS = "DeployJobWorkers"
HAS_ALARM_EMAIL = "HasAlarmEmail"
HAS_DOMAIN = "HasDomainName"
HAS_HOSTED_ZONE = "HasHostedZone"
HAS_CERTIFICATE = "HasCertificateArn"
CREATE_CERTIFICATE = "CreateCertificate"
CREATE_DNS_RECORD = "CreateDnsRecord"
HAS_MAIL_SENDER = "HasMailSender"
HAS_PUBLIC_URL = "HasPublicUrl"
HAS_EDGE_SECRET = "HasEdgeSecret"

# CloudFront takes its certificates from ACM in this region only (infra/domain.py).
CERTIFICATE_REGION = "us-east-1"

# The values CloudWatch Logs accepts for a retention period.
_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                   2192, 2557, 2922, 3288, 3653]

# The prefix actually used: the parameter, or `<stack name>-`.
table_prefix_value: Json = if_(HAS_TABLE_PREFIX, ref(TABLE_PREFIX), sub("${AWS::StackName}-"))


def table_name_value(name: str) -> Json:
    return join(table_prefix_value, name)


def parameters() -> Json:
    return {
        LAMBDA_CODE_BUCKET: {
            "Type": "String",
            "Description": "S3 bucket holding the API's Lambda zip (see docs/deploy.md).",
            "MinLength": 3,
        },
        LAMBDA_CODE_KEY: {
            "Type": "String",
            "Description": "Key of the Lambda zip. Use a new key per build: an unchanged key "
                           "does not update the function.",
            "MinLength": 1,
        },
        TABLE_PREFIX: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^[A-Za-z0-9_.-]*$",
            "Description": "Prefix of every DynamoDB table name; empty means '<stack name>-'.",
        },
        BUCKET_NAME: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$",
            "Description": "Name of the files bucket; empty lets CloudFormation choose a unique one.",
        },
        API_MEMORY: {
            "Type": "Number",
            "Default": 1024,
            "MinValue": 256,
            "MaxValue": 10240,
            "Description": "Memory (MB) of the API function; CPU grows with it.",
        },
        LOG_RETENTION: {
            "Type": "Number",
            "Default": 30,
            "AllowedValues": _RETENTION_DAYS,
            "Description": "Days the API and job logs are kept.",
        },
        JOB_IMAGE: {
            "Type": "String",
            "Default": "",
            "Description": "URI of the QGIS job image. Empty: no job workers (nor their network) "
                           "are deployed and jobs wait in the queue.",
        },
        JOB_WORKERS: {
            "Type": "Number",
            "Default": 0,
            "MinValue": 0,
            "Description": "Job workers kept running when the queue is empty: 0 scales to zero (a "
                           "job then waits some 3 to 5 minutes for a worker to start); 1 starts "
                           "jobs at once, for about $46 a month in us-east-1 (docs/deploy.md).",
        },
        JOB_WORKERS_MAX: {
            "Type": "Number",
            "Default": 2,
            "MinValue": 1,
            "Description": "Most job workers running at once.",
        },
        ALARM_EMAIL: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([^@\\s]+@[^@\\s]+)?$",
            "Description": "Where the alarms are e-mailed (the address must confirm the "
                           "subscription); empty: the alarms only show in CloudWatch.",
        },
        DOMAIN_NAME: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([a-z0-9][a-z0-9.-]*[a-z0-9])?$",
            "Description": "A domain of your own for the server (qfc.example.org), served by the "
                           "CloudFront distribution; empty: the distribution's own address.",
        },
        HOSTED_ZONE: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(Z[A-Z0-9]+)?$",
            "Description": "With DomainName: the Route 53 hosted zone of the domain, which then gets "
                           "the domain's records (aliases of the distribution) and a requested certificate's "
                           "validation record by itself.",
        },
        LARGE_REQUESTS_AT_REST: {
            "Type": "String",
            "Default": "always-on",
            "AllowedValues": ["always-on", "scale-to-zero"],
            "Description": "The large-request service (uploads above 4.4 MB) while nobody uploads: "
                           "always-on keeps its smallest task (about $13 a month in us-east-1); "
                           "scale-to-zero runs none, and the first large upload after an idle hour "
                           "fails and wakes it for QField's retry (docs/deploy.md).",
        },
        CERTIFICATE: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": f"^(arn:aws[a-z-]*:acm:{CERTIFICATE_REGION}:[0-9]{{12}}:certificate/.+)?$",
            "ConstraintDescription": f"an ACM certificate's ARN in {CERTIFICATE_REGION}, the only "
                                     "region CloudFront takes certificates from",
            "Description": f"With DomainName: an ACM certificate of the domain in {CERTIFICATE_REGION} "
                           f"(CloudFront's rule), required outside {CERTIFICATE_REGION}; empty in "
                           f"{CERTIFICATE_REGION}: one is requested (validated by DNS).",
        },
        MAIL_SENDER: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^([^@\\s]+@[^@\\s]+)?$",
            "Description": "From address of password reset mails, verified in SES (as an address "
                           "or its domain); empty: password reset by e-mail is off (docs/api.md).",
        },
        SIGNUP: {
            "Type": "String",
            "Default": "0",
            "AllowedValues": ["0", "1"],
            "Description": "1 lets anyone create an account (the web console's sign-up page).",
        },
        EDGE_SECRET: {
            "Type": "String",
            "Default": "",
            # Masked wherever the stack is described; an update keeps it only by UsePreviousValue.
            "NoEcho": True,
            "AllowedPattern": "^([A-Za-z0-9_-]{32,})?$",
            "ConstraintDescription": "empty, or at least 32 letters, digits, - and _",
            "Description": "A secret CloudFront adds to the requests it sends to API Gateway, so that the "
                           "API believes the viewer's address CloudFront reports (the login lockout "
                           "counts per viewer); ./dev deploy generates it once and keeps it. Empty: the "
                           "lockout counts per CloudFront server (docs/deploy.md).",
        },
        PUBLIC_URL: {
            "Type": "String",
            "Default": "",
            "AllowedPattern": "^(https://[^/\\s]+(/[^\\s]*)?)?$",
            "Description": "The server's public URL, for the links the API mails and answers (password "
                           "reset, sign-up, pages); ./dev deploy sets it to ServerUrl once the stack "
                           "exists (the function cannot name the distribution that names its API).",
        },
    }


def conditions() -> Json:
    return {
        HAS_TABLE_PREFIX: not_(equals(ref(TABLE_PREFIX), "")),
        HAS_BUCKET_NAME: not_(equals(ref(BUCKET_NAME), "")),
        DEPLOY_JOB_WORKERS: not_(equals(ref(JOB_IMAGE), "")),
        HAS_ALARM_EMAIL: not_(equals(ref(ALARM_EMAIL), "")),
        HAS_DOMAIN: not_(equals(ref(DOMAIN_NAME), "")),
        HAS_HOSTED_ZONE: not_(equals(ref(HOSTED_ZONE), "")),
        HAS_CERTIFICATE: not_(equals(ref(CERTIFICATE), "")),
        CREATE_CERTIFICATE: and_(condition(HAS_DOMAIN), not_(condition(HAS_CERTIFICATE))),
        CREATE_DNS_RECORD: and_(condition(HAS_DOMAIN), condition(HAS_HOSTED_ZONE)),
        HAS_MAIL_SENDER: not_(equals(ref(MAIL_SENDER), "")),
        HAS_PUBLIC_URL: not_(equals(ref(PUBLIC_URL), "")),
        HAS_EDGE_SECRET: not_(equals(ref(EDGE_SECRET), "")),
    }


def interface() -> Json:
    """How the console groups the parameters."""
    return {
        "AWS::CloudFormation::Interface": {
            "ParameterGroups": [
                {"Label": {"default": "API"},
                 "Parameters": [LAMBDA_CODE_BUCKET, LAMBDA_CODE_KEY, API_MEMORY, LOG_RETENTION,
                                EDGE_SECRET]},
                {"Label": {"default": "Data"}, "Parameters": [TABLE_PREFIX, BUCKET_NAME]},
                {"Label": {"default": "Job workers"},
                 "Parameters": [JOB_IMAGE, JOB_WORKERS, JOB_WORKERS_MAX]},
                {"Label": {"default": "Large uploads"}, "Parameters": [LARGE_REQUESTS_AT_REST]},
                {"Label": {"default": "Operations"}, "Parameters": [ALARM_EMAIL]},
                {"Label": {"default": "Accounts"}, "Parameters": [MAIL_SENDER, SIGNUP, PUBLIC_URL]},
                {"Label": {"default": "Custom domain"},
                 "Parameters": [DOMAIN_NAME, HOSTED_ZONE, CERTIFICATE]},
            ]
        }
    }
