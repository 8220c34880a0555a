"""The local stack reachable from elsewhere (`QFC_HOST` other than loopback): moto stays on
loopback and only presigned requests get through the gate on the public address. The "network"
here is 127.0.0.2, another loopback address: no packet leaves the machine."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.stack import LocalStack

pytestmark = pytest.mark.e2e
PUBLIC = "127.0.0.2"


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    stack = LocalStack(tmp_path_factory.mktemp("exposed"), extra_env={"QFC_HOST": PUBLIC})
    stack.start()
    assert stack.createuser("alice", "pw-alice-secret").returncode == 0
    yield stack
    assert stack.stop() == 0


def test_presigned_urls_work_through_the_gate_and_nothing_else_does(exposed):
    banner = "".join(exposed.output)
    assert f"http://{PUBLIC}:{exposed.aws_port}" in banner and "only presigned requests" in banner
    api = exposed.url
    token = requests.post(f"{api}auth/login/", data={"username": "alice", "password": "pw-alice-secret"},
                          timeout=30).json()["token"]
    auth = {"Authorization": f"Token {token}"}
    pid = requests.post(f"{api}projects/", json={"name": "exposed"}, headers=auth, timeout=30).json()["id"]
    assert requests.post(f"{api}files/{pid}/notes.txt/", headers=auth, files={"file": ("n", b"field notes")},
                         timeout=30).status_code == 201

    # A download: the redirect leads to the gate, which lets the presigned GET through.
    location = requests.get(f"{api}files/{pid}/notes.txt/", headers=auth, allow_redirects=False,
                            timeout=30).headers["Location"]
    assert location.startswith(f"http://{PUBLIC}:{exposed.aws_port}/")
    assert requests.get(location, timeout=30).content == b"field notes"

    # A presigned multipart upload, parts PUT through the gate.
    started = requests.post(f"{api}uploads/{pid}/", json={"name": "big.bin", "size": 9 * 1024 * 1024},
                            headers=auth, timeout=30).json()
    for part in started["parts"]:
        assert requests.put(part["url"], data=b"p" * part["size"], timeout=60).status_code == 200
    done = requests.post(f"{api}uploads/{pid}/{started['upload_id']}/complete/", headers=auth, timeout=60)
    assert done.status_code == 201, done.text

    # Everything else from the network is refused: listing, reading, writing, tampering.
    gate = f"http://{PUBLIC}:{exposed.aws_port}"
    for method, url in [
        ("GET", f"{gate}/qfc-files?list-type=2"), ("GET", f"{gate}/"),
        ("GET", location.split("?")[0]), ("PUT", f"{gate}/qfc-files/projects/{pid}/files/evil.txt"),
        ("DELETE", location), ("GET", location.replace("notes.txt", "other.txt")),
        ("POST", f"{gate}/moto-api/reset"),
    ]:
        reply = requests.request(method, url, data=b"x", timeout=30)
        assert reply.status_code == 403 and b"AccessDenied" in reply.content, (method, url)
    listing = requests.get(f"{api}files/{pid}/", headers=auth, timeout=30).json()
    assert sorted(f["name"] for f in listing) == ["big.bin", "notes.txt"]


def test_on_loopback_a_changed_key_expiry_or_method_is_403_as_on_s3(stack):
    """moto itself is on loopback, and checks signatures as S3 does: only what the API presigned,
    as it presigned it, and what is signed with the stack's credentials."""
    import boto3
    from botocore.exceptions import ClientError

    token = stack.login("alice", "pw-alice-secret")
    auth = {"Authorization": f"Token {token}"}
    pid = requests.post(f"{stack.url}projects/", json={"name": "loopback-signatures"}, headers=auth,
                        timeout=30).json()["id"]
    assert requests.post(f"{stack.url}files/{pid}/notes.txt/", headers=auth, files={"file": ("n", b"notes")},
                         timeout=30).status_code == 201
    location = requests.get(f"{stack.url}files/{pid}/notes.txt/", headers=auth, allow_redirects=False,
                            timeout=30).headers["Location"]
    assert location.startswith(f"http://127.0.0.1:{stack.aws_port}/")
    assert requests.get(location, timeout=30).content == b"notes"

    expires = next(p for p in location.split("?")[1].split("&") if p.startswith("X-Amz-Expires="))
    for method, url in [
        ("GET", location.replace("notes.txt", "other.txt")),  # another key
        ("GET", location.replace(expires, "X-Amz-Expires=604800")),  # a longer life
        ("PUT", location), ("DELETE", location),  # another method
        ("GET", location.split("?")[0]),  # no signature
        ("GET", f"http://127.0.0.1:{stack.aws_port}/qfc-files?list-type=2"),
    ]:
        reply = requests.request(method, url, data=b"x" if method == "PUT" else None, timeout=30)
        assert reply.status_code == 403 and b"AccessDenied" in reply.content, (method, url)

    def s3(secret: str):
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{stack.aws_port}", region_name="us-east-1",
                            aws_access_key_id="local", aws_secret_access_key=secret)

    with pytest.raises(ClientError) as refused:
        s3("not-the-stacks-secret").head_object(Bucket="qfc-files", Key=f"projects/{pid}/files/notes.txt")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError):
        boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{stack.aws_port}", region_name="us-east-1",
                     aws_access_key_id="local", aws_secret_access_key="wrong").list_tables()
    # What the stack's processes sign with its credentials passes, S3 and DynamoDB alike.
    stored = s3("local").get_object(Bucket="qfc-files", Key=f"projects/{pid}/files/notes.txt")
    assert stored["Body"].read() == b"notes"
    dynamodb = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{stack.aws_port}",
                            region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    assert dynamodb.list_tables()["TableNames"]
