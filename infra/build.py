"""Writes the CloudFormation template: `python -m infra.build --out build/template.json`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .api import REST_API, api_gateway_resource_paths
from .cfn import Json

# API Gateway's default quota of resources per REST API.
API_GATEWAY_RESOURCE_QUOTA = 300
# CloudFormation reads a template of up to this size from S3 (51,200 bytes when sent inline).
TEMPLATE_SIZE_LIMIT = 1_000_000


def generate() -> Json:
    # Importing the app registers its routes; done here so `--help` stays fast.
    from app import app

    from .template import build_template

    return build_template(app)


def write_template(template: Json, out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    # Compact: the API definition repeats per route and method, and size is what CloudFormation limits.
    text = json.dumps(template, separators=(",", ":")) + "\n"
    out.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


def summary(template: Json, size: int) -> str:
    definition = template["Resources"][REST_API]["Properties"]["Body"]
    api_resources = len(api_gateway_resource_paths(definition))
    return (
        f"{len(template['Resources'])} CloudFormation resources, "
        f"{len(definition['paths'])} routes, "
        f"{api_resources}/{API_GATEWAY_RESOURCE_QUOTA} API Gateway resources, "
        f"{size} bytes (limit {TEMPLATE_SIZE_LIMIT})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.build", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/template.json"))
    args = parser.parse_args(argv)
    template = generate()
    size = write_template(template, args.out)
    print(f"Wrote {args.out}: {summary(template, size)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
