"""Every error the API answers with, and the one mapping from exceptions to `{"code","message"}`.

Codes and statuses follow QFieldCloud's (docs/api.md, "Errors"; upstream, the exceptions of
docker-app/qfieldcloud/core/exceptions.py in https://github.com/opengisch/QFieldCloud). Services
raise these; `error_body` turns any exception into the response body, so no other module formats
errors.
"""

from __future__ import annotations

import json
from typing import ClassVar

import pydantic
from botocore.exceptions import ClientError
from pynamodb.exceptions import DoesNotExist, PynamoDBException


class ApiError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "unknown_error"
    default_message: ClassVar[str] = "QFieldCloud unknown error."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(ApiError):
    """A request the API cannot read (malformed body, unsupported content type)."""

    status, code, default_message = 400, "api_error", "The request could not be parsed."


class InvalidRequest(ApiError):
    """A readable request that QFieldCloud's serializers refuse: 400 `api_error`, as its
    exception handler answers a serializer's ValidationError (docs/api.md, "Errors"), e.g. a
    team name that is taken."""

    status, code, default_message = 400, "api_error", "The request is not valid."


class ValidationError(ApiError):
    status, code, default_message = 400, "validation_error", "Request data validation failed."


class NotAuthenticated(ApiError):
    status, code, default_message = 401, "not_authenticated", "Authentication required."


class AuthenticationFailed(ApiError):
    status, code, default_message = 401, "authentication_failed", "Authentication failed."


class TokenAuthenticationFailed(ApiError):
    status, code, default_message = (
        401, "token_authentication_failed", "Token authentication failed.")


class TooManyLoginAttempts(ApiError):
    status, code, default_message = (
        401, "too_many_failed_login_attempts", "Too many failed login attempts!")


class OverQuota(ApiError):
    status, code, default_message = 402, "over_quota", "The account's storage quota is exceeded."


class PermissionDenied(ApiError):
    status, code, default_message = 403, "permission_denied", "Permission denied."


class RestrictedProjectModification(ApiError):
    status, code, default_message = (
        403, "restricted_project_modification",
        "Only managers and admins may modify the restricted files of this project.")


class ReachedMaxOrganizationMembers(ApiError):
    status, code, default_message = (
        403, "organization_has_max_number_of_members",
        "Cannot add new organization members, account limit has been reached.")


class NotEnabled(ApiError):
    """A feature the operator has not turned on (sign-up, password reset by e-mail)."""

    status, code, default_message = 403, "not_enabled", "This feature is not enabled on this server."


class ObjectNotFound(ApiError):
    status, code, default_message = 404, "object_not_found", "Object not found."


class UnknownRoute(ObjectNotFound):
    """What the gateway answers for a path no route matches (API Gateway and the local one)."""

    default_message = "Unknown API route."


class MethodNotAllowed(ApiError):
    status, code, default_message = 405, "method_not_allowed", "Method not allowed."


class Conflict(ApiError):
    status, code, default_message = 409, "conflict", "Another request is changing this right now."


class ObjectAlreadyExists(ApiError):
    """A create of something whose name is taken (the SDK's `create-user --exist-ok` relies on 409)."""

    status, code, default_message = 409, "object_already_exists", "This name is taken."


class PayloadTooLarge(ApiError):
    status, code, default_message = 413, "payload_too_large", "The request body is too large."


class GatewayTimeout(ApiError):
    """API Gateway's answer when the function did not answer within its integration timeout
    (the function goes on): its default 5xx response, in the API's error format."""

    status, code, default_message = 504, "unknown_error", "Endpoint request timed out"


class BadGateway(ApiError):
    """API Gateway's answer when the function's answer could not be passed on (larger than a
    Lambda answer may be): its default 5xx response, in the API's error format."""

    status, code, default_message = 502, "unknown_error", "Internal server error"


class ServiceUnavailable(ApiError):
    """A part of the service that is not running (yet), or AWS too busy to answer: ask again shortly."""

    status, code, default_message = 503, "service_unavailable", "The service is starting; retry in a minute."


# What DynamoDB and S3 answer when they shed load (once botocore's own retries are spent), and
# a write that met a transaction on the same item (which botocore does not retry): the same
# request may well succeed a moment later, so it is a 503 that says so rather than a 500.
RETRY_LATER_CODES = frozenset({
    "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "TransactionConflictException", "SlowDown", "ServiceUnavailable", "InternalServerError",
})
BUSY = "AWS was too busy to answer this request just now; send it again in a moment."


class TooManyJobs(ApiError):
    """A new job would take a project, or an owner's projects, over their limit of jobs waiting
    or running (`QFC_MAX_ACTIVE_JOBS_PER_PROJECT`, `QFC_MAX_ACTIVE_JOBS_PER_OWNER`)."""

    status, code, default_message = (
        429, "too_many_jobs", "Too many jobs are waiting or running; try again once some are done.")


class HeaderFieldsTooLarge(ApiError):
    status, code, default_message = (
        431, "request_header_fields_too_large", "The request's headers are too large.")


class InvalidHttpRange(ApiError):
    status, code, default_message = (
        416, "invalid_http_range", "The provided HTTP range header is invalid.")


class EmptyContent(ApiError):
    status, code, default_message = 400, "empty_content", "Empty content: no `file` part."


class MultipleContents(ApiError):
    status, code, default_message = 400, "multiple_contents", "Multiple `file` parts."


class MultipleProjects(ApiError):
    status, code, default_message = (
        400, "multiple_projects", "The project already has another QGIS project file.")


class ProjectAlreadyExists(ApiError):
    status, code, default_message = (
        400, "project_already_exists", "This owner already has a project with the same name.")


class QgisProjectFileNotAllowed(ApiError):
    status, code, default_message = (
        400, "qgis_project_file_not_allowed",
        "QGIS project files are not allowed in this project.")


class InvalidQgisProjectFile(ApiError):
    status, code, default_message = (
        400, "invalid_qgis_project_file", "Invalid QGIS project file.")


class NoQgisProject(ApiError):
    status, code, default_message = (
        400, "no_qgis_project", "The project does not contain a valid QGIS project file.")


class InvalidJob(ApiError):
    status, code, default_message = 400, "invalid_job", "Invalid job."


class InvalidDeltafile(ApiError):
    status, code, default_message = 400, "invalid_deltafile", "Invalid deltafile."


class ExplicitDeletionOfLastVersion(ApiError):
    status, code, default_message = (
        400, "explicit_deletion_of_last_version",
        "Explicit deletion of last file version is not allowed!")


class DeltasNotStored(ApiError):
    """DynamoDB refused or failed a write of new deltas (not a concurrent upload of the same
    ones, which is fine): the push failed, and pushing the same deltafile again stores the rest."""

    status, code, default_message = (
        503, "deltas_not_stored",
        "The deltas could not all be stored right now; nothing is lost: push the same deltafile again.")


class MailNotSent(ApiError):
    """The mail service refused or failed the mail (SES: an unverified sender, a recipient outside
    SES's sandbox, throttling): nothing was sent, and asking again may work."""

    status, code, default_message = (
        503, "mail_not_sent",
        "The mail could not be sent right now; try again later or ask an administrator.")


# How a broken input rule reads, by pydantic error type; `{field}` is the field's name.
_INPUT_MESSAGES = {
    "missing": "`{field}` is required.",
    "string_type": "`{field}` must be a string.",
    "bool_type": "`{field}` must be a boolean (true/false/1/0).",
    "bool_parsing": "`{field}` must be a boolean (true/false/1/0).",
    "int_type": "`{field}` must be an integer.",
    "int_parsing": "`{field}` must be an integer.",
    "int_from_float": "`{field}` must be an integer.",
    "string_pattern_mismatch": "`{field}` holds characters that are not allowed, or is too long.",
    "dict_type": "`{field}` must be an object.",
    "model_type": "`{field}` must be an object.",
    "list_type": "`{field}` must be a list.",
    "extra_forbidden": "`{field}` is not allowed here.",
    "string_too_short": "`{field}` must not be empty.",
    "string_too_long": "`{field}` is at most {max_length} characters long.",
    "too_long": "`{field}` has too many items.",
    "int_parsing_size": "`{field}` is out of range.",
    "greater_than_equal": "`{field}` must be at least {ge}.",
    "less_than_equal": "`{field}` must be at most {le}.",
}
MAX_FIELD_CHARS = 100


def _input_message(error: dict) -> str:
    field = ".".join(str(part) for part in error["loc"])
    if len(field) > MAX_FIELD_CHARS:  # a client's own (long) key in a free-form object
        field = field[:MAX_FIELD_CHARS] + "…"
    if error["type"] == "value_error":
        reason = str(error["ctx"]["error"])
        return f"`{field}` {reason}." if field else f"{reason[0].upper()}{reason[1:]}."
    if error["type"] == "literal_error":
        return f"`{field}` must be one of: {error['ctx']['expected'].replace(chr(39), '')}."
    template = _INPUT_MESSAGES.get(error["type"], "`{field}` is not valid.")
    return template.format(field=field or "body", **(error.get("ctx") or {}))


def as_api_error(exc: Exception) -> ApiError:
    """The API error an exception stands for; unexpected ones become `unknown_error` (500)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        message = " ".join(_input_message(error) for error in exc.errors()[:5])
        # A deltafile has its own code, which QField knows.
        return InvalidDeltafile(message) if exc.title == "Deltafile" else ValidationError(message)
    if isinstance(exc, DoesNotExist):
        return ObjectNotFound()
    if _is_retry_later(exc):
        return ServiceUnavailable(BUSY)
    return ApiError()


def _is_retry_later(exc: Exception) -> bool:
    if isinstance(exc, PynamoDBException):
        reasons = getattr(exc.cause, "cancellation_reasons", None) or []
        if any(reason is not None and reason.code == "TransactionConflict" for reason in reasons):
            return True  # a transaction cancelled because another one held an item
        exc = exc.cause
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in RETRY_LATER_CODES


def error_body(error: ApiError) -> dict[str, str]:
    return {"code": error.code, "message": error.message}


def error_json(error: ApiError) -> str:
    """The body as text, for answers given outside a view (gateway responses)."""
    return json.dumps(error_body(error))
