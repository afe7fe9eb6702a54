"""One S3 call against `arca server`'s gateway, for tests/server/s3.rs.

Usage: server_client.py ENDPOINT ACCESS_KEY SECRET_KEY OP [BUCKET [KEY]]
OP: buckets | get | list | prefixes. Prints JSON: {"status": N, "code": C, "value": ...}.
"""
import json
import sys

import boto3
import botocore.config
from botocore.exceptions import ClientError

endpoint, ak, sk, op = sys.argv[1:5]
rest = sys.argv[5:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=ak,
    aws_secret_access_key=sk,
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
)
try:
    if op == "buckets":
        v = sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))
    elif op == "get":
        v = s3.get_object(Bucket=rest[0], Key=rest[1])["Body"].read().decode()
    elif op == "prefixes":
        r = s3.list_objects_v2(Bucket=rest[0], Delimiter="/")
        v = [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    elif op == "list":
        r = s3.list_objects_v2(Bucket=rest[0], Prefix=rest[1] if len(rest) > 1 else "")
        v = [o["Key"] for o in r.get("Contents", [])]
    else:
        raise SystemExit("unknown op " + op)
    print(json.dumps({"status": 200, "code": None, "value": v}))
except ClientError as e:
    print(
        json.dumps(
            {
                "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "code": e.response.get("Error", {}).get("Code"),
                "value": None,
            }
        )
    )
