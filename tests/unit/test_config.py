"""Settings come from the environment once, with embedded defaults and clear errors."""

from __future__ import annotations

import pytest

from ioc.config import ConfigError, Settings


def test_no_environment_means_the_embedded_broker_and_local_database() -> None:
    s = Settings.from_env({})
    assert s.embedded_broker and s.broker_flavor == "tansu"
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.database_url.startswith("postgresql://")


def test_an_external_kafka_is_treated_as_apache_kafka_unless_told_otherwise() -> None:
    s = Settings.from_env({"IOC_KAFKA_URL": "kafka-1:9092;kafka-2:9092"})
    assert not s.embedded_broker and s.broker_flavor == "kafka"
    assert s.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    s = Settings.from_env({"IOC_KAFKA_URL": "kafka://127.0.0.1:1", "IOC_BROKER_FLAVOR": "tansu"})
    assert s.broker_flavor == "tansu"


def test_partition_counts_per_stream_override_the_default() -> None:
    s = Settings.from_env({"IOC_PARTITIONS": "6", "IOC_PARTITIONS_SECURITY": "24"})
    assert s.partitions_for("security") == 24 and s.partitions_for("dossier") == 6


def test_bad_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="IOC_BATCH_MAX"):
        Settings.from_env({"IOC_BATCH_MAX": "lots"})
    with pytest.raises(ConfigError, match="IOC_PARTITIONS"):
        Settings.from_env({"IOC_PARTITIONS": "0"})


def test_the_database_password_is_never_printed() -> None:
    s = Settings.from_env({"IOC_DATABASE_URL": "postgresql://ioc:s3cret@db:5432/ioc"})
    assert "s3cret" not in repr(s)
