"""The AWS deployment as code: a CloudFormation template generated from the app itself.

`python -m infra.build --out build/template.json` writes the template; `python -m infra.package`
builds the Lambda zip it deploys. docs/deploy.md walks through a deployment.
"""
