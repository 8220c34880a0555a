"""`python -m large_requests`: the large-request service (QFC_LARGE_REQUESTS_HOST and _PORT)."""

import sys

from large_requests.server import main

sys.exit(main())
