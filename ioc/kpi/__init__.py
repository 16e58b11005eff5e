"""KPI formulas: pure functions of events, periods and the national scoring rules."""
