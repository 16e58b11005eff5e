"""PostgreSQL / TimescaleDB adapter: migrations, partition maintenance and batch writes."""
