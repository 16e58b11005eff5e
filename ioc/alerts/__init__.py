"""Alerting: rules, lifecycle, routing (pure core); delivery adapters live in ioc.notify."""
