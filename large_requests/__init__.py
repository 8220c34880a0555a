"""The large-request service: file uploads too large for API Gateway and Lambda.

A third program over chalicelib, beside the API (app.py) and the job worker (job_containers):
`python -m large_requests` serves `POST /api/v1/files/<project>/<path>/` with the bodies the
edge sends it (CloudFront on AWS, devstack/edge.py locally: chalicelib/http/limits.py says which),
reading each body as it arrives and storing the file part by part
(chalicelib/services/streamed_uploads.py). It runs the same services code as the API: the same
token, permissions, file rules, quota, checksums and versions, the same answer.
"""
