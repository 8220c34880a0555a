"""The outside world, behind one module each: the boto3 clients (`aws`), the versioned S3 bucket
(`storage`), the jobs queue (`job_queue`) and work that outlives a request (`background`).

Adapters know AWS and the settings, nothing of the models or the rules: the layers above call them.
"""
