"""Parsers for the formats SOC tools, probes and portals already emit (issue 5)."""
