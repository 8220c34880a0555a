"""The QFieldCloud-compatible API behind the Chalice app, in layers, each a folder (bottom to top):

- here: the foundation every layer uses (`config`, `errors`, `observability`);
- `models/`: the DynamoDB tables (PynamoDB), with the shapes and words they store;
- `adapters/`: AWS (boto3 clients, the S3 bucket, the jobs queue, background invocation);
- `rules/`: permissions, plans, quota, file and name rules, login throttling, checksums, hosts;
- `services/`: what the API and the job worker do, one module per concern, with their inputs;
- `http/`: routing, request parsing, handlers, responses, pagination, the OpenAPI document;
- `maintenance/`: administration from a shell (left out of the Lambda package).

A layer imports only layers below it (tests/test_layers.py). docs/architecture.md says where a
new module goes.
"""
