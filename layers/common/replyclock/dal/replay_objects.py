"""Export files to replay: an S3 object ("s3://bucket/key") or, for the local stack, a file path."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from replyclock.connectors.replay import Export, MalformedExport


class ExportNotFound(Exception):
    """The export named by a replay source does not exist or cannot be read."""


def read_export(uri: str) -> Export:
    if uri.startswith("s3://"):
        return _read_s3(uri)
    path = Path(urllib.parse.urlsplit(uri).path if uri.startswith("file://") else uri)
    try:
        stat = path.stat()
        # Bytes, then decode: keeps CR/LF inside quoted CSV fields exactly as written.
        data = path.read_bytes()
    except OSError as error:
        raise ExportNotFound(f"cannot read {path}: {error.strerror}") from None
    return Export(fingerprint=f"{stat.st_size}:{stat.st_mtime_ns}", text=_text(data, str(path)))


def _read_s3(uri: str) -> Export:
    parts = urllib.parse.urlsplit(uri)
    bucket, key = parts.netloc, urllib.parse.unquote(parts.path.lstrip("/"))
    try:
        # A client per read: replays are rare, and a cached client would outlive test mocks.
        found = boto3.client("s3").get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        raise ExportNotFound(f"cannot read {uri}: {code}") from None
    text = _text(found["Body"].read(), uri)
    return Export(fingerprint=f"{found.get('ETag', '')}:{found.get('VersionId', '')}", text=text)


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedExport(f"{where} is not UTF-8 text (byte {error.start})") from None
