"""The large-request service on AWS: `python -m large_requests` on Fargate, behind an internal
Application Load Balancer that only CloudFront reaches (a VPC origin, infra/edge.py).

It takes the file uploads too large for API Gateway and Lambda (chalicelib/http/limits.py) and
runs the same services code as the API. It lives in a VPC of its own, apart from the job
workers' (whose network ACL keeps every private address out, infra/network.py): two public
subnets, the tasks with public IPs to reach ECR and CloudWatch without a NAT gateway, gateway
endpoints (free) for S3 and DynamoDB. The load balancer is internal: nothing on the internet
reaches it or the tasks, only CloudFront's VPC origin, whose network interfaces are in these
subnets (the security groups allow the VPC's own range, and the tasks only the load balancer).

At rest (the LargeRequestsAtRest parameter, docs/deploy.md "The large-request service"):
`always-on` keeps one task running; `scale-to-zero` runs none while nobody uploads: the first
large upload gets the load balancer's 503 (QField retries an attachment after 5, 25, 125 s; the
SDK and QFieldSync do not retry a POST), which wakes a task within a few minutes, and an hour
without a request puts it back to sleep.
"""

from __future__ import annotations

import ipaddress

from chalicelib.models import (
    AuthToken,
    Collaborator,
    Job,
    ListCount,
    Membership,
    Project,
    ProjectFile,
    Team,
    User,
)

from .cfn import (
    Json,
    allow,
    and_,
    assume_role_policy,
    condition,
    equals,
    get_att,
    if_,
    policy_document,
    ref,
    resource,
    sub,
)
from .environment import service_environment
from .jobs import EXECUTION_ROLE
from .parameters import DEPLOY_JOB_WORKERS, JOB_IMAGE, LARGE_REQUESTS_AT_REST, LOG_RETENTION
from .storage import JOBS_QUEUE, bucket_objects_arn
from .tables import table_arns

SERVICE_NAME = "qfc-large-requests"
CLUSTER = "LargeRequestsCluster"
TASK_DEFINITION = "LargeRequestsTaskDefinition"
TASK_ROLE = "LargeRequestsTaskRole"
SERVICE = "LargeRequestsService"
LOGS = "LargeRequestsLogGroup"
VPC = "LargeRequestsVpc"
INTERNET_GATEWAY = "LargeRequestsInternetGateway"
GATEWAY_ATTACHMENT = "LargeRequestsGatewayAttachment"
ROUTE_TABLE = "LargeRequestsRouteTable"
INTERNET_ROUTE = "LargeRequestsInternetRoute"
SUBNETS = ["LargeRequestsSubnetA", "LargeRequestsSubnetB"]
BALANCER_SECURITY_GROUP = "LargeRequestsBalancerSecurityGroup"
TASK_SECURITY_GROUP = "LargeRequestsTaskSecurityGroup"
LOAD_BALANCER = "LargeRequestsLoadBalancer"
TARGET_GROUP = "LargeRequestsTargetGroup"
LISTENER = "LargeRequestsListener"
SCALABLE_TARGET = "LargeRequestsScalableTarget"
WAKE_UP_POLICY = "LargeRequestsWakeUpPolicy"
SLEEP_POLICY = "LargeRequestsSleepPolicy"
WAKE_UP_ALARM = "LargeRequestsWaitingAlarm"
SLEEP_ALARM = "LargeRequestsIdleAlarm"
SCALES_TO_ZERO = "LargeRequestsScaleToZero"

AT_REST_CHOICES = ("always-on", "scale-to-zero")
CONTAINER_NAME = "large-requests"
PORT = 8080
BALANCER_PORT = 80
HEALTH_PATH = "/health"
# The smallest Fargate task: the service holds a few 8 MiB parts per upload (flat in the file's
# size, bench/README.md) and waits on the network.
TASK_CPU = "256"
TASK_MEMORY = "512"
# An upload whose client stops sending for this long is dropped (large_requests/server.py waits
# 120 s itself).
IDLE_TIMEOUT_SECONDS = 150
IDLE_MINUTES_BEFORE_SLEEP = 60
VPC_CIDR = ipaddress.IPv4Network("10.1.0.0/16")
SUBNET_CIDRS = list(VPC_CIDR.subnets(new_prefix=20))[: len(SUBNETS)]

# What an upload reads and writes (chalicelib/services/streamed_uploads.py, files.py): the
# caller's token and account, the project, its collaborators and its organization's members and
# teams (permissions), its files, the quota on the owner, and the processing job a project file
# starts (jobs, their counts, the queue). Nothing else: no login records, no deltas, no uploads
# in progress of the presigned flow.
MODELS = (AuthToken, User, Project, Collaborator, Membership, Team, ProjectFile, Job, ListCount)
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:ConditionCheckItem",
]
# A multipart upload's calls (create, parts, complete) are all authorized as s3:PutObject; a body
# cut off mid-way is aborted.
OBJECT_ACTIONS = ["s3:PutObject", "s3:AbortMultipartUpload"]
PROJECT_FILES = "projects/*/files/"


def task_role() -> Json:
    return resource("AWS::IAM::Role", {
        "AssumeRolePolicyDocument": assume_role_policy("ecs-tasks.amazonaws.com"),
        "Policies": [{"PolicyName": "large-requests", "PolicyDocument": policy_document(
            allow(TABLE_ACTIONS, table_arns(MODELS), "Tables"),
            allow(OBJECT_ACTIONS, [bucket_objects_arn(PROJECT_FILES)], "StoreProjectFiles"),
            allow(["sqs:SendMessage"], [get_att(JOBS_QUEUE, "Arn")], "SubmitProcessingJobs"),
        )}],
    })


def _network() -> Json:
    name = [{"Key": "Name", "Value": sub("${AWS::StackName}-large-requests")}]
    resources: Json = {
        VPC: resource("AWS::EC2::VPC", {"CidrBlock": str(VPC_CIDR), "EnableDnsSupport": True,
                                        "EnableDnsHostnames": True, "Tags": name}),
        INTERNET_GATEWAY: resource("AWS::EC2::InternetGateway", {"Tags": name}),
        GATEWAY_ATTACHMENT: resource("AWS::EC2::VPCGatewayAttachment",
                                     {"VpcId": ref(VPC), "InternetGatewayId": ref(INTERNET_GATEWAY)}),
        ROUTE_TABLE: resource("AWS::EC2::RouteTable", {"VpcId": ref(VPC), "Tags": name}),
        INTERNET_ROUTE: resource("AWS::EC2::Route", {
            "RouteTableId": ref(ROUTE_TABLE), "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": ref(INTERNET_GATEWAY)}, DependsOn=GATEWAY_ATTACHMENT),
    }
    for index, (subnet, cidr) in enumerate(zip(SUBNETS, SUBNET_CIDRS, strict=True)):
        resources[subnet] = resource("AWS::EC2::Subnet", {
            "VpcId": ref(VPC), "CidrBlock": str(cidr),
            "AvailabilityZone": {"Fn::Select": [index, {"Fn::GetAZs": ""}]}, "Tags": name})
        resources[f"{subnet}Routes"] = resource("AWS::EC2::SubnetRouteTableAssociation",
                                                {"SubnetId": ref(subnet), "RouteTableId": ref(ROUTE_TABLE)})
    for service in ("s3", "dynamodb"):
        resources[f"LargeRequests{service.title()}Endpoint"] = resource("AWS::EC2::VPCEndpoint", {
            "VpcId": ref(VPC), "VpcEndpointType": "Gateway", "RouteTableIds": [ref(ROUTE_TABLE)],
            "ServiceName": sub(f"com.amazonaws.${{AWS::Region}}.{service}")})
    resources[BALANCER_SECURITY_GROUP] = resource("AWS::EC2::SecurityGroup", {
        "GroupDescription": "Large-request load balancer: HTTP from the CloudFront VPC origin in this VPC",
        "VpcId": ref(VPC),
        "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": BALANCER_PORT, "ToPort": BALANCER_PORT,
                                  "CidrIp": str(VPC_CIDR), "Description": "CloudFront's VPC origin"}],
    })
    resources[TASK_SECURITY_GROUP] = resource("AWS::EC2::SecurityGroup", {
        "GroupDescription": "Large-request tasks: the load balancer only",
        "VpcId": ref(VPC),
        "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
                                  "SourceSecurityGroupId": get_att(BALANCER_SECURITY_GROUP, "GroupId"),
                                  "Description": "The load balancer"}],
    })
    return resources


def _load_balancer() -> Json:
    return {
        LOAD_BALANCER: resource("AWS::ElasticLoadBalancingV2::LoadBalancer", {
            "Type": "application",
            "Scheme": "internal",
            "Subnets": [ref(subnet) for subnet in SUBNETS],
            "SecurityGroups": [get_att(BALANCER_SECURITY_GROUP, "GroupId")],
            "LoadBalancerAttributes": [
                {"Key": "idle_timeout.timeout_seconds", "Value": str(IDLE_TIMEOUT_SECONDS)},
                {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
            ],
        }),
        TARGET_GROUP: resource("AWS::ElasticLoadBalancingV2::TargetGroup", {
            "VpcId": ref(VPC), "TargetType": "ip", "Protocol": "HTTP", "Port": PORT,
            "HealthCheckPath": HEALTH_PATH, "HealthCheckIntervalSeconds": 15, "HealthyThresholdCount": 2,
            "Matcher": {"HttpCode": "200"},
            # An upload in progress finishes before its task stops (a new version replaces it).
            "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "300"}],
        }),
        LISTENER: resource("AWS::ElasticLoadBalancingV2::Listener", {
            "LoadBalancerArn": ref(LOAD_BALANCER), "Port": BALANCER_PORT, "Protocol": "HTTP",
            "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref(TARGET_GROUP)}],
        }),
    }


def _service() -> Json:
    environment = {**service_environment(SERVICE_NAME), "QFC_LARGE_REQUESTS_PORT": str(PORT)}
    return {
        CLUSTER: resource("AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights",
                                                                   "Value": "disabled"}]}),
        LOGS: resource("AWS::Logs::LogGroup", {"LogGroupName": sub("/ecs/${AWS::StackName}-large-requests"),
                                               "RetentionInDays": ref(LOG_RETENTION)},
                       DeletionPolicy="Delete", UpdateReplacePolicy="Delete"),
        TASK_ROLE: task_role(),
        TASK_DEFINITION: resource("AWS::ECS::TaskDefinition", {
            "Family": sub("${AWS::StackName}-large-requests"),
            "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc",
            "Cpu": TASK_CPU, "Memory": TASK_MEMORY,
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            # ECS pulls the image and writes the logs with the job workers' execution role: the
            # same image (it holds the whole code base), another command.
            "ExecutionRoleArn": get_att(EXECUTION_ROLE, "Arn"),
            "TaskRoleArn": get_att(TASK_ROLE, "Arn"),
            "ContainerDefinitions": [{
                "Name": CONTAINER_NAME, "Image": ref(JOB_IMAGE), "Essential": True,
                "Command": ["python3", "-m", "large_requests"],
                "PortMappings": [{"ContainerPort": PORT, "Protocol": "tcp"}],
                "Environment": [{"Name": name, "Value": value} for name, value in environment.items()],
                "LogConfiguration": {"LogDriver": "awslogs", "Options": {
                    "awslogs-group": ref(LOGS), "awslogs-region": ref("AWS::Region"),
                    "awslogs-stream-prefix": "large-requests"}},
            }],
        }),
        SERVICE: resource("AWS::ECS::Service", {
            "Cluster": ref(CLUSTER), "TaskDefinition": ref(TASK_DEFINITION), "LaunchType": "FARGATE",
            "DesiredCount": if_(SCALES_TO_ZERO, 0, 1),
            "NetworkConfiguration": {"AwsvpcConfiguration": {
                "Subnets": [ref(subnet) for subnet in SUBNETS],
                "SecurityGroups": [get_att(TASK_SECURITY_GROUP, "GroupId")],
                "AssignPublicIp": "ENABLED"}},
            "LoadBalancers": [{"ContainerName": CONTAINER_NAME, "ContainerPort": PORT,
                               "TargetGroupArn": ref(TARGET_GROUP)}],
            "HealthCheckGracePeriodSeconds": 60,
            "DeploymentConfiguration": {"MinimumHealthyPercent": 100, "MaximumPercent": 200,
                                        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}},
        }, DependsOn=[LISTENER, INTERNET_ROUTE]),
    }


def _balancer_metric(name: str, statistic: str = "Sum") -> Json:
    return {"Namespace": "AWS/ApplicationELB", "MetricName": name, "Statistic": statistic, "Period": 60,
            "Dimensions": [{"Name": "LoadBalancer", "Value": get_att(LOAD_BALANCER, "LoadBalancerFullName")}]}


def _scale_to_zero() -> Json:
    """With `scale-to-zero`: a 503 of the load balancer (no task) starts one; an hour without a
    request stops it."""
    resource_id = sub(f"service/${{{CLUSTER}}}/${{{SERVICE}.Name}}")

    def exact(policy_name: str, count: int) -> Json:
        return resource("AWS::ApplicationAutoScaling::ScalingPolicy", {
            "PolicyName": sub(f"${{AWS::StackName}}-large-requests-{policy_name}"),
            "PolicyType": "StepScaling", "ScalingTargetId": ref(SCALABLE_TARGET),
            "StepScalingPolicyConfiguration": {
                "AdjustmentType": "ExactCapacity", "Cooldown": 60,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": count}]
                if count else [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": count}]}},
            Condition=SCALES_TO_ZERO)

    return {
        SCALABLE_TARGET: resource("AWS::ApplicationAutoScaling::ScalableTarget", {
            "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": resource_id, "MinCapacity": 0, "MaxCapacity": 1}, Condition=SCALES_TO_ZERO),
        WAKE_UP_POLICY: exact("wake-up", 1),
        SLEEP_POLICY: exact("sleep", 0),
        WAKE_UP_ALARM: resource("AWS::CloudWatch::Alarm", {
            "AlarmDescription": "A large upload found no task running: start one",
            **_balancer_metric("HTTPCode_ELB_503_Count"),
            "ComparisonOperator": "GreaterThanOrEqualToThreshold", "Threshold": 1, "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching", "AlarmActions": [ref(WAKE_UP_POLICY)]},
            Condition=SCALES_TO_ZERO),
        SLEEP_ALARM: resource("AWS::CloudWatch::Alarm", {
            "AlarmDescription": f"No large upload for {IDLE_MINUTES_BEFORE_SLEEP} minutes: stop the task",
            **_balancer_metric("RequestCount"),
            "ComparisonOperator": "LessThanOrEqualToThreshold", "Threshold": 0,
            "EvaluationPeriods": IDLE_MINUTES_BEFORE_SLEEP, "TreatMissingData": "breaching",
            "AlarmActions": [ref(SLEEP_POLICY)]}, Condition=SCALES_TO_ZERO),
    }


def conditions() -> Json:
    scale_to_zero = equals(ref(LARGE_REQUESTS_AT_REST), "scale-to-zero")
    return {SCALES_TO_ZERO: and_(condition(DEPLOY_JOB_WORKERS), scale_to_zero)}


def large_request_resources() -> Json:
    """Deployed with the job image (JobImageUri), which holds the service's code: without it,
    uploads stay on API Gateway's path and its 413 above 4.4 MB."""
    resources = {**_network(), **_load_balancer(), **_service()}
    with_image = {logical_id: {**body, "Condition": DEPLOY_JOB_WORKERS}
                  for logical_id, body in resources.items()}
    return {**with_image, **_scale_to_zero()}
