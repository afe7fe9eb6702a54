"""boto3 and raw-HTTP checks of the S3 gateway, for tests/s3.rs.

Usage: client.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET
Prints one JSON object with what it saw; the Rust test asserts on it.
"""
import datetime
import http.client
import json
import sys
import urllib.parse

import boto3
import botocore.config
from botocore.exceptions import ClientError

endpoint, ak, sk, bucket = sys.argv[1:5]


def client(key=ak, secret=sk):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
        ),
    )


def status(f):
    """The HTTP status and S3 error code of a call (200, None on success)."""
    try:
        f()
        return [200, None]
    except ClientError as e:
        return [
            e.response["ResponseMetadata"]["HTTPStatusCode"],
            e.response.get("Error", {}).get("Code"),
        ]


s3 = client()
out = {}

# The root of the bucket, one level: latest/ and one prefix per restore point.
r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
out["root_prefixes"] = [p["Prefix"] for p in r.get("CommonPrefixes", [])]

# latest/ one level, two keys a page.
keys, prefixes, pages, token = [], [], 0, None
while True:
    kw = {"Bucket": bucket, "Prefix": "latest/", "Delimiter": "/", "MaxKeys": 2}
    if token:
        kw["ContinuationToken"] = token
    r = s3.list_objects_v2(**kw)
    pages += 1
    assert r["KeyCount"] <= 2, r
    keys += [o["Key"] for o in r.get("Contents", [])]
    prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
    if not r["IsTruncated"]:
        break
    token = r["NextContinuationToken"]
out["latest_level"] = {"keys": keys, "prefixes": prefixes, "pages": pages}

# Everything under latest/, three keys a page (the paginator follows the tokens).
deep = []
for page in s3.get_paginator("list_objects_v2").paginate(
    Bucket=bucket, Prefix="latest/", PaginationConfig={"PageSize": 3}
):
    deep += [[o["Key"], o["Size"]] for o in page.get("Contents", [])]
out["latest_deep"] = deep

# The same with ListObjects (v1) and markers.
v1 = []
for page in s3.get_paginator("list_objects").paginate(
    Bucket=bucket, Prefix="latest/", PaginationConfig={"PageSize": 3}
):
    v1 += [o["Key"] for o in page.get("Contents", [])]
out["latest_deep_v1"] = v1

# start-after.
r = s3.list_objects_v2(Bucket=bucket, Prefix="latest/many/", StartAfter="latest/many/f2")
out["start_after"] = [o["Key"] for o in r.get("Contents", [])]

# Conditional requests.
key = "latest/a.txt"
h = s3.head_object(Bucket=bucket, Key=key)
etag = h["ETag"]
lm = h["LastModified"]
later = lm + datetime.timedelta(days=1)
earlier = lm - datetime.timedelta(days=1)
out["etag"] = etag
out["content_type"] = h["ContentType"]
out["cond"] = {
    "if_match_ok": status(lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)),
    "if_match_bad": status(lambda: s3.get_object(Bucket=bucket, Key=key, IfMatch='"0000"')),
    "if_none_match_same": status(lambda: s3.get_object(Bucket=bucket, Key=key, IfNoneMatch=etag)),
    "if_none_match_other": status(
        lambda: s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"0000"')
    ),
    "if_modified_since_later": status(
        lambda: s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=later)
    ),
    "if_modified_since_earlier": status(
        lambda: s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=earlier)
    ),
    "if_unmodified_since_earlier": status(
        lambda: s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=earlier)
    ),
    "head_if_none_match": status(lambda: s3.head_object(Bucket=bucket, Key=key, IfNoneMatch=etag)),
}
out["range_suffix"] = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-5")["Body"].read().decode()
out["range_bad"] = status(lambda: s3.get_object(Bucket=bucket, Key=key, Range="bytes=999999-"))
out["range_empty_file"] = status(
    lambda: s3.get_object(Bucket=bucket, Key="latest/empty", Range="bytes=-5")
)

# Odd keys: never a 500.
odd = {
    "dotdot": "latest/../a.txt",
    "dotdot_inside": "latest/sub/../a.txt",
    "encoded_dotdot": "latest/%2e%2e/a.txt",
    "huge": "latest/" + "x" * 5000,
    "no_point": "nosuchpoint/a.txt",
    "directory": "latest/sub",
    "directory_slash": "latest/sub/",
    "point_only": "latest",
    "symlink": "latest/link",
    "nul": "latest/a\u0000b",
}
out["odd"] = {k: status(lambda v=v: s3.get_object(Bucket=bucket, Key=v)) for k, v in odd.items()}
out["odd_list"] = {
    "bad_token": status(
        lambda: s3.list_objects_v2(Bucket=bucket, ContinuationToken="zzzz")
    ),
    "foreign_token": status(
        lambda: s3.list_objects_v2(
            Bucket=bucket, ContinuationToken="6c61746573742f39393939393939392f33"
        )
    ),
    "other_delimiter": status(lambda: s3.list_objects_v2(Bucket=bucket, Delimiter="x")),
    "no_bucket": status(lambda: s3.list_objects_v2(Bucket="no-such-bucket")),
    "dotdot_prefix": status(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="latest/../")),
}

# Writes.
out["writes"] = {
    "put": status(lambda: s3.put_object(Bucket=bucket, Key="latest/new.txt", Body=b"x")),
    "delete": status(lambda: s3.delete_object(Bucket=bucket, Key="latest/a.txt")),
    "create_bucket": status(lambda: s3.create_bucket(Bucket="new-bucket")),
    "multipart": status(lambda: s3.create_multipart_upload(Bucket=bucket, Key="latest/m")),
    "put_acl": status(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")),
    "copy": status(
        lambda: s3.copy_object(
            Bucket=bucket, Key="latest/c", CopySource={"Bucket": bucket, "Key": "latest/a.txt"}
        )
    ),
}

# Keys.
out["keys"] = {
    "wrong_secret": status(lambda: client(secret="x" * 40).list_buckets()),
    "unknown_key": status(lambda: client(key="AKIANOSUCHKEY0000000").list_buckets()),
}


# Raw HTTP: unsigned, malformed authorization and dates.
def raw(method, path, headers):
    u = urllib.parse.urlparse(endpoint)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request(method, path, headers=headers)
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    return [r.status, body[:300]]


now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
out["raw"] = {
    "unsigned": raw("GET", "/", {}),
    "garbage_auth": raw("GET", "/", {"Authorization": "AWS4-HMAC-SHA256 garbage"}),
    "bad_credential": raw(
        "GET",
        "/",
        {
            "Authorization": "AWS4-HMAC-SHA256 Credential=/, SignedHeaders=host, Signature=00",
            "x-amz-date": now,
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    ),
    "bad_date": raw(
        "GET",
        "/",
        {
            "Authorization": "AWS4-HMAC-SHA256 Credential="
            + ak
            + "/20200101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature="
            + "0" * 64,
            "x-amz-date": "not-a-date",
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    ),
    "v2_auth": raw("GET", "/", {"Authorization": "AWS " + ak + ":bm90YXNpZ25hdHVyZQ==", "Date": "x"}),
    "dotdot_path": raw("GET", "/" + bucket + "/latest/%2e%2e/%2e%2e/etc/passwd", {}),
}

print(json.dumps(out))
