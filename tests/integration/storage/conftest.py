"""The S3 fixtures (``moto_server``, ``s3_bucket``) live in ``tests/conftest.py``: the exchange's
own tests run against the same server."""
