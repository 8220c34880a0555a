"""The local AWS stand-in: moto's server, with DynamoDB operations made atomic as in AWS.

    python -m devstack.aws_standin -H 127.0.0.1 -p 5000
"""

import sys

from moto.server import main

from .moto_atomic import make_dynamodb_atomic

if __name__ == "__main__":
    make_dynamodb_atomic()
    sys.exit(main(sys.argv[1:]))
