"""An app as an AsyncAPI 3.0 document (``aiostream-kafka asyncapi APP``): its clusters as
servers, its routes, dead-letter queues, jobs and declared outputs as channels and operations,
each payload's JSON Schema from msgspec."""

from aiostream_kafka.asyncapi.document import ASYNCAPI_VERSION, asyncapi_document
from aiostream_kafka.asyncapi.yaml_text import to_yaml

__all__ = ["ASYNCAPI_VERSION", "asyncapi_document", "to_yaml"]
