"""`GET status/` checks DynamoDB and S3 for real, without authentication."""

STATUS_KEYS = {"database", "storage", "status_page_url", "incident_message", "incident_timestamp_utc",
               "maintenance_message", "maintenance_start_timestamp_utc", "maintenance_end_timestamp_utc"}


def test_everything_ok(api):
    reply = api.get("status/")
    assert reply.status == 200
    assert reply.json().keys() >= STATUS_KEYS
    assert (reply.json()["database"], reply.json()["storage"]) == ("ok", "ok")


def test_storage_down_is_reported(api):
    from chalicelib.adapters import aws
    from chalicelib.config import settings

    aws.s3().delete_bucket_lifecycle(Bucket=settings.bucket)
    aws.s3().delete_bucket(Bucket=settings.bucket)
    body = api.get("status/").json()
    assert (body["database"], body["storage"]) == ("ok", "error")


def test_database_down_is_reported(api):
    from chalicelib.models import User

    User.delete_table()
    body = api.get("status/").json()
    assert (body["database"], body["storage"]) == ("error", "ok")
