"""The structured JSON logger shared by every module."""

from aws_lambda_powertools import Logger

logger = Logger(service="qfc-api")
