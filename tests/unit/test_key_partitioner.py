"""Our producers put a key on the partition every other Kafka client would choose for it, so
per-key order holds when the portal's Java client, a SOC's librdkafka relay and the gateway
write to the same topic."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from ioc.broker import key_partitioner

# Apache Kafka's own murmur2 vectors (clients UtilsTest.testMurmur2), signed Java ints.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_keys_land_where_the_java_client_puts_them() -> None:
    for key, java_hash in JAVA_MURMUR2.items():
        for n in (1, 3, 6, 12, 64):
            expected = (java_hash & 0x7FFFFFFF) % n
            assert key_partitioner(key, list(range(n)), []) == expected, (key, n)


@given(
    key=st.binary(max_size=64),
    n=st.integers(min_value=1, max_value=256),
    repeat=st.booleans(),
)
def test_same_partition_as_aiokafkas_default(key: bytes, n: int, repeat: bool) -> None:
    partitions = list(range(n))
    first = key_partitioner(key, partitions, partitions)
    again = key_partitioner(key, partitions, partitions) if repeat else first  # from the cache
    assert first == again == DefaultPartitioner()(key, partitions, partitions)


def test_keyless_records_go_to_an_available_partition() -> None:
    assert all(key_partitioner(None, [0, 1, 2, 3], [2]) == 2 for _ in range(20))
    assert {key_partitioner(None, [0, 1], []) for _ in range(200)} == {0, 1}
