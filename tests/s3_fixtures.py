"""A loopback S3 server for the object-store tests and benchmarks/objstore.py: moto's, on
127.0.0.1, with one bucket made. Stopped by the caller (`server.stop()`)."""

from __future__ import annotations

import logging


def start_s3(bucket: str, key: str = "testing"):
    """(server, endpoint, Lance storage options that reach the bucket with `key` as both keys)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                 aws_secret_access_key=key).create_bucket(Bucket=bucket)
    options = {"aws_endpoint": endpoint, "allow_http": "true", "aws_access_key_id": key,
               "aws_secret_access_key": key, "aws_region": "us-east-1"}
    return server, endpoint, options
