"""Writes botocore_sigv4.json: S3 requests signed by botocore's S3SigV4Auth, the golden vectors
HedgerowS3's signer is checked against. Run with any python that has botocore:
    python3 make_botocore_vectors.py > botocore_sigv4.json
"""
import datetime
import hashlib
import json
import sys
from unittest import mock

import botocore
import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

WHEN = datetime.datetime(2024, 1, 1, 12, 30, 45)
EMPTY = hashlib.sha256(b"").hexdigest()

# (name, method, url (path already percent-encoded the way S3 wants), headers, body, region, session token)
CASES = [
    ("put-object-path-style", "PUT", "http://127.0.0.1:9000/bucket/exports/2024-01-01T00%3A00%3A00%2B00%3A00-2024-01-01T01%3A00%3A00%2B00%3A00.jsonl.gz",
     {"Content-Type": "application/octet-stream"}, b"hello world\n", "us-east-1", None),
    ("put-object-virtual-host", "PUT", "https://my-bucket.s3.eu-west-2.amazonaws.com/a%20b/%C3%A9t%C3%A9/file.parquet",
     {"x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": "key-1"}, b"\x00PAR1" * 100, "eu-west-2", None),
    ("create-multipart", "POST", "https://s3.us-west-2.amazonaws.com/bucket/big/file.parquet?uploads",
     {"x-amz-server-side-encryption": "AES256"}, b"", "us-west-2", None),
    ("upload-part", "PUT", "https://s3.us-west-2.amazonaws.com/bucket/big/file.parquet?partNumber=2&uploadId=VXBsb2FkIElE%2Blong~id",
     {}, b"part two " * 1000, "us-west-2", None),
    ("list-objects-v2", "GET", "http://127.0.0.1:9000/bucket?list-type=2&prefix=exports%2F2024%2F&continuation-token=abc%3D%3D",
     {}, b"", "us-east-1", None),
    ("session-token-delete", "DELETE", "https://bucket.s3.amazonaws.com/key%2Bplus/x~y_z-.json",
     {}, b"", "us-east-1", "FwoGZXIvYXdzEKr//////////wEaDEXAMPLETOKEN"),
    ("head-bucket", "HEAD", "http://127.0.0.1:9000/bucket", {}, b"", "ap-southeast-1", None),
]


def main():
    vectors = []
    for name, method, url, headers, body, region, token in CASES:
        credentials = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token)
        request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
        with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
            botocore.auth.S3SigV4Auth(credentials, "s3", region).add_auth(request)
        vectors.append({
            "name": name,
            "method": method,
            "url": url,
            "headers": headers,
            "payload_sha256": hashlib.sha256(body).hexdigest(),
            "region": region,
            "session_token": token,
            "amz_date": request.headers["X-Amz-Date"],
            "authorization": request.headers["Authorization"],
        })
    json.dump({"generator": "botocore " + botocore.__version__, "access_key": "AKIAIOSFODNN7EXAMPLE",
               "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "vectors": vectors}, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()
