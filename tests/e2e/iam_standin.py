"""moto's server, with its IAM enforcement covering what the stack's roles name.

    python -m tests.e2e.iam_standin -H 127.0.0.1 -p PORT

Enforcement starts when a test asks for it (`POST /moto-api/reset-auth` with 0, moto's own
switch): from then on moto authenticates every request (its signature, the credentials it names,
an assumed role's session token) and allows it only if the caller's IAM policies do, evaluated by
moto (explicit denies, allows, wildcards). Two gaps of moto 5.2.5 are closed here, so that the
policies the template gives a role are tested on what that role's process really does:

- moto authorizes a DynamoDB request against the resource "*", which no statement naming a table
  matches; here each request is authorized, as IAM does, on the tables and indexes it touches,
  a transaction item by item (tests/aws_authorization.py);
- a presigned S3 request (its signature in the query string, how clients download files) carries
  no Authorization header, on which moto's check fails; here its signature is verified as S3
  does (devstack.s3_gate, with the secret of the credentials it names) and its action is then
  authorized for those credentials by moto's policy evaluation;
- the inline policies of roles that moto's CloudFormation created are kept as objects, where its
  policy evaluation expects the JSON text the IAM API stores: they are handed to it as text;
- moto names the action of a HEAD request on a bucket `s3:HeadBucket`, which is no IAM action:
  IAM authorizes HeadBucket as `s3:ListBucket`, and so does this server.
"""

from __future__ import annotations

import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

from moto import settings
from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.iam.access_control import (
    CreateAccessKeyFailure,
    IAMPolicy,
    IAMRequest,
    PermissionResult,
    create_access_key,
)
from moto.s3.exceptions import S3AccessDeniedError
from moto.s3.responses import S3Response
from moto.server import main
from moto.utilities.utils import get_partition

from devstack.s3_gate import presigned_signature_is_valid
from tests.aws_authorization import dynamodb_authorizations


def _enforcing() -> bool:
    """moto's own count of the requests let through before enforcement starts."""
    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return False
    return True


def authorize_dynamodb_by_table(self: DynamoHandler, resource: str = "*") -> None:
    if not _enforcing():
        return
    request = IAMRequest(account_id=self.current_account, method=self.method, path=self.raw_path,
                         data=self.data, body=self.raw_body, headers=self.headers,
                         action=self._get_action())
    request.check_signature()
    partition = get_partition(self.region)

    def table_arn(name: str) -> str:
        return f"arn:{partition}:dynamodb:{self.region}:{self.current_account}:table/{name}"

    for action, arn in dynamodb_authorizations(self._get_action(), self.body, table_arn):
        request._action = action
        request.check_action_permitted(arn)


def _permitted(policies: list[Any], action: str, resource: str) -> bool:
    permitted = False
    for policy in policies:
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted |= result == PermissionResult.PERMITTED
    return permitted


# moto's name of an S3 request's action, where IAM authorizes it under another.
IAM_ACTION_OF = {"HeadBucket": "ListBucket"}


def authorize_presigned_s3(original):
    def authorize(self: S3Response, bucket_name: str | None = None, key_name: str | None = None) -> None:
        if self._get_action() in IAM_ACTION_OF:
            self.data["Action"] = IAM_ACTION_OF[self._get_action()]
        query = parse_qs(urlsplit(self.request.raw_url).query)
        if "Authorization" in self.headers or "X-Amz-Credential" not in query:
            return original(self, bucket_name=bucket_name, key_name=key_name)
        if not _enforcing():
            return None
        access_key_id = query["X-Amz-Credential"][0].split("/")[0]
        token = {"X-Amz-Security-Token": query["X-Amz-Security-Token"][0]} \
            if "X-Amz-Security-Token" in query else {}
        try:
            caller = create_access_key(self.current_account, get_partition(self.region), access_key_id, token)
        except CreateAccessKeyFailure:
            raise S3AccessDeniedError() from None
        credentials = caller.create_credentials()
        raw_query = urlsplit(self.request.raw_url).query
        if not presigned_signature_is_valid(self.method, self.headers["Host"], self.raw_path, raw_query,
                                            dict(self.headers), credentials.access_key,
                                            credentials.secret_key):
            raise S3AccessDeniedError()
        resource = f"arn:{get_partition(self.region)}:s3:::{bucket_name}"
        if key_name:
            resource += f"/{key_name}"
        if not _permitted(caller.collect_policies(), f"s3:{self._get_action()}", resource):
            raise S3AccessDeniedError()
        return None

    return authorize


def read_policy_objects(original):
    def read(self: IAMPolicy, policy: Any) -> None:
        if isinstance(policy, dict) and "Statement" in policy:
            policy = json.dumps(policy)
        original(self, policy)

    return read


def start() -> int:
    IAMPolicy.__init__ = read_policy_objects(IAMPolicy.__init__)
    DynamoHandler._authenticate_and_authorize_normal_action = authorize_dynamodb_by_table
    S3Response._authenticate_and_authorize_s3_action = authorize_presigned_s3(
        S3Response._authenticate_and_authorize_s3_action)
    main(sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(start())
