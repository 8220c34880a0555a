"""The job workers: the QGIS job image as a Fargate service that polls the jobs queue.

Everything here, the workers' own network included (infra/network.py), exists only when the
JobImageUri parameter is set. The service scales on the queue: out while jobs wait, back to
`JobWorkerCount` (default zero) once the queue has been empty, with no job in flight, for a while.
"""

from __future__ import annotations

from .cfn import Json, get_att, ref, resource, sub
from .environment import service_environment
from .network import network_ready, network_resources, security_group_id, subnet_ids
from .parameters import DEPLOY_JOB_WORKERS, JOB_IMAGE, JOB_WORKERS, JOB_WORKERS_MAX, LOG_RETENTION

CLUSTER = "JobCluster"
TASK_DEFINITION = "JobTaskDefinition"
TASK_ROLE = "JobTaskRole"
EXECUTION_ROLE = "JobExecutionRole"
SERVICE = "JobService"
JOB_LOGS = "JobLogGroup"
SCALABLE_TARGET = "JobScalableTarget"
SCALE_OUT_POLICY = "JobScaleOutPolicy"
SCALE_IN_POLICY = "JobScaleInPolicy"
JOBS_WAITING_ALARM = "JobsWaitingAlarm"
QUEUE_IDLE_ALARM = "JobQueueIdleAlarm"
CONTAINER_NAME = "job-worker"
SERVICE_NAME = "qfc-worker"

# QGIS needs room for large GeoPackages and rendering: 1 vCPU, 4 GB.
TASK_CPU = "1024"
TASK_MEMORY = "4096"
# Fargate's maximum: a worker told to stop may finish or hand back its current job.
STOP_TIMEOUT_SECONDS = 120
# Scaling in kills workers, so only once nothing was waiting or running for this long.
IDLE_MINUTES_BEFORE_SCALE_IN = 15

# The worker runs as root in its container so that it can give each job's QGIS process a user id
# of its own (job_containers/isolation.py): switching to it takes SETUID and SETGID, handing it
# its folders and cleaning them up CHOWN, DAC_OVERRIDE and FOWNER, stopping it KILL. Every other
# capability the container runtime grants by default (Docker's and containerd's list) is dropped;
# Fargate lets a task drop any and add none but SYS_PTRACE.
RUNTIME_DEFAULT_CAPABILITIES = [
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
]
WORKER_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"]


def _only_with_job_workers(resources: Json) -> Json:
    return {logical_id: {**body, "Condition": DEPLOY_JOB_WORKERS} for logical_id, body in resources.items()}


def job_environment() -> list[Json]:
    variables = service_environment(SERVICE_NAME)
    return [{"Name": name, "Value": value} for name, value in variables.items()]


def _task_definition() -> Json:
    return resource(
        "AWS::ECS::TaskDefinition",
        {
            "Family": sub("${AWS::StackName}-jobs"),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": TASK_CPU,
            "Memory": TASK_MEMORY,
            "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
            "ExecutionRoleArn": get_att(EXECUTION_ROLE, "Arn"),
            "TaskRoleArn": get_att(TASK_ROLE, "Arn"),
            "ContainerDefinitions": [
                {
                    "Name": CONTAINER_NAME,
                    "Image": ref(JOB_IMAGE),
                    "Essential": True,
                    "StopTimeout": STOP_TIMEOUT_SECONDS,
                    "Environment": job_environment(),
                    "LinuxParameters": {
                        "Capabilities": {
                            "Drop": [name for name in RUNTIME_DEFAULT_CAPABILITIES
                                     if name not in WORKER_CAPABILITIES],
                        },
                        # An init process as PID 1 forwards ECS's stop signal to the worker and
                        # reaps the processes a job's QGIS process leaves orphaned (the worker
                        # waits only for its own children).
                        "InitProcessEnabled": True,
                    },
                    "LogConfiguration": {
                        "LogDriver": "awslogs",
                        "Options": {
                            "awslogs-group": ref(JOB_LOGS),
                            "awslogs-region": ref("AWS::Region"),
                            "awslogs-stream-prefix": "job",
                        },
                    },
                }
            ],
        },
    )


def _service() -> Json:
    return resource(
        "AWS::ECS::Service",
        {
            "ServiceName": sub("${AWS::StackName}-jobs"),
            "Cluster": ref(CLUSTER),
            "TaskDefinition": ref(TASK_DEFINITION),
            "LaunchType": "FARGATE",
            "DesiredCount": ref(JOB_WORKERS),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets": subnet_ids(),
                    "SecurityGroups": [security_group_id()],
                    # Public subnets without a NAT gateway: the internet is reached this way.
                    "AssignPublicIp": "ENABLED",
                }
            },
            # Workers hold no connections: replacing them all at once is fine.
            "DeploymentConfiguration": {
                "MinimumHealthyPercent": 0,
                "MaximumPercent": 100,
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
            },
            "PropagateTags": "SERVICE",
            "EnableECSManagedTags": True,
        },
        DependsOn=network_ready(),
    )


def _queue_metric(metric_id: str, metric_name: str, jobs_queue_name: Json) -> Json:
    return {
        "Id": metric_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/SQS",
                "MetricName": metric_name,
                "Dimensions": [{"Name": "QueueName", "Value": jobs_queue_name}],
            },
            "Period": 60,
            "Stat": "Maximum",
        },
    }


def _scaling_resources(jobs_queue_name: Json) -> Json:
    return {
        SCALABLE_TARGET: resource(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": sub(f"service/${{{CLUSTER}}}/${{{SERVICE}.Name}}"),
                "MinCapacity": ref(JOB_WORKERS),
                "MaxCapacity": ref(JOB_WORKERS_MAX),
            },
        ),
        SCALE_OUT_POLICY: resource(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyName": sub("${AWS::StackName}-jobs-scale-out"),
                "PolicyType": "StepScaling",
                "ScalingTargetId": ref(SCALABLE_TARGET),
                "StepScalingPolicyConfiguration": {
                    "AdjustmentType": "ChangeInCapacity",
                    "Cooldown": 120,
                    "MetricAggregationType": "Maximum",
                    # Bounds are relative to the alarm's threshold of one waiting job.
                    "StepAdjustments": [
                        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 9,
                         "ScalingAdjustment": 1},
                        {"MetricIntervalLowerBound": 9, "ScalingAdjustment": 2},
                    ],
                },
            },
        ),
        SCALE_IN_POLICY: resource(
            "AWS::ApplicationAutoScaling::ScalingPolicy",
            {
                "PolicyName": sub("${AWS::StackName}-jobs-scale-in"),
                "PolicyType": "StepScaling",
                "ScalingTargetId": ref(SCALABLE_TARGET),
                "StepScalingPolicyConfiguration": {
                    # Down to the scalable target's minimum, JobWorkerCount.
                    "AdjustmentType": "ExactCapacity",
                    "Cooldown": 60,
                    "MetricAggregationType": "Maximum",
                    "StepAdjustments": [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}],
                },
            },
        ),
        JOBS_WAITING_ALARM: resource(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmDescription": "Jobs are waiting in the queue: add a job worker.",
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": jobs_queue_name}],
                "Statistic": "Maximum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [ref(SCALE_OUT_POLICY)],
            },
        ),
        QUEUE_IDLE_ALARM: resource(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmDescription": "No job waiting or running: scale the job workers in.",
                "Metrics": [
                    _queue_metric("waiting", "ApproximateNumberOfMessagesVisible", jobs_queue_name),
                    _queue_metric("running", "ApproximateNumberOfMessagesNotVisible",
                                  jobs_queue_name),
                    {"Id": "jobs", "Expression": "waiting + running", "ReturnData": True},
                ],
                "EvaluationPeriods": IDLE_MINUTES_BEFORE_SCALE_IN,
                "Threshold": 0,
                "ComparisonOperator": "LessThanOrEqualToThreshold",
                # SQS stops reporting metrics of a queue that stays empty: missing means idle.
                "TreatMissingData": "breaching",
                "AlarmActions": [ref(SCALE_IN_POLICY)],
            },
        ),
    }


def job_resources(jobs_queue_name: Json) -> Json:
    return _only_with_job_workers({
        **network_resources(),
        CLUSTER: resource(
            "AWS::ECS::Cluster",
            {"ClusterName": sub("${AWS::StackName}-jobs"),
             "ClusterSettings": [{"Name": "containerInsights", "Value": "disabled"}]},
        ),
        JOB_LOGS: resource(
            "AWS::Logs::LogGroup",
            {"LogGroupName": sub("/ecs/${AWS::StackName}-jobs"),
             "RetentionInDays": ref(LOG_RETENTION)},
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        ),
        TASK_DEFINITION: _task_definition(),
        SERVICE: _service(),
        **_scaling_resources(jobs_queue_name),
    })

