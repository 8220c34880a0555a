"""`qfc-transfer`: moves large files to and from the server through its presigned S3 flow.

Files above the API's direct-upload limit cannot go through the API itself, so the bytes travel
straight between this tool and S3 in 8 MiB parts, several at a time, and the API only hands out
short-lived URLs and records the result. Both directions resume after an interruption from a
small JSON state file kept next to the local file.
"""
