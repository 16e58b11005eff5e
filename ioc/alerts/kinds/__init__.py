"""One module per family of rule kinds, driven by :class:`ioc.alerts.evaluate.RuleEngine`.

Kept free of imports so that :mod:`ioc.alerts.rules` can use :mod:`.template` without a cycle.
"""
