"""What handlers receive (Message, Messages) and how producers turn values into bytes (Encoder)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from aiokafka import ConsumerRecord

from aiostream_kafka import DecodeError, EncodeError, Message, Messages
from aiostream_kafka.codecs import Decoder, Encoder, build_decoder
from aiostream_kafka.errors import ConfigError
from aiostream_kafka.messages import batch_of


class Order(msgspec.Struct):
    id: int
    total: float


def decoder_for(payload: Any, format: str = "json") -> Decoder | None:
    return build_decoder(payload, format, None, where="route for topic 'orders'")


def message(
    value: bytes | None, decoder: Decoder | None = None, offset: int = 0, **fields: Any
) -> Message[Any]:
    return Message(
        topic="orders", partition=3, offset=offset, key=b"k", value=value, decoder=decoder, **fields
    )


def batch(*offsets: int, attempt: int = 1) -> Messages[Any]:
    return Messages(
        [message(str(offset).encode(), offset=offset) for offset in offsets],
        topic="orders",
        partition=3,
        cluster="primary",
        attempt=attempt,
    )


# --- Message.payload ---------------------------------------------------------------------


def test_a_json_payload_decodes_into_the_routes_struct() -> None:
    msg = message(b'{"id": 7, "total": 12.5}', decoder_for(Order))

    assert msg.payload == Order(id=7, total=12.5)


def test_a_msgpack_payload_decodes_into_the_routes_struct() -> None:
    msg = message(msgspec.msgpack.encode({"id": 7, "total": 12.5}), decoder_for(Order, "msgpack"))

    assert msg.payload == Order(id=7, total=12.5)


def test_a_custom_decoder_is_used_as_it_is() -> None:
    def upper(value: bytes) -> str:
        return value.decode().upper()

    msg = message(b"hello", build_decoder(bytes, "json", upper, where="route for topic 'orders'"))

    assert msg.payload == "HELLO"


def test_a_bytes_payload_is_the_raw_value() -> None:
    assert decoder_for(bytes) is None
    assert message(b"\x00raw", decoder_for(bytes)).payload == b"\x00raw"


def test_a_tombstone_has_a_none_payload_even_with_a_decoder() -> None:
    assert message(None, decoder_for(Order)).payload is None
    assert message(None, decoder_for(Order, "msgpack")).payload is None


def test_a_tombstone_never_reaches_a_custom_decoder() -> None:
    def refuse(value: bytes) -> Any:
        raise AssertionError(f"decoded {value!r}")

    decoder = build_decoder(bytes, "json", refuse, where="route for topic 'orders'")

    assert message(None, decoder).payload is None


def test_the_payload_is_decoded_once_on_first_access() -> None:
    calls: list[bytes] = []

    def counting(value: bytes) -> bytes:
        calls.append(value)
        return value

    msg = message(b"x", counting)
    assert calls == []

    first = msg.payload
    second = msg.payload

    assert first is second
    assert calls == [b"x"]


def test_a_bad_payload_fails_on_access_not_when_the_message_is_built() -> None:
    msg = message(b"not json", decoder_for(Order))

    with pytest.raises(DecodeError):
        _ = msg.payload


def test_a_decode_error_says_where_the_message_is() -> None:
    msg = message(b'{"id": "seven", "total": 1}', decoder_for(Order), offset=42)

    with pytest.raises(DecodeError, match=r"\(topic 'orders', partition 3, offset 42\)$") as raised:
        _ = msg.payload

    assert (raised.value.topic, raised.value.partition, raised.value.offset) == ("orders", 3, 42)
    assert isinstance(raised.value.__cause__, msgspec.ValidationError)


def test_a_decode_error_from_a_custom_decoder_says_where_the_message_is() -> None:
    def refuse(value: bytes) -> Any:
        raise ValueError("no thanks")

    with pytest.raises(DecodeError, match=r"cannot decode payload: no thanks \(topic 'orders', partition 3"):
        _ = message(b"x", refuse).payload


def test_an_unknown_format_is_rejected_naming_the_route() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': format must be one of json, msgpack"):
        decoder_for(Order, "avro")


def test_a_decoder_that_is_not_callable_is_rejected_naming_the_route() -> None:
    with pytest.raises(ConfigError, match=r"^route for topic 'orders': decoder must be callable"):
        build_decoder(bytes, "json", b"nope", where="route for topic 'orders'")  # type: ignore[arg-type]


# --- Message headers and metadata ----------------------------------------------------------


def test_a_header_without_a_value_is_none_in_headers_and_raw_headers() -> None:
    msg = message(b"", raw_headers=[("null", None), ("dup", b"1"), ("dup", None)])

    assert msg.headers == {"null": None, "dup": None}
    assert list(msg.raw_headers) == [("null", None), ("dup", b"1"), ("dup", None)]


def test_headers_map_names_to_values_and_the_last_repeat_wins() -> None:
    msg = message(b"", raw_headers=[("trace", b"1"), ("source", b"web"), ("trace", b"2")])

    assert msg.headers == {"trace": b"2", "source": b"web"}
    assert list(msg.raw_headers) == [("trace", b"1"), ("source", b"web"), ("trace", b"2")]


def test_a_message_without_headers_has_empty_headers() -> None:
    assert message(b"").headers == {}


def test_the_timestamp_is_a_utc_datetime() -> None:
    msg = message(b"", timestamp_ms=1_700_000_000_500)

    assert msg.timestamp.isoformat() == "2023-11-14T22:13:20.500000+00:00"


def test_a_message_repr_says_where_it_is() -> None:
    assert repr(message(b"", offset=9, cluster="analytics")) == "<Message analytics/orders[3]@9>"


# --- Messages ----------------------------------------------------------------------------


def test_a_batch_knows_its_first_and_last_offset_and_length() -> None:
    messages = batch(10, 11, 12)

    assert messages.first_offset == 10
    assert messages.last_offset == 12
    assert len(messages) == 3


def test_a_batch_iterates_and_indexes_its_messages_in_order() -> None:
    messages = batch(10, 11, 12)

    assert [msg.offset for msg in messages] == [10, 11, 12]
    assert messages[0].offset == 10
    assert messages[-1].offset == 12
    assert [msg.offset for msg in messages[1:]] == [11, 12]


def test_payloads_are_the_decoded_payloads_in_order() -> None:
    messages = Messages(
        [message(b'{"id": 1, "total": 1.0}', decoder_for(Order), offset=0), message(None, offset=1)],
        topic="orders",
        partition=3,
        cluster="primary",
    )

    assert messages.payloads() == [Order(id=1, total=1.0), None]


def test_a_batch_is_on_its_first_attempt_unless_told_otherwise() -> None:
    assert batch(1).attempt == 1
    assert batch(1, attempt=3).attempt == 3


def test_a_batch_repr_shows_its_offsets() -> None:
    assert repr(batch(10, 11)) == "<Messages primary/orders[3] 10..11 (2)>"


# --- Encoder -----------------------------------------------------------------------------


def test_bytes_are_sent_as_they_are() -> None:
    assert Encoder().value(b"\x00\x01") == b"\x00\x01"


def test_a_str_is_sent_as_utf8() -> None:
    assert Encoder().value("héllo") == "héllo".encode()


def test_none_stays_none_for_tombstones() -> None:
    assert Encoder().value(None) is None


def test_a_struct_is_encoded_as_json() -> None:
    assert Encoder().value(Order(id=1, total=2.5)) == b'{"id":1,"total":2.5}'


def test_a_dict_is_encoded_as_json() -> None:
    assert Encoder().value({"id": 1}) == b'{"id":1}'


def test_msgpack_encoding_round_trips() -> None:
    encoded = Encoder("msgpack").value(Order(id=1, total=2.5))

    assert encoded is not None
    assert msgspec.msgpack.decode(encoded, type=Order) == Order(id=1, total=2.5)


def test_a_value_msgspec_cannot_encode_is_an_encode_error_naming_the_type_and_format() -> None:
    with pytest.raises(EncodeError, match=r"^cannot encode object as json"):
        Encoder().value(object())


def test_an_unknown_producer_format_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"producer format must be one of json, msgpack, not 'avro'"):
        Encoder("avro")


@pytest.mark.parametrize(
    ("key", "expected"),
    [(b"k", b"k"), ("order-7", b"order-7"), (7, b"7"), (None, None)],
)
def test_keys_may_be_bytes_str_or_int(key: Any, expected: bytes | None) -> None:
    assert Encoder.key(key) == expected


def test_a_key_of_another_type_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match=r"a message key must be bytes, str or int, not float"):
        Encoder.key(1.5)


def test_headers_from_a_dict_encode_str_values_as_utf8() -> None:
    assert Encoder.headers({"trace": "abc", "raw": b"\x01"}) == [("trace", b"abc"), ("raw", b"\x01")]


def test_headers_from_a_list_keep_repeats_and_order() -> None:
    headers = [("trace", b"1"), ("trace", "2")]

    assert Encoder.headers(headers) == [("trace", b"1"), ("trace", b"2")]


def test_no_headers_are_none() -> None:
    assert Encoder.headers({}) is None
    assert Encoder.headers(None) is None


def test_a_header_name_that_is_not_a_str_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match=r"header names must be str, not bytes"):
        Encoder.headers([(b"trace", b"1")])


def test_a_header_value_that_is_not_text_or_bytes_is_an_encode_error_naming_the_header() -> None:
    with pytest.raises(EncodeError, match="header 'n' must be str, bytes or None, not int"):
        Encoder.headers({"n": 5})


def test_a_null_header_value_is_kept() -> None:
    assert Encoder.headers({"n": None}) == [("n", None)]


# --- batches the listener hands over (made from aiokafka's records) -----------------------


def records(*values: bytes | None, first_offset: int = 10) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            "orders", 3, first_offset + i, 1_700_000_000_000, 0, b"k", value, None, 1, 1, [("h", b"1")]
        )
        for i, value in enumerate(values)
    ]


def test_a_batch_from_records_has_the_records_messages() -> None:
    messages = batch_of(records(b"a", None), topic="orders", partition=3, cluster="analytics")

    assert (len(messages), messages.first_offset, messages.last_offset) == (2, 10, 11)
    assert repr(messages) == "<Messages analytics/orders[3] 10..11 (2)>"
    first, second = messages
    assert (first.topic, first.partition, first.offset, first.key, first.value) == (
        "orders",
        3,
        10,
        b"k",
        b"a",
    )
    assert (first.cluster, first.timestamp_ms, list(first.raw_headers)) == (
        "analytics",
        1_700_000_000_000,
        [("h", b"1")],
    )
    assert second.value is None
    assert messages[1] is second  # made once
    assert messages.payloads() == [b"a", None]


def test_payloads_of_a_batch_from_records_are_decoded_once_even_when_the_messages_come_later() -> None:
    calls: list[bytes] = []

    def counting(value: bytes) -> bytes:
        calls.append(value)
        return value.upper()

    messages = batch_of(
        records(b"a", b"b", None), topic="orders", partition=3, cluster="primary", decoder=counting
    )

    assert messages.payloads() == [b"A", b"B", None]
    assert messages.payloads() == [b"A", b"B", None]
    assert [m.payload for m in messages] == [b"A", b"B", None]
    assert calls == [b"a", b"b"]


def test_a_decode_error_in_payloads_of_a_batch_from_records_names_the_message_and_keeps_the_rest() -> None:
    messages = batch_of(
        records(b'{"id": 1, "total": 1}', b"not json", b'{"id": 3, "total": 3}'),
        topic="orders",
        partition=3,
        cluster="primary",
        decoder=decoder_for(Order),
    )

    with pytest.raises(DecodeError, match=r"\(topic 'orders', partition 3, offset 11\)$"):
        messages.payloads()
    with pytest.raises(DecodeError, match=r"offset 11\)$"):
        messages.payloads()  # tried again, not skipped

    first, bad, third = messages
    assert first.payload == Order(1, 1.0)
    assert third.payload == Order(3, 3.0)
    with pytest.raises(DecodeError, match=r"offset 11\)$"):
        _ = bad.payload


def test_tombstones_in_a_batch_from_records_are_none_on_a_typed_route_and_never_decoded() -> None:
    decode = decoder_for(Order)
    assert decode is not None
    decoded: list[bytes] = []

    def counting(value: bytes) -> Order:
        decoded.append(value)
        order: Order = decode(value)
        return order

    messages = batch_of(
        records(None, b'{"id": 2, "total": 2}', None),
        topic="orders",
        partition=3,
        cluster="primary",
        decoder=counting,
    )

    assert messages.payloads() == [None, Order(2, 2.0), None]
    assert [m.payload for m in messages] == [None, Order(2, 2.0), None]
    assert decoded == [b'{"id": 2, "total": 2}']


def test_payloads_after_iterating_a_batch_from_records_use_the_messages() -> None:
    messages = batch_of(
        records(b'{"id": 1, "total": 1}'),
        topic="orders",
        partition=3,
        cluster="primary",
        decoder=decoder_for(Order),
    )
    [only] = messages

    assert messages.payloads() == [Order(1, 1.0)]
    assert messages.payloads()[0] is only.payload


def test_a_message_can_be_made_with_positional_fields() -> None:
    msg: Message[bytes] = Message("orders", 3, 9, b"k", b"v", [("h", b"1")], 5, "analytics")

    assert (msg.topic, msg.partition, msg.offset, msg.key, msg.value) == ("orders", 3, 9, b"k", b"v")
    assert (list(msg.raw_headers), msg.timestamp_ms, msg.cluster, msg.payload) == (
        [("h", b"1")],
        5,
        "analytics",
        b"v",
    )
